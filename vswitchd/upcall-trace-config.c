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
#include "openvswitch/dynamic-string.h"
#include "openvswitch/shash.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "simap.h"
#include "smap.h"
#include "timeval.h"
#include "util.h"
#include "upcall-trace-row.h"
#include "upcall-trace-target.h"
#include "uuid.h"

VLOG_DEFINE_THIS_MODULE(upcall_trace_config);

/* The "status" and "statistics" columns are checked at most this often,
 * unless the configuration changed. */
#define STATUS_INTERVAL_MS 1000

/* All the rows, by UUID. */
static struct hmap ut_rows = HMAP_INITIALIZER(&ut_rows);

/* Change numbers of the tables, at the last reconfiguration.
 * 'force_reconfigure': a row must be reconciled again although no table
 * changed (a client changed its "expires_at"). */
static bool reconciled;
static bool force_reconfigure;

/* Number of rows with an iface_id, at the last reconfiguration. */
static size_t n_iface_id_rows;
static unsigned int ut_seqno;
static unsigned int net_seqno;

/* Status checks.  'next_status_ms' is when the "status", "statistics" and
 * "expires_at" columns are checked again; 'status_now' asks for a check as
 * soon as possible, after a reconfiguration.
 *
 * 'status_ran' tells upcall_trace_config_wait() whether
 * upcall_trace_config_run() ran since the last wait: bridge_run() does not
 * call it while another ovs-vswitchd holds the database lock, and waking up
 * for a status check that cannot happen would spin. */
static long long int next_status_ms = LLONG_MIN;
static bool status_now;
static bool status_ran;

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* What one reconfiguration does to one row whose configuration changed. */
struct ut_work {
    const struct ovsrec_upcall_trace *cfg;
    struct ut_row *row;
    struct uptrace_session_config config;   /* Points into 'cfg', 'port'. */
    char *port;                 /* The engine's "port": port or iface-id. */
};

struct ut_row *
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
    row->result = UT_TARGET_ERROR;
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
ut_row_clear_filter(struct ut_row *row)
{
    if (row->filter_parsed) {
        minimatch_destroy(&row->filter);
        row->filter_parsed = false;
    }
}

static void
ut_row_free_matches(struct minimatch *matches, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        minimatch_destroy(&matches[i]);
    }
    free(matches);
}

static void
ut_row_destroy(struct ut_row *row)
{
    ut_row_destroy_session(row);
    hmap_remove(&ut_rows, &row->hmap_node);
    free(row->key);
    free(row->config_error);
    free(row->warning);
    free(row->result_msg);
    ut_target_destroy(&row->target);
    ut_row_clear_filter(row);
    ut_row_free_matches(row->matches, row->n_matches);
    free(row->logged);
    free(row);
}

const char *
ut_row_error(const struct ut_row *row)
{
    return (row->config_error ? row->config_error
            : row->result == UT_TARGET_ERROR ? row->result_msg
            : NULL);
}

void
ut_row_reconcile_again(struct ut_row *row)
{
    free(row->key);
    row->key = NULL;
    force_reconfigure = true;
}

/* Logs what is wrong with 'row' (its error, else its warning), once while
 * it lasts. */
static void
ut_row_log(struct ut_row *row, const char *who)
{
    const char *error = ut_row_error(row);
    const char *msg = error ? error : row->warning;

    if (!msg) {
        free(row->logged);
        row->logged = NULL;
    } else if (!row->logged || strcmp(row->logged, msg)) {
        char *q = ut_quote(who);

        VLOG_WARN_RL(&rl, "Upcall_Trace %s: %s", q, msg);
        free(q);
        free(row->logged);
        row->logged = xstrdup(msg);
    }
}

/* Works out the deadline of 'row' from options:duration ('duration_s', 0 if
 * none) and the "expires_at" column, and sets the session's duration to
 * what is left of it.  See "expires_at" in vswitch.xml. */
static void
ut_row_set_deadline(struct ut_row *row, const struct ovsrec_upcall_trace *cfg,
                    int64_t duration_s, struct uptrace_session_config *config)
{
    int64_t now = time_wall_msec();
    int64_t deadline;

    if (!duration_s) {
        deadline = 0;
    } else if (row->deadline && duration_s == row->duration_s) {
        deadline = row->deadline;               /* Something else changed. */
    } else if (row->deadline) {
        deadline = now + duration_s * 1000;     /* Changed while we run. */
    } else if (cfg->n_expires_at) {
        deadline = cfg->expires_at[0];          /* Kept across restarts. */
    } else {
        deadline = now + duration_s * 1000;     /* New, or cleared. */
    }
    row->duration_s = duration_s;
    if (deadline != row->deadline) {
        row->deadline = deadline;
        row->deadline_synced = false;
        row->expired = deadline && deadline <= now;
        row->duration_ms = deadline ? MAX(deadline - now, 1) : 0;
    }
    config->duration_ms = row->duration_ms;
}

/* Compiles the target and filter of 'row', whose configuration is 'cfg', if
 * 'config_changed' or the switch's ports may have changed ('net_changed').
 * Returns true if the bindings of the row changed. */
static bool
ut_row_compile(struct ut_row *row, const struct ovsrec_upcall_trace *cfg,
               struct ut_target_ctx *ctx, bool config_changed,
               bool *ready_changed)
{
    enum ut_target_result result;
    struct ut_target target;
    char *msg = NULL;

    if (row->config_error) {
        result = UT_TARGET_ERROR;
        memset(&target, 0, sizeof target);
    } else {
        result = ut_target_resolve(ctx, cfg->bridge, cfg->port, cfg->iface_id,
                                   &target, &msg);
    }

    if (result == UT_TARGET_OK
        && (config_changed || !row->filter_parsed || row->filter_uses_names
            || !uuid_equals(&target.ofproto_uuid,
                            &row->target.ofproto_uuid))) {
        struct match filter;

        ut_row_clear_filter(row);
        msg = ut_filter_parse(ctx, cfg->bridge, cfg->filter, &filter,
                              &row->filter_uses_names);
        if (msg) {
            result = UT_TARGET_ERROR;
        } else {
            minimatch_init(&row->filter, &filter);
            row->filter_parsed = true;
        }
    } else if (result != UT_TARGET_OK) {
        ut_row_clear_filter(row);
    }

    struct minimatch *matches = NULL;
    size_t n_matches = 0;
    if (result == UT_TARGET_OK) {
        struct match filter;

        minimatch_expand(&row->filter, &filter);
        matches = xmalloc(MAX(target.n_ports, 1) * sizeof *matches);
        char *what = (cfg->iface_id
                      ? xasprintf("an interface with iface-id \"%s\"",
                                  cfg->iface_id)
                      : xasprintf("port \"%s\"", cfg->port ? cfg->port : ""));
        n_matches = ut_target_matches(&target, &filter, cfg->filter,
                                      what, matches, &msg);
        free(what);
        if (!n_matches) {
            result = UT_TARGET_ERROR;
        }
    }

    bool bound = (result == UT_TARGET_OK && row->enabled && !row->expired
                  && row->session);
    bool changed = bound != row->bound;
    if (bound && !changed) {
        changed = (n_matches != row->n_matches
                   || !uuid_equals(&target.ofproto_uuid,
                                   &row->target.ofproto_uuid));
        for (size_t i = 0; !changed && i < n_matches; i++) {
            changed = !minimatch_equal(&matches[i], &row->matches[i]);
        }
    }
    if (result != row->result || !nullable_string_is_equal(msg,
                                                           row->result_msg)) {
        *ready_changed = true;
    }

    row->result = result;
    free(row->result_msg);
    row->result_msg = msg;
    ut_target_destroy(&row->target);
    row->target = target;
    ut_row_free_matches(row->matches, row->n_matches);
    row->matches = matches;
    row->n_matches = n_matches;
    row->bound = bound;
    return changed;
}

/* Tells the engine whether 'row''s session can capture. */
static void
ut_row_set_ready(struct ut_row *row)
{
    if (row->session) {
        const char *error = ut_row_error(row);

        if (error) {
            uptrace_session_set_ready(row->session, false, NULL, error);
        } else if (row->result != UT_TARGET_OK) {
            uptrace_session_set_ready(row->session, false, row->result_msg,
                                      NULL);
        } else {
            uptrace_session_set_ready(row->session, true, NULL, NULL);
        }
    }
}

/* Compiles the target and filter of 'row' again because the switch's ports
 * may have changed, and tells the engine and the log if that changed
 * whether it can capture.  Returns true if the bindings of the row
 * changed. */
static bool
ut_row_recompile(struct ut_row *row, const struct ovsrec_upcall_trace *cfg,
                 struct ut_target_ctx *ctx)
{
    bool ready_changed = false;
    bool bindings_changed = ut_row_compile(row, cfg, ctx, false,
                                           &ready_changed);

    if (ready_changed) {
        ut_row_set_ready(row);
        ut_row_log(row, cfg->name);
    }
    return bindings_changed;
}

/* Parses the row of 'w' and applies what changed to its session: the
 * configuration in place (stored traces are kept), or a new session.
 * 'name' is the name to give the session, usually the row's. */
static void
ut_work_apply(struct ut_work *w, const char *name)
{
    struct ut_row *row = w->row;
    struct uptrace_session_config config = w->config;
    char *error = NULL;

    if (row->config_error) {
        /* The session, if any, keeps its configuration and name. */
        return;
    }
    config.name = name;
    if (row->session) {
        if (uptrace_session_reconfigure(row->session, &config, &error)) {
            if (!row->config_error) {
                row->config_error = ut_quote(error);
            }
        } else if (strcmp(row->session_name, name)) {
            if (strcmp(name, w->cfg->name)) {
                /* Moved aside for a rename (see below): not worth a line. */
            } else {
                VLOG_INFO("Upcall_Trace %s: session renamed to %s",
                          row->session_name, name);
            }
            free(row->session_name);
            row->session_name = xstrdup(name);
        }
    } else {
        if (!uptrace_session_create(upcall_trace_engine(), &config,
                                    &row->session, &error)) {
            VLOG_INFO("Upcall_Trace %s: session created", name);
            row->session_name = xstrdup(name);
        } else {
            row->session = NULL;
            row->config_error = ut_quote(error);
        }
    }
    free(error);
}

void
upcall_trace_config_init(struct ovsdb_idl *idl)
{
    upcall_trace_init();
    ut_target_init(idl);

    ovsdb_idl_omit_alert(idl, &ovsrec_upcall_trace_col_status);
    ovsdb_idl_omit_alert(idl, &ovsrec_upcall_trace_col_statistics);
    ovsdb_idl_omit_alert(idl, &ovsrec_upcall_trace_col_expires_at);
    ovsdb_idl_omit(idl, &ovsrec_upcall_trace_col_external_ids);

    /* bridge.c does not monitor Interface external_ids, where iface_id
     * targets are found.  Monitor it, without alert, so that a controller
     * that updates external_ids does not make every bridge reconfigure:
     * upcall_trace_config_run() looks for moved iface-ids itself. */
    ovsdb_idl_add_column(idl, &ovsrec_interface_col_external_ids);
    ovsdb_idl_omit_alert(idl, &ovsrec_interface_col_external_ids);
}

static unsigned int
max_seqno(struct ovsdb_idl *idl)
{
    return MAX(MAX(ovsdb_idl_table_get_seqno(idl, &ovsrec_table_bridge),
                   ovsdb_idl_table_get_seqno(idl, &ovsrec_table_port)),
               ovsdb_idl_table_get_seqno(idl, &ovsrec_table_interface));
}

/* Sets the bindings of the upcall path from every bound row. */
static void
set_bindings(void)
{
    struct upcall_trace_binding *bindings;
    size_t n = 0;
    struct ut_row *row;

    HMAP_FOR_EACH (row, hmap_node, &ut_rows) {
        n += row->bound ? row->n_matches : 0;
    }
    bindings = xmalloc(MAX(n, 1) * sizeof *bindings);
    n = 0;
    HMAP_FOR_EACH (row, hmap_node, &ut_rows) {
        for (size_t i = 0; row->bound && i < row->n_matches; i++) {
            bindings[n].session = row->session;
            bindings[n].ofproto_uuid = row->target.ofproto_uuid;
            bindings[n].match = row->matches[i];
            n++;
        }
    }
    upcall_trace_set_bindings(bindings, n);
    free(bindings);
}

void
upcall_trace_config_reconfigure(struct ovsdb_idl *idl)
{
    unsigned int new_ut_seqno = ovsdb_idl_table_get_seqno(
        idl, &ovsrec_table_upcall_trace);
    unsigned int new_net_seqno = max_seqno(idl);
    bool net_changed = !reconciled || new_net_seqno != net_seqno;

    if (reconciled && new_ut_seqno == ut_seqno && !net_changed
        && !force_reconfigure) {
        /* Another table changed: nothing to do for us. */
        return;
    }
    reconciled = true;
    force_reconfigure = false;
    ut_seqno = new_ut_seqno;
    net_seqno = new_net_seqno;

    const struct ovsrec_upcall_trace *cfg;
    struct ut_work *works = NULL;
    size_t n_works = 0, allocated = 0;
    struct ut_row *row;

    HMAP_FOR_EACH (row, hmap_node, &ut_rows) {
        row->seen = false;
    }

    /* The rows whose configuration changed. */
    n_iface_id_rows = 0;
    OVSREC_UPCALL_TRACE_FOR_EACH (cfg, idl) {
        n_iface_id_rows += cfg->iface_id != NULL;
        row = ut_row_find(&cfg->header_.uuid);
        if (!row) {
            row = ut_row_create(&cfg->header_.uuid);
        }
        row->seen = true;

        char *key = ut_config_key(cfg);
        if (row->key && !strcmp(key, row->key)) {
            free(key);
            continue;
        }
        free(row->key);
        row->key = key;

        if (n_works >= allocated) {
            works = x2nrealloc(works, &allocated, sizeof *works);
        }
        struct ut_work *w = &works[n_works++];
        int64_t duration_s = 0;

        w->cfg = cfg;
        w->row = row;
        w->port = (cfg->iface_id
                   ? xasprintf("iface-id=%s", cfg->iface_id)
                   : nullable_xstrdup(cfg->port));
        uptrace_session_config_init(&w->config);
        free(row->config_error);
        free(row->warning);
        row->warning = NULL;
        row->config_error = ut_parse_row(cfg, &w->config, &duration_s,
                                         &row->warning);
        w->config.name = cfg->name;
        w->config.port = w->port;
        row->enabled = w->config.enabled;
        ut_row_set_deadline(row, cfg, duration_s, &w->config);
    }

    /* Sessions of deleted rows go first, so that their names are free. */
    bool bindings_changed = false;
    HMAP_FOR_EACH_SAFE (row, hmap_node, &ut_rows) {
        if (!row->seen) {
            bindings_changed |= row->bound;
            ut_row_destroy(row);
        }
    }

    /* The database keeps names unique, but one transaction may swap the
     * names of two rows, and the engine's names must be unique at every
     * step: move each renamed session aside to a name no row can have
     * (names are unique among rows), then give every session its name. */
    for (size_t i = 0; i < n_works; i++) {
        struct ut_work *w = &works[i];

        if (w->row->session && strcmp(w->row->session_name, w->cfg->name)
            && !w->row->config_error) {
            char *aside = xasprintf(UUID_FMT" (renaming)",
                                    UUID_ARGS(&w->row->uuid));
            ut_work_apply(w, aside);
            free(aside);
        }
    }
    for (size_t i = 0; i < n_works; i++) {
        ut_work_apply(&works[i], works[i].cfg->name);
    }

    /* Compile the targets and filters of the rows that changed, and of
     * every row if the bridges, ports or interfaces changed. */
    struct ut_target_ctx ctx;
    ut_target_ctx_init(&ctx, idl);
    for (size_t i = 0; i < n_works; i++) {
        struct ut_work *w = &works[i];
        bool ready_changed = true;

        bindings_changed |= ut_row_compile(w->row, w->cfg, &ctx, true,
                                           &ready_changed);
        ut_row_set_ready(w->row);
        ut_row_log(w->row, w->cfg->name);
        w->row->seen = false;   /* Done. */
    }
    if (net_changed) {
        OVSREC_UPCALL_TRACE_FOR_EACH (cfg, idl) {
            row = ut_row_find(&cfg->header_.uuid);
            if (row->seen) {
                bindings_changed |= ut_row_recompile(row, cfg, &ctx);
            }
        }
    }
    ut_target_ctx_destroy(&ctx);

    if (bindings_changed) {
        set_bindings();
    }

    for (size_t i = 0; i < n_works; i++) {
        free(works[i].port);
    }
    free(works);

    status_now = true;
}

/* Interface external_ids changes do not reconfigure (see
 * upcall_trace_config_init()): resolves the rows that target an iface-id
 * again, in case the binding moved. */
static void
recheck_iface_ids(struct ovsdb_idl *idl)
{
    const struct ovsrec_upcall_trace *cfg;
    bool bindings_changed = false;
    struct ut_target_ctx ctx;

    ut_target_ctx_init(&ctx, idl);
    OVSREC_UPCALL_TRACE_FOR_EACH (cfg, idl) {
        struct ut_row *row = ut_row_find(&cfg->header_.uuid);

        if (row && cfg->iface_id && !row->config_error) {
            bindings_changed |= ut_row_recompile(row, cfg, &ctx);
        }
    }
    ut_target_ctx_destroy(&ctx);
    if (bindings_changed) {
        set_bindings();
    }
}

void
upcall_trace_config_run(struct ovsdb_idl *idl)
{
    status_ran = true;

    if (ut_status_busy()) {
        return;
    }

    /* Retention, durations and the status have a granularity of a second:
     * check them once a second, not on every main loop iteration, whose
     * rate follows the traffic. */
    long long int now = time_msec();
    if (hmap_is_empty(&ut_rows) || (!status_now && now < next_status_ms)) {
        return;
    }
    next_status_ms = now + STATUS_INTERVAL_MS;
    status_now = false;
    if (n_iface_id_rows) {
        recheck_iface_ids(idl);
    }
    uptrace_engine_run(upcall_trace_engine());
    upcall_trace_refresh_index();
    ut_status_update(idl);
    if (force_reconfigure) {
        upcall_trace_config_reconfigure(idl);
    }
}

void
upcall_trace_config_wait(void)
{
    if (ut_status_wait()) {
        /* Woken up when the status transaction progresses. */
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
