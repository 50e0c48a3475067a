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

#ifndef VSWITCHD_UPCALL_TRACE_ROW_H
#define VSWITCHD_UPCALL_TRACE_ROW_H 1

/* The reconciler's view of one Upcall_Trace row, shared between the
 * reconciliation (upcall-trace-config.c) and the writer of the "status",
 * "statistics" and "expires_at" columns (upcall-trace-status.c).  Private to
 * vswitchd/. */

#include <stdbool.h>
#include <stdint.h>

#include "openvswitch/hmap.h"
#include "openvswitch/match.h"
#include "openvswitch/uuid.h"
#include "upcall-trace-target.h"

struct ovsdb_idl;
struct ovsrec_upcall_trace;

/* One row of the Upcall_Trace table, as last reconciled.
 *
 * A reconfiguration only works on what changed: a row whose configuration
 * ('key') is the same as last time keeps its session untouched, and its
 * target (bridge, ports) and filter are compiled again only when the
 * Bridge, Port or Interface tables changed, and then only as far as
 * needed (the filter only if it names ports). */
struct ut_row {
    struct hmap_node hmap_node; /* In 'ut_rows', by uuid_hash(&uuid). */
    struct uuid uuid;           /* The row's UUID. */

    /* The engine session of the row, or NULL if it has none: the row's
     * configuration was invalid when it was first seen. */
    struct uptrace_session *session;
    char *session_name;

    char *key;                  /* Configuration last reconciled. */
    char *config_error;         /* Configuration error, or NULL. */
    char *warning;              /* Ignored configuration, or NULL. */
    bool enabled;

    /* options:duration: the value 'deadline' (wall clock, ms, 0 if none)
     * was computed from, and whether it had already passed then.
     * 'deadline_synced': the database held 'deadline' at the last check.
     * 'duration_ms': what the session was given, as long as 'deadline' does
     * not change. */
    int64_t duration_s;
    int64_t deadline;
    bool expired;
    bool deadline_synced;
    int64_t duration_ms;

    /* The compiled target and filter. */
    enum ut_target_result result;
    char *result_msg;           /* Why not UT_TARGET_OK. */
    struct ut_target target;
    bool filter_parsed;         /* Whether 'filter' is initialized. */
    bool filter_uses_names;
    struct minimatch filter;    /* Not struct match: see
                                 * struct upcall_trace_binding. */
    struct minimatch *matches;  /* Bound to the session, if 'bound'. */
    size_t n_matches;
    bool bound;

    char *logged;               /* Last message logged, each logged once. */
    bool seen;                  /* Reconciliation mark. */
};

/* The row with 'uuid', or NULL if it was not reconciled yet. */
struct ut_row *ut_row_find(const struct uuid *uuid);

/* The error of 'row' that the status shows, or NULL. */
const char *ut_row_error(const struct ut_row *row);

/* Makes the next reconfiguration reconcile 'row' again although no table
 * changed, as if its configuration were new. */
void ut_row_reconcile_again(struct ut_row *row);

/* Status writing (upcall-trace-status.c).
 *
 * A check compares what the engine says with what the database holds (the
 * IDL's replica), not with what was last written, so that values lost by an
 * ovsdb-server restart, cleared by a client or rejected with a failed
 * transaction are written again.  The transaction is kept across main loop
 * iterations until it completes. */

/* Starts a transaction that writes what differs between the database and
 * the sessions, if anything does, and commits it. */
void ut_status_update(struct ovsdb_idl *idl);

/* Commits the pending status transaction, if any.  Returns true if one is
 * still in progress. */
bool ut_status_busy(void);

/* Wakes the main loop when the pending status transaction, if any,
 * progresses.  Returns false if there is none. */
bool ut_status_wait(void);

#endif /* upcall-trace-row.h */
