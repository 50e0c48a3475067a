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

#ifndef OFPROTO_DPIF_UPCALL_TRACE_H
#define OFPROTO_DPIF_UPCALL_TRACE_H 1

/* Live upcall tracing: the C shim between Open vSwitch and the engine.
 *
 * The engine (upcall-trace.h) stores and renders traces and knows nothing of
 * Open vSwitch's types.  This module does the Open vSwitch work:
 *
 *   - For the configuration layer (vswitchd/upcall-trace-config.c, which
 *     resolves each session's bridge, port and filter into matches with
 *     upcall_trace_filter_parse()): it publishes, with RCU, the index the
 *     upcall path looks sessions up in (a classifier per bridge).
 *
 *   - For the upcall path (hooks in ofproto-dpif-upcall.c): it decides
 *     whether an upcall is traced, turns translation tracing on for it,
 *     collects what ofproto/trace would print, links recirculation rounds
 *     to their trace and hands the round to the engine.
 *
 *   - For users: the "upcall/trace/..." unixctl commands.
 *
 * With no session, the upcall path pays one relaxed atomic load:
 * upcall_trace_is_active(). */

#include <stdbool.h>
#include "openvswitch/types.h"
#include "ovs-atomic.h"
#include "flow.h"
#include "openvswitch/match.h"
#include "openvswitch/uuid.h"

struct dp_packet;
struct dpif_op;
struct flow_wildcards;
struct ofpbuf;
struct ofproto;
struct ofproto_dpif;
struct simap;
struct uptrace_engine;
struct uptrace_session;
struct xlate_in;
struct xlate_out;

/* Initializes the engine and registers the unixctl commands.  Idempotent. */
void upcall_trace_init(void);

/* The high 32 bits of every trace id this run of ovs-vswitchd gives out. */
uint64_t upcall_trace_id_prefix(void);

/* The engine, for the configuration layer's session management. */
struct uptrace_engine *upcall_trace_engine(void);

/* Configuration. */

/* One ready session, as the upcall path sees it.
 *
 * The match is a minimatch, not a struct match: with thousands of sessions,
 * full matches (1.7 kB each, copied at each step from the row to the
 * index) made tens of megabytes of short-lived arrays in the main thread's
 * heap and left it fragmented, which every later allocation there paid
 * for. */
struct upcall_trace_binding {
    struct uptrace_session *session;    /* Not owned. */
    struct uuid ofproto_uuid;           /* The bridge's ofproto-dpif. */
    struct minimatch match;             /* Filter and port, combined. */
};

/* The name of the datapath of 'bridge' ("ovs-netdev@ovs-netdev", ...), or
 * NULL if there is no such bridge.  Main thread only. */
const char *upcall_trace_datapath_name(const char *bridge);

/* Replaces the index the upcall path looks sessions up in by one made of the
 * 'n' 'bindings' (copied, matches too; each session gets a reference).  Upcalls being
 * handled keep using the old index until they quiesce.  Main thread only. */
void upcall_trace_set_bindings(const struct upcall_trace_binding *bindings,
                               size_t n);

/* Takes out of the upcall path's index the sessions that cannot capture
 * until their state or configuration changes (expired), and puts back those
 * that can again.  Main thread only. */
void upcall_trace_refresh_index(void);

/* The bindings last given to upcall_trace_set_bindings(), '*n' of them, in
 * the index or not.  Each session in them is valid until the next call.
 * Main thread only. */
const struct upcall_trace_binding *upcall_trace_get_bindings(size_t *n);

/* Adds memory usage statistics for memory/show. */
void upcall_trace_get_memory_usage(struct simap *usage);

/* The upcall path (called from ofproto-dpif-upcall.c only). */

/* Nonzero while some session is bound (in the index or not: see
 * upcall_trace_refresh_index()).  Maintained by
 * upcall_trace_set_bindings(). */
extern atomic_uint32_t upcall_trace_n_bindings;

static inline bool
upcall_trace_is_active(void)
{
    uint32_t n;

    atomic_read_relaxed(&upcall_trace_n_bindings, &n);
    return n != 0;
}

/* One round of a trace (one traced upcall), from before translation until
 * it is stored. */
struct upcall_trace_round;

/* Decides whether the upcall is traced: a recirculation of a traced packet,
 * or a match of some session's filter.  If so, turns tracing on in 'xin'
 * (initialized with xlate_in_init() and not yet translated) and returns the
 * round; otherwise returns NULL.  Call only if upcall_trace_is_active(). */
struct upcall_trace_round *upcall_trace_begin(const struct ofproto_dpif *,
                                              const struct flow *,
                                              const struct dp_packet *,
                                              const char *upcall_type,
                                              unsigned pmd_id,
                                              struct xlate_in *xin);

/* Collects the result of translating the traced upcall: the node tree, the
 * final flow, the megaflow, the datapath actions, the UFID, and registers
 * the recirculations the datapath actions will cause. */
void upcall_trace_xlate_done(struct upcall_trace_round *,
                             const struct xlate_in *,
                             const struct xlate_out *, int xlate_error,
                             const struct flow_wildcards *,
                             const struct ofpbuf *odp_actions,
                             const ovs_u128 *ufid);

/* For the kernel datapath's batched install: the "put" operation whose
 * result says whether the datapath flow was installed. */
void upcall_trace_set_put_op(struct upcall_trace_round *,
                             const struct dpif_op *);

/* For the kernel datapath's batched execution: the "execute" operation
 * whose result says whether the datapath executed the round's actions. */
void upcall_trace_set_execute_op(struct upcall_trace_round *,
                                 const struct dpif_op *);

/* Stores the round: 'installed' says whether a datapath flow was installed
 * for it (for a recorded put operation, only if that operation succeeded),
 * 'reason' why not.  'wc', if nonnull, is the final megaflow mask.
 * 'exact' says that megaflows are disabled (upcall/disable-megaflows), so
 * that the flow installed matches the packet exactly, whatever the mask.
 * Sets '*tracep' to NULL. */
void upcall_trace_finish(struct upcall_trace_round **tracep, bool installed,
                         const char *reason,
                         const struct flow_wildcards *wc, bool exact);

/* Frees a round that was not finished.  NULL is allowed. */
void upcall_trace_abort(struct upcall_trace_round *);

/* The revalidators' side: the life of the datapath flows that traced rounds
 * installed (ofproto/upcall-trace-revalidate.c). */

/* True once a traced round has installed a datapath flow: from then on,
 * revalidators report on the flows they revalidate. */
extern atomic_bool upcall_trace_flows_followed;

static inline bool
upcall_trace_follows_flows(void)
{
    bool followed;

    atomic_read_relaxed(&upcall_trace_flows_followed, &followed);
    return followed;
}

/* Called by upcall_trace_finish() when a round installed a flow. */
void upcall_trace_flow_installed(void);

/* What a revalidation did to a datapath flow. */
enum upcall_trace_flow_result {
    UPCALL_TRACE_FLOW_KEPT,         /* Unchanged (counters may have grown). */
    UPCALL_TRACE_FLOW_MODIFIED,     /* New actions. */
    UPCALL_TRACE_FLOW_DELETED       /* Deleted, for 'del_reason'. */
};

/* Reports what revalidation did to the datapath flow 'ufid': 'result', with
 * 'del_reason' if deleted, 'old_actions' and 'new_actions' if modified, and
 * the packets and bytes it carried since installed.  Call only if
 * upcall_trace_follows_flows(). */
void upcall_trace_flow_revalidated(const ovs_u128 *ufid,
                                   enum upcall_trace_flow_result,
                                   const char *del_reason,
                                   const struct ofpbuf *old_actions,
                                   const struct ofpbuf *new_actions,
                                   uint64_t n_packets, uint64_t n_bytes);

#endif /* ofproto-dpif-upcall-trace.h */
