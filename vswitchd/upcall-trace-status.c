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

#include <inttypes.h>

#include "lib/vswitch-idl.h"
#include "ofproto/ofproto-dpif-upcall-trace.h"
#include "ofproto/upcall-trace.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "upcall-trace-row.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(upcall_trace_status);

/* The transaction that writes the "status", "statistics" and "expires_at"
 * columns, while it is in progress. */
static struct ovsdb_idl_txn *status_txn;

static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

/* The counters of the "statistics" column, in the order of their keys. */
#define UT_STATISTICS                           \
    UT_STAT(n_dropped_full)                     \
    UT_STAT(n_evicted)                          \
    UT_STAT(n_expired)                          \
    UT_STAT(n_matched)                          \
    UT_STAT(n_rate_limited)                     \
    UT_STAT(n_traces)                           \
    UT_STAT(n_traces_total)                     \
    UT_STAT(n_truncated)

static const char *stat_keys[] = {
#define UT_STAT(NAME) #NAME,
    UT_STATISTICS
#undef UT_STAT
};
#define N_STATS ARRAY_SIZE(stat_keys)

/* Fills 'status' and 'stats' (N_STATS values, in the order of 'stat_keys')
 * for 'row', whose configuration is 'cfg'.  Returns the number of
 * statistics: 0 if the row has no session. */
static size_t
ut_row_get_status(const struct ut_row *row,
                  const struct ovsrec_upcall_trace *cfg, struct smap *status,
                  int64_t stats[N_STATS])
{
    struct uptrace_session_status s;
    const char *datapath;

    if (row->warning) {
        smap_add(status, "warning", row->warning);
    }
    if (!row->session) {
        /* Only a row with an error has no session. */
        const char *error = ut_row_error(row);

        smap_add(status, "state",
                 uptrace_state_to_string(UPTRACE_STATE_ERROR));
        smap_add(status, "error", error ? error : "no session");
        return 0;
    }

    uptrace_session_get_status(row->session, &s);
    if (row->expired && (s.state == UPTRACE_STATE_ACTIVE
                         || s.state == UPTRACE_STATE_FULL)) {
        s.state = UPTRACE_STATE_EXPIRED;
    }
    smap_add(status, "state", uptrace_state_to_string(s.state));
    if (s.error) {
        /* Set by ut_row_set_ready(): already bounded. */
        smap_add(status, "error", s.error);
    }
    datapath = upcall_trace_datapath_name(cfg->bridge);
    if (datapath) {
        smap_add(status, "datapath", datapath);
    }
    if (s.last_trace_id) {
        smap_add_format(status, "last_trace_id", "%#"PRIx64,
                        s.last_trace_id);
        smap_add_format(status, "last_trace_time", "%"PRId64,
                        s.last_trace_time);
    }

    size_t i = 0;
#define UT_STAT(NAME) stats[i++] = MIN(s.NAME, INT64_MAX);
    UT_STATISTICS
#undef UT_STAT
    uptrace_session_status_uninit(&s);
    return N_STATS;
}

static bool
stats_equal(const struct ovsrec_upcall_trace *cfg, const int64_t *stats,
            size_t n)
{
    if (cfg->n_statistics != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cfg->key_statistics[i], stat_keys[i])
            || cfg->value_statistics[i] != stats[i]) {
            return false;
        }
    }
    return true;
}

/* Starts a transaction that writes what differs between the database and
 * the sessions, if anything does. */
static void
status_txn_start(struct ovsdb_idl *idl)
{
    const struct ovsrec_upcall_trace *cfg;

    OVSREC_UPCALL_TRACE_FOR_EACH (cfg, idl) {
        struct ut_row *row = ut_row_find(&cfg->header_.uuid);
        int64_t stats[N_STATS];
        struct smap status;
        size_t n_stats;

        if (!row) {
            /* Not reconciled yet. */
            continue;
        }

        smap_init(&status);
        n_stats = ut_row_get_status(row, cfg, &status, stats);
        bool status_differs = !smap_equal(&status, &cfg->status);
        bool stats_differ = !stats_equal(cfg, stats, n_stats);
        int64_t expires_at = cfg->n_expires_at ? cfg->expires_at[0] : 0;
        bool deadline_differs = false;
        if (expires_at == row->deadline) {
            row->deadline_synced = row->deadline != 0;
        } else if (row->duration_s && row->deadline_synced) {
            /* A client cleared or changed it since we wrote it: reconcile
             * the row again, which restarts the duration or adopts the
             * client's deadline. */
            row->deadline = 0;
            row->deadline_synced = false;
            ut_row_reconcile_again(row);
        } else {
            deadline_differs = true;
        }
        if (status_differs || stats_differ || deadline_differs) {
            if (!status_txn) {
                status_txn = ovsdb_idl_txn_create(idl);
                ovsdb_idl_txn_add_comment(
                    status_txn, "ovs-vswitchd: Upcall_Trace status");
            }
            if (status_differs) {
                ovsrec_upcall_trace_set_status(cfg, &status);
            }
            if (stats_differ) {
                ovsrec_upcall_trace_set_statistics(cfg, stat_keys, stats,
                                                   n_stats);
            }
            if (deadline_differs) {
                ovsrec_upcall_trace_set_expires_at(cfg, &row->deadline,
                                                   row->deadline ? 1 : 0);
            }
        }
        smap_destroy(&status);
    }
}

/* Commits 'status_txn' and, once it completes, destroys it.  A failure needs
 * nothing special: the next check finds what the database lacks. */
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
        VLOG_WARN_RL(&rl, "writing Upcall_Trace status failed (%s), will "
                     "retry", ovsdb_idl_txn_status_to_string(status));
    }
}

void
ut_status_update(struct ovsdb_idl *idl)
{
    status_txn_start(idl);
    if (status_txn) {
        status_txn_commit();
    }
}

bool
ut_status_busy(void)
{
    if (status_txn) {
        status_txn_commit();
    }
    return status_txn != NULL;
}

bool
ut_status_wait(void)
{
    if (status_txn) {
        ovsdb_idl_txn_wait(status_txn);
        return true;
    }
    return false;
}
