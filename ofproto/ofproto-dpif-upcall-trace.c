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

#include "ofproto-dpif-upcall-trace.h"

#include <errno.h>
#include <string.h>

#include "coverage.h"
#include "dp-packet.h"
#include "dpif.h"
#include "flow.h"
#include "hash.h"
#include "netlink.h"
#include "odp-util.h"
#include "ofproto-dpif.h"
#include "ofproto-dpif-trace.h"
#include "ofproto-dpif-xlate.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/json.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/vlog.h"
#include "ovs-rcu.h"
#include "ovs-thread.h"
#include "packets.h"
#include "random.h"
#include "simap.h"
#include "sset.h"
#include "timeval.h"
#include "unixctl.h"
#include "upcall-trace.h"
#include "upcall-trace-blob.h"
#include "upcall-trace-grouping.h"
#include "upcall-trace-index.h"
#include "upcall-trace-nodes.h"
#include "upcall-trace-purge.h"
#include "upcall-trace-rules.h"
#include "upcall-trace-unixctl.h"
#include "upcall-trace-tunnel.h"
#include "util.h"
#include "uuid.h"

VLOG_DEFINE_THIS_MODULE(upcall_trace);

/* Matching sessions skipped because they could not start a trace. */
COVERAGE_DEFINE(upcall_trace_closed);
/* Index rebuilds because a session stopped or resumed capturing. */
COVERAGE_DEFINE(upcall_trace_index_refresh);

static struct uptrace_engine *engine;

atomic_uint32_t upcall_trace_n_bindings = 0;

/* The index the upcall path looks sessions up in.
 *
 * It is immutable once published: upcall_trace_set_bindings() builds a new
 * one and swaps it in with RCU, so handler and PMD threads read it without
 * any lock. */
static OVSRCU_TYPE(struct upcall_trace_index *) trace_index;

/* The bindings 'trace_index' was built from, for the commands that act on a
 * session's matches (upcall/trace/purge).  Main thread only. */
static struct upcall_trace_binding *published_bindings;
static size_t n_published_bindings;

/* Sessions that cannot capture until their state or configuration changes
 * (expired by options:duration) leave the index, so that the upcall path
 * does not even look them up, and return when they can capture again:
 * 'binding_indexed[i]' says whether 'published_bindings[i]' is in
 * 'trace_index'.  upcall_trace_refresh_index() brings the index up to date
 * when the main loop finds a session's state changed (at most a second
 * late; meanwhile uptrace_sessions_drop_closed() skips it at the cost of an
 * atomic load).  A session full in mode=stop stays: looking it up is what
 * counts the upcalls it misses (n_dropped_full), and a clear or retention
 * reopens it at once. */
static bool *binding_indexed;

/* One traced upcall, from upcall_trace_begin() to upcall_trace_finish(). */
struct upcall_trace_round {
    struct uptrace_round *capture;
    struct ovs_list nodes;              /* Translation trace, "oftrace_node"s. */
    bool nodes_taken;                   /* 'nodes' already rendered, freed. */
    bool nodes_in_arena;                /* upcall-trace-nodes.h. */

    const struct flow *upcall_flow;     /* As the datapath gave it. */
    const struct dp_packet *packet;
    struct flow initial_flow;           /* xin->flow before translation. */
    struct flow_wildcards wc;           /* Megaflow mask after translation. */
    bool have_wc;

    const struct dpif_op *put_op;       /* Kernel datapath's flow "put". */
    const struct dpif_op *execute_op;   /* Kernel datapath's "execute". */
    enum slow_path_reason slow;
};

/* Each thread keeps the struct upcall_trace_round of its last few finished
 * traces for its next ones: a handler thread finishes a whole batch of
 * upcalls at once, and each of these large objects cost a malloc() and a
 * free() that searched the heap's bins.  Freed when the thread exits. */
#define TRACE_CACHE_SIZE 64

struct trace_cache {
    size_t n;
    struct upcall_trace_round *traces[TRACE_CACHE_SIZE];
};

/* Found through a thread-local pointer, a few instructions where
 * ovsthread_getspecific() takes tens; freed by the key's destructor. */
static ovsthread_key_t trace_cache_key;
DEFINE_STATIC_PER_THREAD_DATA(struct trace_cache *, trace_cache_ptr, NULL);

static void
trace_cache_destroy(void *cache_)
{
    struct trace_cache *cache = cache_;

    for (size_t i = 0; i < cache->n; i++) {
        free(cache->traces[i]);
    }
    free(cache);
}

static struct trace_cache *
trace_cache_get(void)
{
    struct trace_cache **cachep = trace_cache_ptr_get();

    if (OVS_UNLIKELY(!*cachep)) {
        *cachep = xmalloc(sizeof **cachep);
        (*cachep)->n = 0;
        ovsthread_setspecific(trace_cache_key, *cachep);
    }
    return *cachep;
}

static struct upcall_trace_round *
trace_alloc(void)
{
    struct trace_cache *cache = trace_cache_get();

    if (cache->n) {
        return cache->traces[--cache->n];
    }
    return xmalloc(sizeof(struct upcall_trace_round));
}

static void
trace_free(struct upcall_trace_round *trace)
{
    struct trace_cache *cache = trace_cache_get();

    if (cache->n < TRACE_CACHE_SIZE) {
        cache->traces[cache->n++] = trace;
    } else {
        free(trace);
    }
}

static int64_t
monotonic_ms(void *aux OVS_UNUSED)
{
    return time_msec();
}

static int64_t
wall_ms(void *aux OVS_UNUSED)
{
    return time_wall_msec();
}

/* Trace ids are PREFIX << 32 | N: N counts the traces of this run of
 * ovs-vswitchd, PREFIX is drawn at random (21 bits, nonzero) at each start,
 * so that an id kept from an earlier run never names another trace, and is
 * recognized as such (but for a chance of 1 in 2 million), and ids stay
 * below 2**53, exact as JSON numbers everywhere.  The environment variable
 * OVS_UPCALL_TRACE_ID_PREFIX sets it instead, for test suites that want
 * predictable ids (0 gives 1, 2, 3...). */
static uint64_t trace_id_prefix;

static uint64_t
draw_trace_id_prefix(void)
{
    const char *s = getenv("OVS_UPCALL_TRACE_ID_PREFIX");
    unsigned int prefix;

    if (s && str_to_uint(s, 10, &prefix) && prefix < (1u << 21)) {
        return prefix;
    }
    return 1 + random_range((1u << 21) - 1);
}

void
upcall_trace_init(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

    if (ovsthread_once_start(&once)) {
        trace_id_prefix = draw_trace_id_prefix();
        ovsthread_key_create(&trace_cache_key, trace_cache_destroy);
        struct uptrace_engine_options options = {
            .formatter = upcall_trace_format_tunnel_blob,
            .monotonic_ms = monotonic_ms,
            .wall_ms = wall_ms,
            .first_trace_id = (trace_id_prefix << 32) | 1,
        };
        engine = uptrace_engine_create(&options);
        upcall_trace_unixctl_register();
        upcall_trace_purge_register();
        ovsthread_once_done(&once);
    }
}

uint64_t
upcall_trace_id_prefix(void)
{
    upcall_trace_init();
    return trace_id_prefix;
}

struct uptrace_engine *
upcall_trace_engine(void)
{
    upcall_trace_init();
    return engine;
}

/* Configuration. */

const char *
upcall_trace_datapath_name(const char *bridge)
{
    struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(bridge);

    return ofproto ? dpif_name(ofproto->backer->dpif) : NULL;
}

/* Builds an index of the bindings in 'published_bindings' whose session
 * wants upcalls, recording which in 'binding_indexed', and publishes it. */
static void
publish_index(void)
{
    struct upcall_trace_index *index = upcall_trace_index_create();
    struct upcall_trace_index *old;

    for (size_t i = 0; i < n_published_bindings; i++) {
        const struct upcall_trace_binding *b = &published_bindings[i];
        struct ofputil_port_map *ports;

        binding_indexed[i] = uptrace_session_wants_upcalls(b->session);
        if (!binding_indexed[i]) {
            continue;
        }
        struct match match;

        minimatch_expand(&b->match, &match);
        ports = upcall_trace_index_add(index, &b->ofproto_uuid, &match,
                                       b->session);
        if (ports) {
            struct ofproto_dpif *ofproto
                = ofproto_dpif_lookup_by_uuid(&b->ofproto_uuid);

            if (ofproto) {
                ofproto_append_ports_to_map(ports, ofproto->up.ports);
            }
        }
    }

    old = ovsrcu_get_protected(struct upcall_trace_index *, &trace_index);
    ovsrcu_set(&trace_index, index);
    if (old) {
        ovsrcu_postpone(upcall_trace_index_destroy, old);
    }
}

void
upcall_trace_set_bindings(const struct upcall_trace_binding *bindings,
                          size_t n)
{
    for (size_t i = 0; i < n_published_bindings; i++) {
        minimatch_destroy(&published_bindings[i].match);
    }
    free(published_bindings);
    published_bindings = n ? xmalloc(n * sizeof *bindings) : NULL;
    for (size_t i = 0; i < n; i++) {
        published_bindings[i].session = bindings[i].session;
        published_bindings[i].ofproto_uuid = bindings[i].ofproto_uuid;
        minimatch_clone(&published_bindings[i].match, &bindings[i].match);
    }
    n_published_bindings = n;
    free(binding_indexed);
    binding_indexed = xcalloc(MAX(n, 1), sizeof *binding_indexed);
    publish_index();

    /* Every binding counts, indexed or not: the upcall path also looks for
     * the recirculations of traced packets while any session exists. */
    atomic_store_relaxed(&upcall_trace_n_bindings, n);
    if (!n) {
        /* Nothing captures: hold no rule text either. */
        upcall_trace_rules_clear();
    }
}

void
upcall_trace_refresh_index(void)
{
    for (size_t i = 0; i < n_published_bindings; i++) {
        const struct upcall_trace_binding *b = &published_bindings[i];

        if (binding_indexed[i] != uptrace_session_wants_upcalls(b->session)) {
            COVERAGE_INC(upcall_trace_index_refresh);
            publish_index();
            return;
        }
    }
}

const struct upcall_trace_binding *
upcall_trace_get_bindings(size_t *n)
{
    *n = n_published_bindings;
    return published_bindings;
}

void
upcall_trace_get_memory_usage(struct simap *usage)
{
    struct uptrace_memory_usage mem;
    size_t n_rules, rule_bytes;

    if (!engine) {
        return;
    }
    uptrace_engine_get_memory_usage(engine, &mem);
    upcall_trace_rules_get_usage(&n_rules, &rule_bytes);
    if (mem.n_sessions || n_rules) {
        simap_increase(usage, "upcall_trace_sessions", mem.n_sessions);
        simap_increase(usage, "upcall_traces", mem.n_traces);
        simap_increase(usage, "upcall_trace_rounds", mem.n_rounds);
        simap_increase(usage, "upcall_trace_rules", n_rules);
        /* Everything held once: a round that several sessions store, and
         * the text of a rule, are counted once. */
        simap_increase(usage, "upcall_trace_kbytes",
                       DIV_ROUND_UP(mem.bytes + rule_bytes, 1024));
    }
}

/* The upcall path. */

/* Stores in '*flow' the flow at the start of the thawed round that 'xin'
 * is about to translate, as the OpenFlow pipeline sees it: the upcall's
 * flow with the frozen pipeline metadata (in_port, registers, metadata,
 * tunnel) restored and the conntrack fields cleared if the frozen pipeline
 * had not gone through conntrack, as xlate_actions() will do. */
static void
thawed_flow(const struct xlate_in *xin, const struct frozen_state *state,
            struct flow *flow)
{
    *flow = xin->flow;
    flow->tunnel = state->metadata.tunnel;
    flow->tunnel.metadata.tab = xin->flow.tunnel.metadata.tab;
    flow->metadata = state->metadata.metadata;
    memcpy(flow->regs, state->metadata.regs, sizeof flow->regs);
    flow->in_port.ofp_port = state->metadata.in_port;
    if (!state->conntracked) {
        flow_clear_conntrack(flow);
    }
}

/* Most upcalls end at upcall_trace_begin()'s first test: the rest of the
 * work, and its stack frame, stay out of their way. */
#ifdef __GNUC__
#define UPCALL_TRACE_NOINLINE __attribute__((__noinline__))
#else
#define UPCALL_TRACE_NOINLINE
#endif

static struct upcall_trace_round *begin__(const struct ofproto_dpif *,
                                          const struct flow *,
                                          const struct dp_packet *,
                                          const char *upcall_type,
                                          unsigned pmd_id,
                                          struct xlate_in *)
    UPCALL_TRACE_NOINLINE;

struct upcall_trace_round *
upcall_trace_begin(const struct ofproto_dpif *ofproto,
                   const struct flow *flow, const struct dp_packet *packet,
                   const char *upcall_type, unsigned pmd_id,
                   struct xlate_in *xin)
{
    const struct upcall_trace_index *index
        = ovsrcu_get(struct upcall_trace_index *, &trace_index);

    /* The common case, decided cheaply: a round that starts on this bridge
     * (or resumes a pipeline frozen on it), without Geneve options to
     * convert, that no session's filter matches and that does not continue
     * a traced packet.  begin__() decides the same way for the rest. */
    if (OVS_LIKELY(index && packet
                   && !(flow->tunnel.flags & FLOW_TNL_F_UDPIF))) {
        const struct frozen_state *state = xin->frozen_state;
        const struct upcall_trace_bridge *bridge
            = upcall_trace_index_find(index, &ofproto->uuid);

        if ((!state || uuid_equals(&state->ofproto_uuid, &ofproto->uuid))
            && (!bridge || !upcall_trace_bridge_may_match(bridge, &xin->flow,
                                                          state != NULL))
            && (!flow->recirc_id
                || !uptrace_engine_expects(engine, flow->recirc_id))) {
            return NULL;
        }
    }
    return begin__(ofproto, flow, packet, upcall_type, pmd_id, xin);
}

static struct upcall_trace_round *
begin__(const struct ofproto_dpif *ofproto, const struct flow *flow,
        const struct dp_packet *packet, const char *upcall_type,
        unsigned pmd_id, struct xlate_in *xin)
{
    const struct upcall_trace_index *index
        = ovsrcu_get(struct upcall_trace_index *, &trace_index);
    const struct upcall_trace_bridge *bridge
        = index ? upcall_trace_index_find(index, &ofproto->uuid) : NULL;
    const struct upcall_trace_bridge *match_bridge = bridge;
    struct uptrace_session *stub[16];
    struct uptrace_session **sessions = stub;
    struct uptrace_round *capture = NULL;
    const struct flow *match_flow;
    struct flow tnl_flow;
    size_t n_sessions = 0;
    struct flow buf;
    bool expected;

    if (!packet) {
        return NULL;
    }
    /* The filters are matched on the flow at the start of the round, on the
     * bridge it runs on: after a thaw, the bridge the pipeline was frozen
     * on, with the registers, metadata and in_port it had then (built only
     * if some filter of that bridge looks at them). */
    match_flow = &xin->flow;
    if (bridge) {
        /* Geneve options as tun_metadataN, as the filters name them. */
        match_flow = upcall_trace_filter_flow(ofproto, flow, &xin->flow,
                                              &tnl_flow);
    }
    if (xin->frozen_state && index) {
        const struct frozen_state *state = xin->frozen_state;

        if (!uuid_equals(&state->ofproto_uuid, &ofproto->uuid)) {
            match_bridge = upcall_trace_index_find(index,
                                                   &state->ofproto_uuid);
        }
        if (match_bridge
            && upcall_trace_bridge_needs_thaw_fields(match_bridge)) {
            thawed_flow(xin, state, &buf);
            match_flow = &buf;
        }
    }

    /* Decide first, cheaply: a later round of a traced packet, whatever
     * the filters say, or a match of some session's filter, of a session
     * that can start a trace now. */
    expected = (flow->recirc_id
                && uptrace_engine_expects(engine, flow->recirc_id));
    if (match_bridge) {
        n_sessions = upcall_trace_bridge_match(match_bridge, match_flow, stub,
                                               ARRAY_SIZE(stub), &sessions);
        if (n_sessions) {
            size_t n_open = uptrace_sessions_drop_closed(engine, sessions,
                                                         n_sessions);

            COVERAGE_ADD(upcall_trace_closed, n_sessions - n_open);
            n_sessions = n_open;
        }
    }
    if (!expected && !n_sessions) {
        if (sessions != stub) {
            free(sessions);
        }
        return NULL;
    }

    ofp_port_t in_port = xin->flow.in_port.ofp_port;
    struct uptrace_round_info info = {
        .upcall_type = upcall_type,
        .recirc_id = flow->recirc_id,
        .in_port = ofp_to_u16(in_port),
        .in_port_name = (bridge
                         ? upcall_trace_bridge_port_name(bridge, in_port)
                         : NULL),
        .datapath = dpif_name(ofproto->backer->dpif),
        .pmd_id = pmd_id == PMD_ID_NULL ? UINT32_MAX : pmd_id,
        .bridge = upcall_trace_xlate_ofproto(ofproto, xin)->up.name,
    };

    if (expected) {
        struct uptrace_fingerprint fp;

        /* The addresses first: the payload is hashed only if a traced
         * packet with this tuple (or any, after NAT) is waiting. */
        upcall_trace_fingerprint_tuple(flow, &fp);
        fp.nat = (flow->ct_state & (CS_SRC_NAT | CS_DST_NAT)) != 0;
        if (uptrace_engine_expects_tuple(engine, flow->recirc_id, &fp)) {
            upcall_trace_fingerprint_packet(flow, packet, &fp);
            capture = uptrace_round_continue(engine, flow->recirc_id, &fp,
                                             &info);
        }
        if (capture && n_sessions) {
            /* Sessions that do not trace this packet yet but whose filter
             * matches this round start a trace here. */
            uptrace_round_add_sessions(capture, sessions, n_sessions, true);
        }
    }
    if (!capture && n_sessions) {
        capture = uptrace_round_begin(engine, sessions, n_sessions, &info,
                                      flow->recirc_id != 0);
    }
    if (sessions != stub) {
        free(sessions);
    }
    if (!capture) {
        return NULL;
    }

    /* The packet itself, if a session keeps it (options:packet-bytes). */
    uint32_t packet_bytes = uptrace_round_packet_bytes(capture);
    if (packet_bytes) {
        size_t size = dp_packet_size(packet);

        uptrace_round_set_packet(capture, dp_packet_data(packet),
                                 MIN(size, packet_bytes), size);
    }

    /* Reused (see trace_alloc()), but zeroed as xzalloc() did, so that
     * every field not set here, today's or one added later, starts zeroed.
     * (A compound literal would build, and copy, a temporary.) */
    struct upcall_trace_round *trace = trace_alloc();
    memset(trace, 0, sizeof *trace);
    trace->capture = capture;
    ovs_list_init(&trace->nodes);
    trace->upcall_flow = flow;
    trace->packet = packet;
    trace->initial_flow = xin->flow;

    xin->trace = &trace->nodes;
    /* Port names are not safe to read outside the main thread: number them,
     * as ofproto/trace does by default. */
    xin->names = false;
    upcall_trace_rules_begin(xin);
    trace->nodes_in_arena = upcall_trace_nodes_begin();
    upcall_trace_grouping_begin(xin, flow);
    return trace;
}

/* Frees the translation tree of 'trace', or forgets it if it is all in
 * this thread's arena. */
static void
release_nodes(struct upcall_trace_round *trace)
{
    if (upcall_trace_nodes_release(trace->nodes_in_arena)) {
        oftrace_node_list_destroy(&trace->nodes);
    }
    ovs_list_init(&trace->nodes);
    trace->nodes_taken = true;
}

/* The translation tree of a round, depth first, as the engine takes it. */
struct node_batch {
    struct uptrace_node stub[32];
    struct uptrace_node *nodes;
    size_t n, allocated;
};

static void
collect_nodes(struct node_batch *batch, const struct ovs_list *nodes,
              unsigned int depth)
{
    const struct oftrace_node *node;

    LIST_FOR_EACH (node, node, nodes) {
        enum uptrace_node_type type;

        switch (node->type) {
        case OFT_BRIDGE: type = UPTRACE_NODE_BRIDGE; break;
        case OFT_TABLE: type = UPTRACE_NODE_TABLE; break;
        case OFT_THAW: type = UPTRACE_NODE_THAW; break;
        case OFT_BUCKET: type = UPTRACE_NODE_BUCKET; break;
        case OFT_ACTION: type = UPTRACE_NODE_ACTION; break;
        case OFT_DETAIL: type = UPTRACE_NODE_DETAIL; break;
        case OFT_WARN: type = UPTRACE_NODE_WARN; break;
        case OFT_ERROR: default: type = UPTRACE_NODE_ERROR; break;
        }
        if (batch->n >= batch->allocated) {
            if (batch->nodes == batch->stub) {
                batch->nodes = xmemdup(batch->stub, sizeof batch->stub);
            }
            batch->nodes = x2nrealloc(batch->nodes, &batch->allocated,
                                      sizeof *batch->nodes);
        }
        batch->nodes[batch->n++] = (struct uptrace_node) {
            .type = type,
            .depth = depth,
            .text = node->text,
            .size = strlen(node->text),
        };
        collect_nodes(batch, &node->subs, depth + 1);
    }
}

/* Hands the translation tree 'nodes' to 'capture', depth first, as it is,
 * in one call: the engine renders it only when it is read. */
static void
add_nodes(struct uptrace_round *capture, const struct ovs_list *nodes)
{
    struct node_batch batch;

    batch.nodes = batch.stub;
    batch.n = 0;
    batch.allocated = ARRAY_SIZE(batch.stub);
    collect_nodes(&batch, nodes, 0);
    uptrace_round_add_nodes(capture, batch.nodes, batch.n);
    if (batch.nodes != batch.stub) {
        free(batch.nodes);
    }
}

void
upcall_trace_xlate_done(struct upcall_trace_round *trace,
                        const struct xlate_in *xin,
                        const struct xlate_out *xout, int xlate_error,
                        const struct flow_wildcards *wc,
                        const struct ofpbuf *odp_actions,
                        const ovs_u128 *ufid)
{
    struct uptrace_round *capture = trace->capture;

    upcall_trace_rules_end();
    upcall_trace_nodes_end();

    /* The blobs' final size, allocated once (the megaflow's comes at
     * upcall_trace_finish()).  add_nodes() sizes the tree's storage. */
    uptrace_round_reserve(capture, 0, 0,
                          2 * sizeof trace->initial_flow + odp_actions->size
                          + sizeof(struct upcall_trace_megaflow_blob));

    uptrace_round_set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW,
                           &trace->initial_flow, sizeof trace->initial_flow);
    struct flow final_buf;
    const struct flow *final = upcall_trace_final_flow(trace->upcall_flow,
                                                       &trace->initial_flow,
                                                       xin, &final_buf);
    uptrace_round_set_blob(capture, UPTRACE_BLOB_FINAL_FLOW,
                           final, sizeof *final);
    uptrace_round_set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS,
                           odp_actions->data, odp_actions->size);
    if (wc) {
        trace->wc = *wc;
        trace->have_wc = true;
    }

    add_nodes(capture, &trace->nodes);
    release_nodes(trace);

    if (xlate_error != XLATE_OK) {
        uptrace_round_set_xlate_error(capture, xlate_strerror(xlate_error));
    }
    if (ufid) {
        uptrace_round_set_ufid(capture, (const uint8_t *) ufid);
    }
    trace->slow = xout->slow;
    if (xout->slow) {
        /* As ofproto/trace explains it. */
        enum slow_path_reason slow = xout->slow;
        struct ds why = DS_EMPTY_INITIALIZER;

        ds_put_cstr(&why, "This flow is handled by the userspace slow path "
                    "because it:");
        for (; slow; slow = zero_rightmost_1bit(slow)) {
            ds_put_format(&why, "\n  - %s.",
                          slow_path_reason_to_explanation(
                              rightmost_1bit(slow)));
        }
        uptrace_round_set_slow_path(capture, ds_cstr(&why));
        ds_destroy(&why);
    }

    /* The datapath may recirculate the packet before this round is stored,
     * and another thread may handle that upcall: expect it now. */
    upcall_trace_expect_rounds(capture, xin, trace->upcall_flow,
                               trace->packet, &xin->flow, odp_actions);
}

void
upcall_trace_set_put_op(struct upcall_trace_round *trace,
                        const struct dpif_op *op)
{
    trace->put_op = op;
}

void
upcall_trace_set_execute_op(struct upcall_trace_round *trace,
                            const struct dpif_op *op)
{
    trace->execute_op = op;
}

void
upcall_trace_finish(struct upcall_trace_round **tracep, bool installed,
                    const char *reason, const struct flow_wildcards *wc,
                    bool exact)
{
    struct upcall_trace_round *trace = *tracep;
    char *msg = NULL;

    if (!trace) {
        return;
    }
    *tracep = NULL;

    if (installed && trace->put_op && trace->put_op->error) {
        installed = false;
        reason = msg = xasprintf("the datapath refused the flow (%s)",
                                 ovs_strerror(trace->put_op->error));
    }
    if (installed && trace->slow) {
        reason = msg = xasprintf("slow path: %s",
                                 slow_path_reason_to_explanation(
                                     (enum slow_path_reason)
                                     (trace->slow & -trace->slow)));
    }
    uptrace_round_set_install(trace->capture, installed, reason);

    if (trace->execute_op && trace->execute_op->error) {
        char *error = xasprintf("the datapath failed to execute the actions "
                                "(%s)",
                                ovs_strerror(trace->execute_op->error));

        uptrace_round_set_execute_error(trace->capture, error);
        free(error);
    }

    if (wc || trace->have_wc || exact) {
        struct upcall_trace_megaflow_blob megaflow = {
            .flow = trace->initial_flow,
            .wc = wc ? *wc : trace->wc,
        };

        if (exact) {
            /* As the flow was installed: ukey_create_from_upcall() gives
             * the kernel no mask, and upcall_cb() the userspace datapath
             * this exact mask. */
            flow_wildcards_init_for_packet(&megaflow.wc, trace->upcall_flow);
        }
        uptrace_round_set_blob(trace->capture, UPTRACE_BLOB_MEGAFLOW,
                               &megaflow, sizeof megaflow);
    }

    uptrace_round_commit(trace->capture);
    if (installed) {
        upcall_trace_flow_installed();
    }
    free(msg);
    trace_free(trace);
}

void
upcall_trace_abort(struct upcall_trace_round *trace)
{
    if (trace) {
        upcall_trace_grouping_end();
        if (!trace->nodes_taken) {
            upcall_trace_rules_end();
            upcall_trace_nodes_end();
            release_nodes(trace);
        }
        uptrace_round_abort(trace->capture);
        trace_free(trace);
    }
}
