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
    /* The quick test never misses a match. */
    CHECK(!n || upcall_trace_bridge_may_match(bridge, &flow, false));
    CHECK(!n || upcall_trace_bridge_may_match(bridge, &flow, true));
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

/* Parses 'filter' with upcall_trace_filter_parse() and checks that it
 * gives 'error' (NULL: none).  Returns whether it parsed. */
static bool
check_filter_parse(const char *filter, const struct ofputil_port_map *ports,
                   const char *error, struct match *match)
{
    char *msg = upcall_trace_filter_parse(filter, ports, NULL, match);

    if (!error != !msg || (msg && strcmp(msg, error))) {
        fprintf(stderr, "filter \"%s\": got error \"%s\", expected "
                "\"%s\"\n", filter, msg ? msg : "(none)",
                error ? error : "(none)");
        n_failures++;
    }
    free(msg);
    return !msg;
}

/* Checks that 'filter' parses and that each of 'flows' (ended by NULL,
 * exact flows in parse_ofp_exact_flow() syntax, each prefixed by '+' if it
 * must match, '-' if not) matches it or not. */
static void
check_filter(const char *filter, const struct ofputil_port_map *ports,
             const char *const *flows)
{
    struct minimatch minimatch;
    struct match match;

    if (!check_filter_parse(filter, ports, NULL, &match)) {
        return;
    }
    minimatch_init(&minimatch, &match);
    for (; *flows; flows++) {
        bool expected = (*flows)[0] == '+';
        struct flow flow;

        parse_flow(*flows + 1, &flow);
        if (minimatch_matches_flow(&minimatch, &flow) != expected) {
            fprintf(stderr, "filter \"%s\" %s flow %s\n", filter,
                    expected ? "does not match" : "matches", *flows + 1);
            n_failures++;
        }
    }
    minimatch_destroy(&minimatch);
}

/* The filter syntax: what "ovs-ofctl add-flow" takes, matched with the
 * semantics of an OpenFlow match. */
static void
test_filter_syntax(void)
{
    struct ofputil_port_map ports = OFPUTIL_PORT_MAP_INITIALIZER(&ports);
    struct match match;

    ofputil_port_map_put(&ports, u16_to_ofp(1), "p1");
    ofputil_port_map_put(&ports, u16_to_ofp(2), "p2");

    check_filter("ip,nw_src=10.0.0.0/24", NULL, (const char *[]) {
        "+ip,nw_src=10.0.0.1", "+udp,nw_src=10.0.0.255",
        "-ip,nw_src=10.0.1.1", "-ipv6", "-arp,arp_spa=10.0.0.1", NULL });
    check_filter("nw_src=10.0.0.0/255.255.255.0,ip", NULL, (const char *[]) {
        "+ip,nw_src=10.0.0.7", "-ip,nw_src=10.1.0.7", NULL });
    check_filter("ct_state=+trk+est,tcp", NULL, (const char *[]) {
        "+tcp,ct_state=0x22", "+tcp,ct_state=0x2a",
        "-tcp,ct_state=0x21", "-udp,ct_state=0x22", "-tcp", NULL });
    check_filter("ct_state=-new+trk", NULL, (const char *[]) {
        "+ct_state=0x22", "-ct_state=0x21", "-ct_state=0", NULL });
    check_filter("tcp,tcp_flags=+syn-ack", NULL, (const char *[]) {
        "+tcp,tcp_flags=0x002", "-tcp,tcp_flags=0x012",
        "-tcp,tcp_flags=0x010", NULL });
    check_filter("reg0=0x1/0x1", NULL, (const char *[]) {
        "+reg0=0x1", "+reg0=0xff", "-reg0=0x2", "-reg1=0x1", NULL });
    check_filter("metadata=0x5/0xff", NULL, (const char *[]) {
        "+metadata=0x5", "+metadata=0x1005", "-metadata=0x6", NULL });
    check_filter("reg3[0..3]=5", NULL, (const char *[]) {
        "+reg3=0x15", "-reg3=0x16", NULL });
    check_filter("udp,tp_src=7", NULL, (const char *[]) {
        "+udp,udp_src=7,udp_dst=9", "-udp,udp_src=8", "-tcp,tcp_src=7",
        NULL });
    check_filter("tcp,tp_dst=0x50/0xfff0", NULL, (const char *[]) {
        "+tcp,tcp_dst=80", "+tcp,tcp_dst=95", "-tcp,tcp_dst=96", NULL });
    check_filter("in_port=p2,icmp", &ports, (const char *[]) {
        "+in_port=2,icmp", "-in_port=1,icmp", "-in_port=2,udp", NULL });
    check_filter("eth,dl_src=50:54:00:00:00:00/ff:ff:ff:00:00:00", NULL,
                 (const char *[]) {
        "+dl_src=50:54:00:12:34:56", "-dl_src=50:55:00:12:34:56", NULL });
    check_filter("ipv6,ipv6_src=2001:db8::/32", NULL, (const char *[]) {
        "+ipv6,ipv6_src=2001:db8::1", "-ipv6,ipv6_src=2001:db9::1",
        "-ip", NULL });
    check_filter("", NULL, (const char *[]) { "+ip", "+arp", NULL });

    /* Precise errors. */
    check_filter_parse("nw_src=10.0.0.0/24", NULL,
                       "nw_src needs ip in the filter (its OpenFlow "
                       "prerequisite)", &match);
    check_filter_parse("tcp_flags=+syn", NULL,
                       "tcp_flags needs tcp or tcp6 in the filter (its "
                       "OpenFlow prerequisite)", &match);
    check_filter_parse("tp_src=7", NULL,
                       "tp_src needs tcp or tcp6 in the filter (its "
                       "OpenFlow prerequisite)", &match);
    check_filter_parse("ip,udp_src=7", NULL,
                       "udp_src needs udp or udp6 in the filter (its "
                       "OpenFlow prerequisite)", &match);
    check_filter_parse("foo=bar", NULL, "unknown field foo", &match);
    check_filter_parse("ip,actions=drop", NULL,
                       "actions is not a match field (a filter is only the "
                       "match of a flow)", &match);
    check_filter_parse("priority=10,ip", NULL,
                       "priority is not a match field (a filter is only the "
                       "match of a flow)", &match);
    check_filter_parse("ip,nw_src=10.0.0.0/33", NULL,
                       "10.0.0.0/33: IPv4 network prefix bits not between 0 and 32, inclusive", &match);
    check_filter_parse("in_port=p9", &ports,
                       "p9: invalid or unknown port for in_port", &match);
    check_filter_parse("reg0[0..3]=17", NULL,
                       "reg0[0..3]: value 17 does not fit into 4 bits",
                       &match);
    /* An error leaves a catch-all match, not half a filter. */
    CHECK(flow_wildcards_is_catchall(&match.wc));

    ofputil_port_map_destroy(&ports);
}

/* The quick test of the upcall path rejects the flows no session matches,
 * for a single session (whose filter has no varying word to hash) as for
 * many, and defers to the full match for a thawed round when some filter
 * looks at what a thaw restores. */
static void
test_may_match(void)
{
    static const struct uuid bridge = { .parts = { 0xe } };
    struct uptrace_session sessions[3];
    struct upcall_trace_index *index = upcall_trace_index_create();
    const struct upcall_trace_bridge *b;
    struct match match;
    struct flow flow;

    memset(sessions, 0, sizeof sessions);
    check_filter_parse("udp,udp_src=52000", NULL, NULL, &match);
    upcall_trace_index_add(index, &bridge, &match, &sessions[0]);
    b = upcall_trace_index_find(index, &bridge);

    parse_flow("udp,nw_src=10.0.0.1,udp_src=1024", &flow);
    CHECK(!upcall_trace_bridge_may_match(b, &flow, false));
    CHECK(!upcall_trace_bridge_may_match(b, &flow, true));
    parse_flow("tcp,nw_src=10.0.0.1,tcp_src=52000", &flow);
    CHECK(!upcall_trace_bridge_may_match(b, &flow, false));
    parse_flow("udp,nw_src=10.0.0.1,udp_src=52000", &flow);
    CHECK(upcall_trace_bridge_may_match(b, &flow, false));

    /* A second value: the word varies, and is hashed. */
    check_filter_parse("udp,udp_src=52001", NULL, NULL, &match);
    upcall_trace_index_add(index, &bridge, &match, &sessions[1]);
    parse_flow("udp,nw_src=10.0.0.1,udp_src=52001", &flow);
    CHECK(upcall_trace_bridge_may_match(b, &flow, false));
    parse_flow("udp,nw_src=10.0.0.1,udp_src=1024", &flow);
    CHECK(!upcall_trace_bridge_may_match(b, &flow, false));

    /* A filter on a register: a thawed round needs its restored flow. */
    check_filter_parse("reg0=0x1/0x1", NULL, NULL, &match);
    upcall_trace_index_add(index, &bridge, &match, &sessions[2]);
    CHECK(!upcall_trace_bridge_may_match(b, &flow, false));
    CHECK(upcall_trace_bridge_may_match(b, &flow, true));

    upcall_trace_index_destroy(index);
}

/* Many sessions whose filters differ only in a value share one hash table:
 * every one is found, with the masked filters of other shapes, in the order
 * they were added. */
static void
test_many_sessions(void)
{
    static const struct uuid bridge = { .parts = { 0xd } };
    enum { N = 1000 };
    struct uptrace_session *sessions = xcalloc(N + 2, sizeof *sessions);
    struct upcall_trace_index *index = upcall_trace_index_create();
    const struct upcall_trace_bridge *b;
    struct match match;

    /* Session N first, then the N port filters, then N + 1. */
    check_filter_parse("ip,nw_src=10.0.0.0/24", NULL, NULL, &match);
    upcall_trace_index_add(index, &bridge, &match, &sessions[N]);
    for (int i = 0; i < N; i++) {
        char filter[64];

        snprintf(filter, sizeof filter, "udp,udp_src=%d", 10000 + i);
        check_filter_parse(filter, NULL, NULL, &match);
        upcall_trace_index_add(index, &bridge, &match, &sessions[i]);
    }
    check_filter_parse("udp,udp_src=10500/0xfffe", NULL, NULL, &match);
    upcall_trace_index_add(index, &bridge, &match, &sessions[N + 1]);

    b = upcall_trace_index_find(index, &bridge);
    CHECK(b && !upcall_trace_bridge_needs_thaw_fields(b));
    check_match(b, "udp,nw_src=10.0.0.1,udp_src=10007", 8, true, sessions,
                (int []) { N, 7, -1 });
    check_match(b, "udp,nw_src=10.9.0.1,udp_src=10500", 8, true, sessions,
                (int []) { 500, N + 1, -1 });
    check_match(b, "udp,nw_src=10.9.0.1,udp_src=10501", 1, false, sessions,
                (int []) { 501, N + 1, -1 });
    check_match(b, "udp,nw_src=10.9.0.1,udp_src=9999", 8, true, sessions,
                (int []) { -1 });
    check_match(b, "tcp,nw_src=10.9.0.1,tcp_src=10007", 8, true, sessions,
                (int []) { -1 });
    upcall_trace_index_destroy(index);
    for (int i = 0; i < N + 2; i++) {
        CHECK(!sessions[i].refs);
    }
    free(sessions);

    /* Filters that look at what a thaw restores, or at conntrack. */
    static const char *const thaw_filters[] = {
        "reg0=0x1/0x1", "metadata=0x5/0xff", "in_port=3", "ct_state=+trk",
        "ct_mark=1", "tun_id=5", "ct_zone=2",
    };
    for (size_t i = 0; i < ARRAY_SIZE(thaw_filters); i++) {
        struct uptrace_session session = { 0 };

        index = upcall_trace_index_create();
        check_filter_parse("udp", NULL, NULL, &match);
        upcall_trace_index_add(index, &bridge, &match, &session);
        check_filter_parse(thaw_filters[i], NULL, NULL, &match);
        upcall_trace_index_add(index, &bridge, &match, &session);
        b = upcall_trace_index_find(index, &bridge);
        if (!upcall_trace_bridge_needs_thaw_fields(b)) {
            fprintf(stderr, "%s: no thaw fields\n", thaw_filters[i]);
            n_failures++;
        }
        upcall_trace_index_destroy(index);
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

    test_filter_syntax();
    test_may_match();
    test_many_sessions();

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

    /* Bridge B: several filter shapes.  Sessions 2 and 3 share a filter,
     * and session 2 is added twice: all are found, in the order they were
     * added. */
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
    /* The stub is used whenever the matches fit in it. */
    check_match(a, udp9, 1, true, sessions, (int []) { 0, -1 });
    check_match(a, udp1, 1, false, sessions, (int []) { 0, 1, -1 });

    check_match(b, tcp80, 8, true, sessions, (int []) { 2, 3, 2, -1 });
    check_match(b, udp1, 8, true, sessions, (int []) { 5, -1 });
    check_match(b, tcp443, 8, true, sessions, (int []) { -1 });
    check_match(b, tcp80, 2, false, sessions, (int []) { 2, 3, 2, -1 });
    /* No match: no allocation either. */
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

    if (n_failures) {
        fprintf(stderr, "%d checks failed\n", n_failures);
        return 1;
    }
    printf("upcall-trace-index-test: all checks passed\n");
    return 0;
}
