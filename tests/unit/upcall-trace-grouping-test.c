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

/* Tests ofproto/upcall-trace-grouping.c: the invariant part of a packet's
 * fingerprint survives what the datapath does to a recirculating packet
 * (NAT, NAT of an ICMP error, pop_mpls), and each recirculation of a
 * translation is expected with what was recorded when it was frozen.
 * The engine is not linked: uptrace_round_expect_recirc() is stubbed
 * here.  Exits with status 0 on success, 1 on failure. */

#include <config.h>

#include "upcall-trace-grouping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp-packet.h"
#include "flow.h"
#include "odp-util.h"
#include "openvswitch/ofpbuf.h"
#include "packets.h"
#include "upcall-trace.h"
#include "util.h"

static int n_failures;

#define CHECK(COND)                                                     \
    do {                                                                \
        if (!(COND)) {                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,      \
                    __LINE__, #COND);                                   \
            n_failures++;                                               \
        }                                                               \
    } while (0)

/* The expectations registered, as the engine would get them. */
static struct {
    uint32_t recirc_id;
    struct uptrace_fingerprint fp;
} expected[8];
static size_t n_expected;

void
uptrace_round_expect_recirc(struct uptrace_round *capture OVS_UNUSED,
                            uint32_t recirc_id,
                            const struct uptrace_fingerprint *fp)
{
    if (n_expected < ARRAY_SIZE(expected)) {
        expected[n_expected].recirc_id = recirc_id;
        expected[n_expected].fp = *fp;
        n_expected++;
    }
}

/* A packet from hexadecimal 'hex', received on datapath port 1, and its
 * flow. */
struct packet {
    struct dp_packet *p;
    struct flow flow;
};

static void
packet_init(struct packet *pkt, const char *hex)
{
    const char *error = eth_from_hex(hex, &pkt->p);

    if (error) {
        fprintf(stderr, "%s\n", error);
        exit(1);
    }
    pkt->p->md.in_port.odp_port = u32_to_odp(1);
    flow_extract(pkt->p, &pkt->flow);
}

static uint64_t
invariant(const char *hex)
{
    struct uptrace_fingerprint fp;
    struct packet pkt;

    packet_init(&pkt, hex);
    upcall_trace_fingerprint_packet(&pkt.flow, pkt.p, &fp);
    dp_packet_delete(pkt.p);
    return fp.invariant;
}

static uint64_t
tuple(const struct flow *flow)
{
    struct uptrace_fingerprint fp;

    upcall_trace_fingerprint_tuple(flow, &fp);
    return fp.tuple;
}

/* Port unreachable from 10.0.0.2 about a datagram from 10.0.0.100:1000, as
 * it arrives, and after conntrack translated it back to 10.0.0.1 (the
 * quoted header too). */
static const char icmp_error[] =
    "5054000000ff50540000000208004500003d000100004001665a0a0000020a000064"
    "0303a8ea000000004500002100010000401166660a0000640a00000203e80035000d"
    "00007175657279";
static const char icmp_error_nat[] =
    "5054000000ff50540000000208004500003d00010000400166bd0a0000020a000001"
    "0303a8ea000000004500002100010000401166c90a0000010a00000203e80035000d"
    "00007175657279";

/* An echo request from 10.0.0.1 (id 0x1234), after SNAT to 10.0.0.100 (id
 * 0x5678), and another one with another payload. */
static const char echo[] =
    "5054000000ff50540000000108004500002000050000400166d60a0000010a000002"
    "080006fa1234000170696e67";
static const char echo_nat[] =
    "5054000000ff50540000000108004500002000050000400166730a0000640a000002"
    "0800c2b55678000170696e67";
static const char echo_other[] =
    "5054000000ff50540000000108004500002000050000400166d60a0000010a000002"
    "080006f412340001706f6e67";

/* A datagram under MPLS label 100, and the same after pop_mpls. */
static const char mpls_udp[] =
    "5054000000ff5054000000018847000641404500002100010000401166c90a000001"
    "0a00000203e80035000d00007175657279";
static const char udp[] =
    "5054000000ff50540000000108004500002100010000401166c90a0000010a000002"
    "03e80035000d00007175657279";

static void
test_invariants(void)
{
    CHECK(invariant(icmp_error) == invariant(icmp_error_nat));
    CHECK(invariant(echo) == invariant(echo_nat));
    CHECK(invariant(echo) != invariant(echo_other));
    CHECK(invariant(mpls_udp) == invariant(udp));
    CHECK(invariant(udp) != invariant(echo));
}

static void
test_freezes_paired_with_recirculations(void)
{
    /* Only compared, never read. */
    static const int xin_storage, other_storage;
    const struct xlate_in *xin = (const void *) &xin_storage;
    const struct xlate_in *other = (const void *) &other_storage;
    struct flow rewritten, final;
    struct packet pkt;

    packet_init(&pkt, udp);
    rewritten = pkt.flow;
    rewritten.nw_src = htonl(0xc0000201);       /* 192.0.2.1 */
    final = pkt.flow;
    final.nw_dst = htonl(0x0a000063);           /* 10.0.0.99 */

    upcall_trace_grouping_begin(xin, &pkt.flow);
    upcall_trace_frozen(xin, 5, &rewritten, false);
    upcall_trace_frozen(other, 5, &final, false);  /* ofproto/trace's. */
    upcall_trace_frozen(xin, 6, &pkt.flow, true);  /* ct(nat). */
    upcall_trace_frozen(xin, 5, &pkt.flow, false); /* A second fork. */
    upcall_trace_frozen(xin, 8, &pkt.flow, false); /* Rolled back. */

    /* clone(recirc(5)),recirc(6),recirc(5),recirc(9) */
    struct ofpbuf actions;
    size_t clone;
    ofpbuf_init(&actions, 64);
    clone = nl_msg_start_nested(&actions, OVS_ACTION_ATTR_CLONE);
    nl_msg_put_u32(&actions, OVS_ACTION_ATTR_RECIRC, 5);
    nl_msg_end_nested(&actions, clone);
    nl_msg_put_u32(&actions, OVS_ACTION_ATTR_RECIRC, 6);
    nl_msg_put_u32(&actions, OVS_ACTION_ATTR_RECIRC, 5);
    nl_msg_put_u32(&actions, OVS_ACTION_ATTR_RECIRC, 9);

    n_expected = 0;
    upcall_trace_expect_rounds(NULL, xin, &pkt.flow, pkt.p, &final,
                               &actions);
    CHECK(n_expected == 4);
    if (n_expected == 4) {
        uint64_t inv = invariant(udp);

        CHECK(expected[0].recirc_id == 5);
        CHECK(expected[0].fp.tuple == tuple(&rewritten));
        CHECK(!expected[0].fp.nat);
        CHECK(expected[1].recirc_id == 6 && expected[1].fp.nat);
        CHECK(expected[2].recirc_id == 5);
        CHECK(expected[2].fp.tuple == tuple(&pkt.flow));
        CHECK(!expected[2].fp.nat);
        /* Not recorded: the final flow's tuple. */
        CHECK(expected[3].recirc_id == 9);
        CHECK(expected[3].fp.tuple == tuple(&final));
        for (size_t i = 0; i < n_expected; i++) {
            CHECK(expected[i].fp.invariant == inv);
        }
    }

    /* Recording ended: a later freeze of that xin is not recorded. */
    upcall_trace_frozen(xin, 5, &rewritten, false);
    n_expected = 0;
    upcall_trace_expect_rounds(NULL, xin, &pkt.flow, pkt.p, &final,
                               &actions);
    CHECK(n_expected == 4 && expected[0].fp.tuple == tuple(&final));

    ofpbuf_uninit(&actions);
    dp_packet_delete(pkt.p);
}

static void
test_pop_mpls_accepts_any_tuple(void)
{
    static const int xin_storage;
    const struct xlate_in *xin = (const void *) &xin_storage;
    struct packet pkt;
    struct flow popped;

    packet_init(&pkt, mpls_udp);
    /* After pop_mpls, xlate knows the type, not the header. */
    popped = pkt.flow;
    popped.dl_type = htons(ETH_TYPE_IP);

    struct ofpbuf actions;
    ofpbuf_init(&actions, 64);
    nl_msg_put_u32(&actions, OVS_ACTION_ATTR_RECIRC, 7);

    upcall_trace_grouping_begin(xin, &pkt.flow);
    upcall_trace_frozen(xin, 7, &popped, false);
    n_expected = 0;
    upcall_trace_expect_rounds(NULL, xin, &pkt.flow, pkt.p, &popped,
                               &actions);
    CHECK(n_expected == 1 && expected[0].fp.nat);
    CHECK(n_expected == 1 && expected[0].fp.invariant == invariant(udp));

    ofpbuf_uninit(&actions);
    dp_packet_delete(pkt.p);
}

int
main(void)
{
    test_invariants();
    test_freezes_paired_with_recirculations();
    test_pop_mpls_accepts_any_tuple();

    if (n_failures) {
        fprintf(stderr, "upcall-trace-grouping-test: %d failures\n",
                n_failures);
        return 1;
    }
    printf("upcall-trace-grouping-test: all checks passed\n");
    return 0;
}
