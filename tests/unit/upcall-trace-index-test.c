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

/* Tests ofproto/upcall-trace-index.c, the shim's per-bridge filter index.
 *
 * The index only references sessions, so this program stands in for the
 * engine's uptrace_session_ref() and uptrace_session_unref() with counting
 * versions, to check that the index releases what it takes.  Exits with
 * status 0 on success, 1 on failure. */

#include <config.h>

#include "upcall-trace-index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-port.h"
#include "ovs-rcu.h"
#include "upcall-trace.h"
#include "util.h"
#include "uuid.h"

static int n_failures;

#define CHECK(CONDITION)                                                \
    do {                                                                \
        if (!(CONDITION)) {                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n",                \
                    __FILE__, __LINE__, #CONDITION);                    \
            n_failures++;                                               \
        }                                                               \
    } while (0)

/* The engine's session is opaque: here, a reference count. */
struct uptrace_session {
    int refs;
};

struct uptrace_session *
uptrace_session_ref(struct uptrace_session *session)
{
    session->refs++;
    return session;
}

void
uptrace_session_unref(struct uptrace_session *session)
{
    CHECK(session->refs > 0);
    session->refs--;
}

static void
parse_match(const char *s, struct match *match)
{
    struct flow_wildcards wc;
    struct flow flow;
    char *error;

    error = parse_ofp_exact_flow(&flow, &wc, NULL, s, NULL);
    if (error) {
        ovs_fatal(0, "%s: %s", s, error);
    }
    match_init(match, &flow, &wc);
}

static void
parse_flow(const char *s, struct flow *flow)
{
    struct match match;

    parse_match(s, &match);
    *flow = match.flow;
}

/* Matches 'flow' on 'bridge' with a stub of 'n_stub' and checks that the
 * result is 'expected' (the indexes in 'sessions' of the sessions, in order,
 * ended by -1) and that the stub was used exactly when it was big enough. */
static void
check_match(const struct upcall_trace_bridge *bridge, const char *flow_s,
            size_t n_stub, bool stub_used, struct uptrace_session *sessions,
            const int *expected)
{
    struct uptrace_session *stub[8];
    struct uptrace_session **matched = NULL;
    struct flow flow;
    size_t n_expected = 0;
    size_t n;

    ovs_assert(n_stub <= ARRAY_SIZE(stub));
    parse_flow(flow_s, &flow);
    n = upcall_trace_bridge_match(bridge, &flow, stub, n_stub, &matched);
    while (expected[n_expected] >= 0) {
        n_expected++;
    }
    if (n != n_expected) {
        fprintf(stderr, "%s: %"PRIuSIZE" matches, expected %"PRIuSIZE"\n",
                flow_s, n, n_expected);
        n_failures++;
    } else {
        for (size_t i = 0; i < n; i++) {
            CHECK(matched[i] == &sessions[expected[i]]);
        }
    }
    CHECK((matched == stub) == stub_used);
    if (matched != stub) {
        free(matched);
    }
}

static const struct uuid bridge_a = { .parts = { 0xa } };
static const struct uuid bridge_b = { .parts = { 0xb } };
static const struct uuid bridge_c = { .parts = { 0xc } };

int
main(void)
{
    struct uptrace_session sessions[8];
    struct upcall_trace_index *index;
    const struct upcall_trace_bridge *a, *b;
    struct ofputil_port_map *ports;
    struct match match;

    memset(sessions, 0, sizeof sessions);
    index = upcall_trace_index_create();

    /* Bridge A: two sessions, compared with the flow one by one. */
    parse_match("udp", &match);
    ports = upcall_trace_index_add(index, &bridge_a, &match, &sessions[0]);
    CHECK(ports != NULL);
    if (ports) {
        ofputil_port_map_put(ports, u16_to_ofp(1), "p1");
    }
    parse_match("udp,nw_src=10.0.0.1", &match);
    CHECK(!upcall_trace_index_add(index, &bridge_a, &match, &sessions[1]));

    /* Bridge B: more sessions than are compared one by one, so that the
     * classifier decides first.  Sessions 2 and 3 share a filter, and
     * session 2 is added twice: all are found. */
    parse_match("tcp,tp_dst=80", &match);
    CHECK(upcall_trace_index_add(index, &bridge_b, &match, &sessions[2]));
    parse_match("tcp,tp_dst=80", &match);
    CHECK(!upcall_trace_index_add(index, &bridge_b, &match, &sessions[3]));
    parse_match("tcp,tp_dst=22", &match);
    CHECK(!upcall_trace_index_add(index, &bridge_b, &match, &sessions[4]));
    parse_match("udp,udp_dst=53", &match);
    CHECK(!upcall_trace_index_add(index, &bridge_b, &match, &sessions[5]));
    parse_match("icmp", &match);
    CHECK(!upcall_trace_index_add(index, &bridge_b, &match, &sessions[6]));
    match_init_catchall(&match);
    match_set_in_port(&match, u16_to_ofp(7));
    CHECK(!upcall_trace_index_add(index, &bridge_b, &match, &sessions[2]));

    CHECK(sessions[0].refs == 1 && sessions[1].refs == 1);
    CHECK(sessions[2].refs == 2 && sessions[6].refs == 1);
    CHECK(sessions[7].refs == 0);

    a = upcall_trace_index_find(index, &bridge_a);
    b = upcall_trace_index_find(index, &bridge_b);
    CHECK(a && b && a != b);
    CHECK(!upcall_trace_index_find(index, &bridge_c));

    const char *udp1 = "in_port=1,udp,nw_src=10.0.0.1,nw_dst=10.0.0.2,"
                       "udp_src=5000,udp_dst=53";
    const char *udp9 = "in_port=1,udp,nw_src=10.0.0.9,nw_dst=10.0.0.2,"
                       "udp_src=5000,udp_dst=53";
    const char *tcp80 = "in_port=7,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,"
                        "tcp_src=5000,tcp_dst=80";
    const char *tcp443 = "in_port=1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,"
                         "tcp_src=5000,tcp_dst=443";

    check_match(a, udp1, 8, true, sessions, (int []) { 0, 1, -1 });
    check_match(a, udp9, 8, true, sessions, (int []) { 0, -1 });
    check_match(a, tcp80, 8, true, sessions, (int []) { -1 });
    /* With fewer stub slots than sessions on the bridge, the array is
     * allocated, even if fewer match. */
    check_match(a, udp9, 1, false, sessions, (int []) { 0, -1 });

    check_match(b, tcp80, 8, true, sessions, (int []) { 2, 3, 2, -1 });
    check_match(b, udp1, 8, true, sessions, (int []) { 5, -1 });
    check_match(b, tcp443, 8, true, sessions, (int []) { -1 });
    check_match(b, tcp80, 2, false, sessions, (int []) { 2, 3, 2, -1 });
    /* No match in the classifier: no allocation either. */
    check_match(b, tcp443, 2, true, sessions, (int []) { -1 });

    const char *name = upcall_trace_bridge_port_name(a, u16_to_ofp(1));
    CHECK(name && !strcmp(name, "p1"));
    CHECK(!upcall_trace_bridge_port_name(a, u16_to_ofp(2)));
    CHECK(!upcall_trace_bridge_port_name(b, u16_to_ofp(1)));

    upcall_trace_index_destroy(index);
    for (size_t i = 0; i < ARRAY_SIZE(sessions); i++) {
        CHECK(sessions[i].refs == 0);
    }
    upcall_trace_index_destroy(NULL);

    /* Runs what the classifier postponed, for the leak checker. */
    ovsrcu_exit();

    if (n_failures) {
        fprintf(stderr, "%d checks failed\n", n_failures);
        return 1;
    }
    printf("upcall-trace-index-test: all checks passed\n");
    return 0;
}
