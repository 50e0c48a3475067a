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

#include "upcall-trace-bench-ovs.h"

#include <stdlib.h>

#include "flow.h"
#include "odp-util.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/ofpbuf.h"
#include "ovs-atomic.h"
#include "packets.h"
#include "upcall-trace-blob.h"
#include "upcall-trace-index.h"
#include "util.h"

/* The benchmark's upcall: UDP 10.0.0.1:5000 -> 10.0.0.2:53 from port 1. */
static struct flow upcall_flow;
static struct upcall_trace_megaflow_blob megaflow;
static struct ofpbuf odp_actions;

static void
init_blobs(void)
{
    static bool done;
    struct flow_wildcards wc;
    char *error;

    if (done) {
        return;
    }
    done = true;

    error = parse_ofp_exact_flow(
        &upcall_flow, &wc, NULL,
        "in_port=1,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,"
        "udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,udp_src=5000,"
        "udp_dst=53", NULL);
    if (error) {
        ovs_fatal(0, "bench flow: %s", error);
    }
    /* A megaflow mask like the ct pipeline's: in_port, eth type, ip
     * addresses, protocol, ct state. */
    megaflow.flow = upcall_flow;
    flow_wildcards_init_catchall(&megaflow.wc);
    WC_MASK_FIELD(&megaflow.wc, in_port);
    WC_MASK_FIELD(&megaflow.wc, dl_type);
    WC_MASK_FIELD(&megaflow.wc, nw_proto);
    WC_MASK_FIELD(&megaflow.wc, nw_frag);
    WC_MASK_FIELD(&megaflow.wc, ct_state);
    WC_MASK_FIELD(&megaflow.wc, recirc_id);

    ofpbuf_init(&odp_actions, 64);
    if (odp_actions_from_string("ct(zone=1),recirc(1)", NULL,
                                &odp_actions)) {
        ovs_fatal(0, "bench datapath actions do not parse");
    }
}

void
bench_blobs_get(struct bench_blobs *b)
{
    init_blobs();
    b->flow = &upcall_flow;
    b->flow_size = sizeof upcall_flow;
    b->megaflow = &megaflow;
    b->megaflow_size = sizeof megaflow;
    b->odp_actions = odp_actions.data;
    b->odp_actions_size = odp_actions.size;
}

uptrace_blob_formatter *
bench_blob_formatter(void)
{
    return upcall_trace_format_blob;
}

/* The ofproto uuid of the bridge of the benchmark's sessions. */
static const struct uuid bench_bridge = { .parts = { 1, 2, 3, 4 } };

static atomic_uint32_t bench_n_bindings = 0;

bool
bench_is_active(void)
{
    uint32_t n;

    atomic_read_relaxed(&bench_n_bindings, &n);
    return n != 0;
}

void
bench_set_active(unsigned int n)
{
    atomic_store_relaxed(&bench_n_bindings, n);
}

struct upcall_trace_index *
bench_index_create(struct uptrace_session *const *sessions, size_t n,
                   bool matching)
{
    struct upcall_trace_index *index = upcall_trace_index_create();

    init_blobs();
    for (size_t i = 0; i < n; i++) {
        struct ofputil_port_map *ports;
        struct flow_wildcards wc;
        struct match match;
        struct flow flow;
        char *filter, *error;

        /* Port 53 is the benchmark flow's: never used when not matching. */
        filter = (matching ? xstrdup("udp,nw_src=10.0.0.1")
                  : xasprintf("udp,udp_dst=%d", (int) (10000 + i)));
        error = parse_ofp_exact_flow(&flow, &wc, NULL, filter, NULL);
        if (error) {
            ovs_fatal(0, "bench filter %s: %s", filter, error);
        }
        free(filter);
        match_init(&match, &flow, &wc);

        ports = upcall_trace_index_add(index, &bench_bridge, &match,
                                       sessions[i]);
        if (ports) {
            ofputil_port_map_put(ports, u16_to_ofp(1), "p1");
        }
    }
    return index;
}

void
bench_index_destroy(struct upcall_trace_index *index)
{
    upcall_trace_index_destroy(index);
}

size_t
bench_index_match(const struct upcall_trace_index *index,
                  struct uptrace_session **stub, size_t n_stub,
                  struct uptrace_session ***sessionsp)
{
    const struct upcall_trace_bridge *bridge
        = upcall_trace_index_find(index, &bench_bridge);

    *sessionsp = stub;
    return (bridge
            ? upcall_trace_bridge_match(bridge, &upcall_flow, stub, n_stub,
                                        sessionsp)
            : 0);
}
