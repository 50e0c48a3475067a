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
#include <string.h>

#include "classifier.h"
#include "flow.h"
#include "odp-util.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofpbuf.h"
#include "ovs-atomic.h"
#include "packets.h"
#include "util.h"

/* The benchmark's upcall: UDP 10.0.0.1:5000 -> 10.0.0.2:53 from port 1. */
static struct flow upcall_flow;
static struct match megaflow;
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
    flow_wildcards_init_catchall(&wc);
    WC_MASK_FIELD(&wc, in_port);
    WC_MASK_FIELD(&wc, dl_type);
    WC_MASK_FIELD(&wc, nw_proto);
    WC_MASK_FIELD(&wc, nw_frag);
    WC_MASK_FIELD(&wc, ct_state);
    WC_MASK_FIELD(&wc, recirc_id);
    match_init(&megaflow, &upcall_flow, &wc);

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

/* A copy of format_blob() in ofproto/ofproto-dpif-upcall-trace.c. */
char *
bench_format_blob(enum uptrace_blob kind, const void *data, size_t size,
                  const char *bridge OVS_UNUSED, void *aux OVS_UNUSED)
{
    struct ds s = DS_EMPTY_INITIALIZER;

    switch (kind) {
    case UPTRACE_BLOB_INITIAL_FLOW:
    case UPTRACE_BLOB_FINAL_FLOW: {
        struct flow flow;

        if (size != sizeof flow) {
            return NULL;
        }
        memcpy(&flow, data, sizeof flow);
        flow_format(&s, &flow, NULL);
        break;
    }

    case UPTRACE_BLOB_MEGAFLOW: {
        struct match match;

        if (size != sizeof match) {
            return NULL;
        }
        memcpy(&match, data, sizeof match);
        match_format(&match, NULL, &s, OFP_DEFAULT_PRIORITY);
        break;
    }

    case UPTRACE_BLOB_ODP_ACTIONS: {
        uint64_t stub[1024 / 8];
        struct ofpbuf buf;

        ofpbuf_use_stub(&buf, stub, sizeof stub);
        ofpbuf_put(&buf, data, size);
        format_odp_actions(&s, buf.data, buf.size, NULL);
        ofpbuf_uninit(&buf);
        break;
    }

    case UPTRACE_N_BLOBS:
    default:
        return NULL;
    }
    return ds_steal_cstr(&s);
}

/* A copy of the shim's "struct bridge_index" and match_sessions(). */
struct bench_rule {
    struct cls_rule cr;
    struct uptrace_session *session;
};

struct bench_index {
    struct classifier cls;
    struct bench_rule **rules;
    size_t n_rules;
};

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

struct bench_index *
bench_index_create(struct uptrace_session *const *sessions, size_t n,
                   bool matching)
{
    struct bench_index *bi = xzalloc(sizeof *bi);

    init_blobs();
    classifier_init(&bi->cls, flow_segment_u64s);
    bi->rules = xcalloc(n ? n : 1, sizeof *bi->rules);
    for (size_t i = 0; i < n; i++) {
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

        struct bench_rule *rule = xmalloc(sizeof *rule);
        cls_rule_init(&rule->cr, &match, (int) i + 1);
        rule->session = sessions[i];
        classifier_insert(&bi->cls, &rule->cr, OVS_VERSION_MIN, NULL, 0);
        bi->rules[bi->n_rules++] = rule;
    }
    return bi;
}

void
bench_index_destroy(struct bench_index *bi)
{
    if (!bi) {
        return;
    }
    for (size_t i = 0; i < bi->n_rules; i++) {
        classifier_remove_assert(&bi->cls, &bi->rules[i]->cr);
    }
    classifier_destroy(&bi->cls);
    for (size_t i = 0; i < bi->n_rules; i++) {
        cls_rule_destroy(&bi->rules[i]->cr);
        free(bi->rules[i]);
    }
    free(bi->rules);
    free(bi);
}

size_t
bench_index_match(const struct bench_index *bi, struct uptrace_session **out)
{
    size_t n = 0;

    if (!classifier_lookup(&bi->cls, OVS_VERSION_MIN, &upcall_flow,
                           NULL, NULL)) {
        return 0;
    }
    for (size_t i = 0; i < bi->n_rules; i++) {
        const struct bench_rule *rule = bi->rules[i];

        if (minimatch_matches_flow(&rule->cr.match, &upcall_flow)) {
            out[n++] = rule->session;
        }
    }
    return n;
}
