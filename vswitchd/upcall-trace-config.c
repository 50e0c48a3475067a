/*
 * Copyright (c) 2026 The ovs-upcall-trace authors.
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at:
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

#include <config.h>

#include "upcall-trace-config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/vswitch-idl.h"
#include "ofproto/ofproto-dpif-upcall-trace.h"
#include "ofproto/upcall-trace.h"
#include "openvswitch/hmap.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/shash.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "simap.h"
#include "smap.h"
#include "timeval.h"
#include "util.h"
#include "uuid.h"

VLOG_DEFINE_THIS_MODULE(upcall_trace_config);

/* The "status" column is refreshed at most this often, unless the
 * configuration changed. */
#define STATUS_INTERVAL_MS 1000

/* Bounds of the Upcall_Trace columns and options, as documented in
 * vswitch.xml.  The database enforces those of the columns too, but a
 * database that does not is no reason to misbehave. */
#define RETENTION_MAX_S 31536000            /* One year. */
#define DURATION_MAX_S 31536000             /* One year. */
#define MAX_RATE_MAX UINT32_MAX
#define MAX_TRACE_SIZE_MIN 1024
#define MAX_TRACE_SIZE_MAX (1024 * 1024 * 1024)

/* One row of the Upcall_Trace table, as last reconciled. */
struct ut_row {
    struct hmap_node hmap_node; /* In 'ut_rows', by uuid_hash(&uuid). */
    struct uuid uuid;           /* The row's UUID. */

    /* The engine session of the row, or NULL if it has none: the row's
     * name is used by another row, or the row's configuration was invalid
     * when it was first seen.  'session_name' is its name in the engine. */
    struct uptrace_session *session;
    char *session_name;

    char *error;                /* Configuration error, or NULL. */
    char *logged_error;         /* Last error logged, so each is logged once
                                 * while it lasts. */
    struct smap written;        /* Status last put in a transaction. */
    bool seen;                  /* Reconciliation mark. */
};

/* All the rows, by UUID. */
static struct hmap ut_rows = HMAP_INITIALIZER(&ut_rows);

/* Status updates.
 *
 * 'status_txn' is the transaction that writes the "status" column, kept
 * across main loop iterations until it completes.  'next_status_ms' is when
 * the status is checked again; 'status_now' asks for a check as soon as
 * possible, after a reconfiguration.
 *
 * 'status_ran' tells upcall_trace_config_wait() whether
 * upcall_trace_config_run() ran since the last wait: bridge_run() does not
 * call it while another ovs-vswitchd holds the database lock, and waking up
 * for a status check that cannot happen would spin. */
static struct ovsdb_idl_txn *status_txn;
static long long int next_status_ms = LLONG_MIN;
static bool status_now;
static bool status_ran;

/* The last status transaction failed: write every row at the next check,
 * even if the engine reports no change. */
static bool status_retry;

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* What one reconfiguration computes for one row. */
struct ut_work {
    const struct ovsrec_upcall_trace *cfg;
    struct ut_row *row;
    char *name;                 /* Session name, owned. */
    struct uptrace_session_config config;   /* Points into 'cfg', 'name'. */
    char *error;                /* Configuration error, or NULL. */
    bool duplicate;             /* Another row has the same name. */
};

static struct ut_row *
ut_row_find(const struct uuid *uuid)
{
    struct ut_row *row;

    HMAP_FOR_EACH_WITH_HASH (row, hmap_node, uuid_hash(uuid), &ut_rows) {
        if (uuid_equals(&row->uuid, uuid)) {
            return row;
        }
    }
    return NULL;
}

static struct ut_row *
ut_row_create(const struct uuid *uuid)
{
    struct ut_row *row = xzalloc(sizeof *row);

    row->uuid = *uuid;
    smap_init(&row->written);
    hmap_insert(&ut_rows, &row->hmap_node, uuid_hash(uuid));
    return row;
}

static void
ut_row_destroy_session(struct ut_row *row)
{
    if (row->session) {
        VLOG_INFO("Upcall_Trace %s: session destroyed", row->session_name);
        uptrace_session_destroy(row->session);
        row->session = NULL;
        free(row->session_name);
        row->session_name = NULL;
    }
}

static void
ut_row_destroy(struct ut_row *row)
{
    ut_row_destroy_session(row);
    hmap_remove(&ut_rows, &row->hmap_node);
    free(row->error);
    free(row->logged_error);
    smap_destroy(&row->written);
    free(row);
}

/* Logs 'row''s current error, named 'who', unless it was already logged. */
static void
ut_row_log_error(struct ut_row *row, const char *who, const char *error)
{
    if (!error) {
        free(row->logged_error);
        row->logged_error = NULL;
    } else if (!row->logged_error || strcmp(row->logged_error, error)) {
        VLOG_WARN_RL(&rl, "Upcall_Trace %s: %s", who, error);
        free(row->logged_error);
        row->logged_error = xstrdup(error);
    }
}

/* Parses 'value', the value of options:'key', as an integer between 'min'
 * and 'max', into '*valuep'.  Returns NULL or an error message. */
static char *
parse_option_uint(const char *key, const char *value,
                  unsigned long long int min, unsigned long long int max,
                  unsigned long long int *valuep)
{
    if (!value[0] || value[strspn(value, "0123456789")]) {
        return xasprintf("options:%s \"%s\" is not a positive integer",
                         key, value);
    }
    if (!str_to_ullong(value, 10, valuep) || *valuep < min || *valuep > max) {
        return xasprintf("options:%s \"%s\" is out of range (%llu to %llu)",
                         key, value, min, max);
    }
    return NULL;
}

/* Parses the "options" column of 'cfg' into 'config'.  Returns NULL or an
 * error message about the first wrong option, in alphabetical order. */
static char *
parse_options(const struct ovsrec_upcall_trace *cfg,
              struct uptrace_session_config *config)
{
    const struct smap_node **nodes = smap_sort(&cfg->options);
    size_t n = smap_count(&cfg->options);
    char *error = NULL;

    for (size_t i = 0; i < n && !error; i++) {
        const char *key = nodes[i]->key;
        const char *value = nodes[i]->value;
        unsigned long long int x;

        if (!strcmp(key, "mode")) {
            if (!strcmp(value, "circular")) {
                config->mode = UPTRACE_MODE_CIRCULAR;
            } else if (!strcmp(value, "stop")) {
                config->mode = UPTRACE_MODE_STOP;
            } else {
                error = xasprintf("options:mode \"%s\" is not \"circular\" "
                                  "or \"stop\"", value);
            }
        } else if (!strcmp(key, "max-rate")) {
            error = parse_option_uint(key, value, 1, MAX_RATE_MAX, &x);
            config->max_rate = x;
        } else if (!strcmp(key, "max-trace-size")) {
            error = parse_option_uint(key, value, MAX_TRACE_SIZE_MIN,
                                      MAX_TRACE_SIZE_MAX, &x);
            config->max_trace_size = x;
        } else if (!strcmp(key, "duration")) {
            error = parse_option_uint(key, value, 1, DURATION_MAX_S, &x);
            config->duration_ms = x * 1000;
        } else {
            error = xasprintf("options:%s is not a known option (known: "
                              "duration, max-rate, max-trace-size, mode)",
                              key);
        }
    }
    free(nodes);
    return error;
}

/* Parses 'cfg' into 'config', whose strings then point into 'cfg'.  Returns
 * NULL or an error message. */
static char *
parse_row(const struct ovsrec_upcall_trace *cfg,
          struct uptrace_session_config *config)
{
    if (!cfg->bridge[0]) {
        return xstrdup("bridge is required");
    }
    config->bridge = cfg->bridge;

    if (cfg->port) {
        if (!cfg->port[0]) {
            return xstrdup("port must not be empty (clear the column to "
                           "trace every port)");
        }
        config->port = cfg->port;
    }
    config->filter = cfg->filter;

    if (cfg->n_max_traces) {
        int64_t max_traces = cfg->max_traces[0];

        if (max_traces < UPTRACE_MAX_TRACES_MIN
            || max_traces > UPTRACE_MAX_TRACES_MAX) {
            return xasprintf("max_traces %"PRId64" is out of range "
                             "(%d to %d)", max_traces,
                             UPTRACE_MAX_TRACES_MIN, UPTRACE_MAX_TRACES_MAX);
        }
        config->max_traces = max_traces;
    }

    if (cfg->n_retention) {
        int64_t retention = cfg->retention[0];

        if (retention < 1 || retention > RETENTION_MAX_S) {
            return xasprintf("retention %"PRId64" is out of range "
                             "(1 to %d)", retention, RETENTION_MAX_S);
        }
        config->retention_ms = retention * 1000;
    }

    config->enabled = cfg->n_enabled ? cfg->enabled[0] : true;

    return parse_options(cfg, config);
}

static int
compare_rows_by_uuid(const void *a_, const void *b_)
{
    const struct ovsrec_upcall_trace *const *a = a_;
    const struct ovsrec_upcall_trace *const *b = b_;

    return uuid_compare_3way(&(*a)->header_.uuid, &(*b)->header_.uuid);
}

/* Sets 'w''s error to 'error' (taking ownership), unless it has one. */
static void
ut_work_set_error(struct ut_work *w, char *error)
{
    if (!w->error) {
        w->error = error;
    } else {
        free(error);
    }
}

/* Fills 'works' with the rows of 'idl', sorted by UUID, with their parsed
 * configuration.  Returns the number of rows. */
static size_t
collect_rows(struct ovsdb_idl *idl, struct ut_work **worksp)
{
    const struct ovsrec_upcall_trace *cfg;
    const struct ovsrec_upcall_trace **cfgs = NULL;
    size_t n = 0, allocated = 0;

    OVSREC_UPCALL_TRACE_FOR_EACH (cfg, idl) {
        if (n >= allocated) {
            cfgs = x2nrealloc(cfgs, &allocated, sizeof *cfgs);
        }
        cfgs[n++] = cfg;
    }
    if (n) {
        qsort(cfgs, n, sizeof *cfgs, compare_rows_by_uuid);
    }

    /* Names, each owned by the row with the smallest UUID that has it. */
    struct shash names = SHASH_INITIALIZER(&names);
    struct ut_work *works = xcalloc(MAX(n, 1), sizeof *works);
    for (size_t i = 0; i < n; i++) {
        struct ut_work *w = &works[i];

        w->cfg = cfgs[i];
        w->row = ut_row_find(&cfgs[i]->header_.uuid);
        if (!w->row) {
            w->row = ut_row_create(&cfgs[i]->header_.uuid);
        }
        w->row->seen = true;

        uptrace_session_config_init(&w->config);
        if (!w->cfg->name) {
            w->name = xasprintf(UUID_FMT, UUID_ARGS(&w->row->uuid));
        } else if (!w->cfg->name[0]) {
            w->name = xasprintf(UUID_FMT, UUID_ARGS(&w->row->uuid));
            w->error = xstrdup("name must not be empty (clear the column "
                               "to name the session after the row's UUID)");
        } else {
            w->name = xstrdup(w->cfg->name);
        }
        w->config.name = w->name;

        if (!shash_add_once(&names, w->name, w)) {
            w->duplicate = true;
            ut_work_set_error(w, xasprintf("name %s is used by another "
                                           "Upcall_Trace row", w->name));
        }
        ut_work_set_error(w, parse_row(w->cfg, &w->config));
    }
    shash_destroy(&names);
    free(cfgs);

    *worksp = works;
    return n;
}

/* Reconfigures the session of 'w' in place, under the name 'name' (usually
 * 'w->name').  Returns 0, EEXIST if another session has 'name', or another
 * errno value after setting 'w''s error. */
static int
ut_work_reconfigure(struct ut_work *w, const char *name)
{
    struct uptrace_session_config config = w->config;
    struct ut_row *row = w->row;
    char *error;
    int retval;

    config.name = name;
    retval = uptrace_session_reconfigure(row->session, &config, &error);
    if (!retval) {
        if (strcmp(row->session_name, name)) {
            VLOG_INFO("Upcall_Trace %s: session renamed to %s",
                      row->session_name, name);
            free(row->session_name);
            row->session_name = xstrdup(name);
        }
    } else if (retval == EEXIST) {
        free(error);
    } else {
        w->error = error;
    }
    return retval;
}

static void
ut_work_destroy(struct ut_work *w)
{
    free(w->name);
    free(w->error);
}

void
upcall_trace_config_init(struct ovsdb_idl *idl)
{
    upcall_trace_init();

    ovsdb_idl_omit_alert(idl, &ovsrec_upcall_trace_col_status);
    ovsdb_idl_omit(idl, &ovsrec_upcall_trace_col_external_ids);
}

void
upcall_trace_config_reconfigure(struct ovsdb_idl *idl)
{
    struct uptrace_engine *engine = upcall_trace_engine();
    struct ut_row *row;
    struct ut_work *works;
    size_t n;

    HMAP_FOR_EACH (row, hmap_node, &ut_rows) {
        row->seen = false;
    }
    n = collect_rows(idl, &works);

    /* Destroy the sessions that must go before any session is renamed or
     * created, so that their names are free: those of deleted rows, of rows
     * whose name is used by another row, and of rows whose configuration is
     * invalid and whose name changed. */
    HMAP_FOR_EACH_SAFE (row, hmap_node, &ut_rows) {
        if (!row->seen) {
            ut_row_destroy(row);
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct ut_work *w = &works[i];

        if (w->row->session
            && (w->duplicate
                || (w->error && strcmp(w->row->session_name, w->name)))) {
            ut_row_destroy_session(w->row);
        }
    }

    /* Reconfigure the existing sessions in place, so that they keep their
     * stored traces.
     *
     * Renames can depend on each other: a session may take the name that
     * another one gives up later in this loop (EEXIST until then), and
     * sessions may even swap names.  Retry while that makes progress, then
     * break each cycle left by moving one of its sessions aside, to a
     * temporary name that no one sees, since this all happens within one
     * iteration of the main loop.  The desired names are unique, so that
     * terminates; if it did not, a session would be created again below,
     * without its traces, rather than loop forever. */
    enum { PENDING, DONE, MOVED } *states = xcalloc(MAX(n, 1),
                                                     sizeof *states);
    for (;;) {
        struct ut_work *blocked = NULL;
        bool progress = false;

        for (size_t i = 0; i < n; i++) {
            struct ut_work *w = &works[i];

            if (states[i] == DONE || !w->row->session || w->error) {
                continue;
            }
            if (ut_work_reconfigure(w, w->name) != EEXIST) {
                states[i] = DONE;
                progress = true;
            } else if (!blocked) {
                blocked = w;
            }
        }
        if (!blocked) {
            break;
        } else if (!progress) {
            size_t i = blocked - works;

            if (states[i] == PENDING) {
                char *aside = xasprintf("%s (renaming "UUID_FMT")",
                                        blocked->row->session_name,
                                        UUID_ARGS(&blocked->row->uuid));
                if (ut_work_reconfigure(blocked, aside) == EEXIST) {
                    ut_row_destroy_session(blocked->row);
                }
                free(aside);
                states[i] = MOVED;
            } else {
                ut_row_destroy_session(blocked->row);
            }
        }
    }
    free(states);

    /* Create the missing sessions. */
    for (size_t i = 0; i < n; i++) {
        struct ut_work *w = &works[i];
        char *error;

        if (w->row->session || w->error) {
            continue;
        }
        if (!uptrace_session_create(engine, &w->config, &w->row->session,
                                    &error)) {
            VLOG_INFO("Upcall_Trace %s: session created", w->name);
            w->row->session_name = xstrdup(w->name);
        } else {
            w->row->session = NULL;
            w->error = error;
        }
    }

    /* Tell each session whether it can capture, and collect those that can
     * into the index of the upcall path. */
    struct upcall_trace_binding *bindings = xmalloc(MAX(n, 1)
                                                    * sizeof *bindings);
    size_t n_bindings = 0;
    for (size_t i = 0; i < n; i++) {
        struct ut_work *w = &works[i];
        struct ut_row *r = w->row;

        if (!r->session) {
            /* Every row without a session has an error. */
        } else if (w->error) {
            uptrace_session_set_ready(r->session, false, NULL, w->error);
        } else {
            struct upcall_trace_binding *b = &bindings[n_bindings];
            char *msg = NULL;

            switch (upcall_trace_compile(w->config.bridge, w->config.port,
                                         w->config.filter, b, &msg)) {
            case UPCALL_TRACE_COMPILED:
                uptrace_session_set_ready(r->session, true, NULL, NULL);
                if (w->config.enabled) {
                    b->session = r->session;
                    n_bindings++;
                }
                break;

            case UPCALL_TRACE_NO_BRIDGE:
            case UPCALL_TRACE_NO_PORT:
                uptrace_session_set_ready(r->session, false, msg, NULL);
                break;

            case UPCALL_TRACE_BAD_FILTER:
            case UPCALL_TRACE_WRONG_PORT:
            default:
                uptrace_session_set_ready(r->session, false, NULL, msg);
                w->error = msg;
                msg = NULL;
                break;
            }
            free(msg);
        }

        /* A row whose name is taken is named by its UUID. */
        char *who = (w->duplicate
                     ? xasprintf(UUID_FMT, UUID_ARGS(&r->uuid))
                     : xstrdup(w->name));
        free(r->error);
        r->error = nullable_xstrdup(w->error);
        ut_row_log_error(r, who, r->error);
        free(who);
    }
    upcall_trace_set_bindings(bindings, n_bindings);
    free(bindings);

    for (size_t i = 0; i < n; i++) {
        ut_work_destroy(&works[i]);
    }
    free(works);

    status_now = true;
}

/* Fills 'status' with the status of 'row', whose configuration is 'cfg'. */
static void
ut_row_get_status(const struct ut_row *row,
                  const struct ovsrec_upcall_trace *cfg, struct smap *status)
{
    struct uptrace_session_status s;
    const char *datapath;

    if (!row->session) {
        /* Only a row with an error has no session. */
        smap_add(status, "state",
                 uptrace_state_to_string(UPTRACE_STATE_ERROR));
        smap_add(status, "error", row->error ? row->error : "no session");
        return;
    }

    uptrace_session_get_status(row->session, &s);
    smap_add(status, "state", uptrace_state_to_string(s.state));
    if (s.error) {
        smap_add(status, "error", s.error);
    }
    datapath = upcall_trace_datapath_name(cfg->bridge);
    if (datapath) {
        smap_add(status, "datapath", datapath);
    }
    smap_add_format(status, "n_matched", "%"PRIu64, s.n_matched);
    smap_add_format(status, "n_traces", "%"PRIu64, s.n_traces);
    smap_add_format(status, "n_traces_total", "%"PRIu64, s.n_traces_total);
    smap_add_format(status, "n_evicted", "%"PRIu64, s.n_evicted);
    smap_add_format(status, "n_expired", "%"PRIu64, s.n_expired);
    smap_add_format(status, "n_rate_limited", "%"PRIu64, s.n_rate_limited);
    smap_add_format(status, "n_truncated", "%"PRIu64, s.n_truncated);
    smap_add_format(status, "n_dropped_full", "%"PRIu64, s.n_dropped_full);
    if (s.last_trace_id) {
        smap_add_format(status, "last_trace_id", "%#"PRIx64,
                        s.last_trace_id);
        smap_add_format(status, "last_trace_time", "%"PRId64,
                        s.last_trace_time);
    }
    uptrace_session_status_uninit(&s);
}

/* Starts a transaction that writes the status of every row whose status
 * changed since it was last written, if any. */
static void
status_txn_start(struct ovsdb_idl *idl)
{
    const struct ovsrec_upcall_trace *cfg;

    OVSREC_UPCALL_TRACE_FOR_EACH (cfg, idl) {
        struct ut_row *row = ut_row_find(&cfg->header_.uuid);
        struct smap status;

        if (!row) {
            /* Not reconciled yet. */
            continue;
        }

        smap_init(&status);
        ut_row_get_status(row, cfg, &status);
        if (smap_equal(&status, &row->written)) {
            smap_destroy(&status);
            continue;
        }

        if (!status_txn) {
            status_txn = ovsdb_idl_txn_create(idl);
            ovsdb_idl_txn_add_comment(status_txn,
                                      "ovs-vswitchd: Upcall_Trace status");
        }
        ovsrec_upcall_trace_set_status(cfg, &status);
        smap_destroy(&row->written);
        smap_clone(&row->written, &status);
        smap_destroy(&status);
    }
}

/* Commits 'status_txn' and, once it completes, destroys it. */
static void
status_txn_commit(void)
{
    enum ovsdb_idl_txn_status status = ovsdb_idl_txn_commit(status_txn);

    if (status == TXN_INCOMPLETE) {
        return;
    }

    ovsdb_idl_txn_destroy(status_txn);
    status_txn = NULL;
    if (status != TXN_SUCCESS && status != TXN_UNCHANGED) {
        /* What was written is unknown: write every row's status again at the
         * next check. */
        struct ut_row *row;

        VLOG_WARN_RL(&rl, "writing Upcall_Trace status failed (%s), will "
                     "retry", ovsdb_idl_txn_status_to_string(status));
        HMAP_FOR_EACH (row, hmap_node, &ut_rows) {
            smap_clear(&row->written);
        }
        status_retry = true;
    }
}

void
upcall_trace_config_run(struct ovsdb_idl *idl)
{
    status_ran = true;

    if (status_txn) {
        status_txn_commit();
        if (status_txn) {
            return;
        }
    }

    /* Retention, durations and the status column have a granularity of a
     * second: check them once a second, not on every main loop iteration,
     * whose rate follows the traffic, and format the status of the rows
     * only if the engine says something changed. */
    long long int now = time_msec();
    if (hmap_is_empty(&ut_rows) || (!status_now && now < next_status_ms)) {
        return;
    }
    next_status_ms = now + STATUS_INTERVAL_MS;
    if (uptrace_engine_run(upcall_trace_engine())
        || status_now || status_retry) {
        status_now = status_retry = false;
        status_txn_start(idl);
        if (status_txn) {
            status_txn_commit();
        }
    }
}

void
upcall_trace_config_wait(void)
{
    if (status_txn) {
        ovsdb_idl_txn_wait(status_txn);
    } else if (!hmap_is_empty(&ut_rows) && status_ran) {
        if (status_now) {
            poll_immediate_wake();
        } else {
            poll_timer_wait_until(next_status_ms);
        }
    }
    status_ran = false;
}

void
upcall_trace_config_get_memory_usage(struct simap *usage)
{
    upcall_trace_get_memory_usage(usage);
}
