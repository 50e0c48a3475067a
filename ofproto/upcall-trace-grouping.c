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

#include "upcall-trace-grouping.h"

#include "coverage.h"
#include "dp-packet.h"
#include "flow.h"
#include "hash.h"
#include "netlink.h"
#include "odp-util.h"
#include "openvswitch/ofpbuf.h"
#include "ovs-thread.h"
#include "packets.h"
#include "upcall-trace.h"
#include "util.h"

/* Packets whose payload was hashed to link recirculation rounds. */
COVERAGE_DEFINE(upcall_trace_payload_hash);
/* Recirculations of traced rounds whose freeze could not be recorded. */
COVERAGE_DEFINE(upcall_trace_freeze_unrecorded);

/* The most freezes of one translation that are remembered; the
 * recirculations beyond them are expected with the final flow's tuple. */
#define MAX_FREEZES 16

/* What xlate froze during the traced translation that runs in this
 * thread.  xlate has no room for our state and its hook only gets the
 * xlate_in: the hook finds it here.  Kept by value, so that no pointer to
 * a finished trace can outlive it; 'xin' is only compared, never read. */
struct freezes {
    const struct xlate_in *xin;         /* NULL when not recording. */
    ovs_be16 upcall_dl_type;            /* The upcall flow's dl_type. */
    size_t n;
    struct {
        uint32_t recirc_id;
        uint32_t tuple;                 /* fingerprint's tuple of the flow. */
        bool any_tuple;                 /* The datapath may rewrite it. */
    } f[MAX_FREEZES];
};

DEFINE_STATIC_PER_THREAD_DATA(struct freezes, freezes, { .xin = NULL });

void
upcall_trace_grouping_begin(const struct xlate_in *xin,
                            const struct flow *upcall_flow)
{
    struct freezes *freezes = freezes_get();

    freezes->xin = xin;
    freezes->upcall_dl_type = upcall_flow->dl_type;
    freezes->n = 0;
}

void
upcall_trace_grouping_end(void)
{
    freezes_get()->xin = NULL;
}

/* Identifying a packet across recirculation.
 *
 * A recirculation id is shared by every packet whose translation froze the
 * same state, so it does not identify a packet.  A fingerprint does, in two
 * parts:
 *
 *   - the tuple: protocol, addresses and ports of the packet as it will be
 *     recirculated, known when the pipeline is frozen (rewrites before
 *     'ct', a patch port into another bridge, clone()), except after NAT,
 *     which conntrack applies in the datapath, and after pop_mpls, whose
 *     inner header xlate has not parsed: then any tuple is accepted;
 *
 *   - the invariant: what no action of a pipeline rewrites, hashed from the
 *     packet itself: the datapath input port (a patch port is no datapath
 *     port: a recirculated packet keeps the port it entered the datapath
 *     on), the IP identification and length, the TCP sequence numbers and
 *     the L4 payload, but not the ports, ICMP ids and checksums (NAT), nor
 *     the TTL and TOS, nor anything of an ICMP error beyond its type and
 *     code (NAT rewrites the header it quotes).  An MPLS packet is hashed
 *     as the IP packet under its labels, as it will be after pop_mpls. */

void
upcall_trace_fingerprint_tuple(const struct flow *flow,
                               struct uptrace_fingerprint *fp)
{
    uint32_t h = hash_int(flow->nw_proto, 0);

    if (flow->dl_type == htons(ETH_TYPE_IP)) {
        h = hash_int((OVS_FORCE uint32_t) flow->nw_src, h);
        h = hash_int((OVS_FORCE uint32_t) flow->nw_dst, h);
    } else if (flow->dl_type == htons(ETH_TYPE_IPV6)) {
        h = hash_bytes(&flow->ipv6_src, sizeof flow->ipv6_src, h);
        h = hash_bytes(&flow->ipv6_dst, sizeof flow->ipv6_dst, h);
    }
    h = hash_int(((OVS_FORCE uint32_t) flow->tp_src << 16)
                 | (OVS_FORCE uint32_t) flow->tp_dst, h);
    fp->tuple = h;
}

static bool
is_icmp_error(uint8_t proto, const uint8_t *l4, size_t l4_size)
{
    if (l4_size < 2) {
        return false;
    }
    if (proto == IPPROTO_ICMP) {
        switch (l4[0]) {
        case ICMP4_DST_UNREACH:
        case ICMP4_SOURCEQUENCH:
        case ICMP4_REDIRECT:
        case ICMP4_TIME_EXCEEDED:
        case ICMP4_PARAM_PROB:
            return true;
        default:
            return false;
        }
    }
    /* ICMPv6 errors are the types below 128 (RFC 4443). */
    return proto == IPPROTO_ICMPV6 && l4[0] < 128;
}

static uint32_t
hash_l4(uint8_t proto, const uint8_t *l4, size_t l4_size, uint32_t h)
{
    size_t skip = 0;

    switch (proto) {
    case IPPROTO_TCP:
        if (l4_size >= TCP_HEADER_LEN) {
            const struct tcp_header *tcp = (const void *) l4;

            /* Sequence and acknowledgement numbers. */
            h = hash_bytes(l4 + 4, 8, h);
            skip = TCP_OFFSET(tcp->tcp_ctl) * 4;
        }
        break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
        if (is_icmp_error(proto, l4, l4_size)) {
            return hash_int((l4[0] << 8) | l4[1], h);
        }
        /* Fall through. */
    case IPPROTO_UDP:
        /* Ports, ICMP ids and checksums are rewritten by NAT. */
        skip = 8;
        break;
    default:
        break;
    }
    if (l4_size > skip) {
        h = hash_bytes(l4 + skip, l4_size - skip, h);
    }
    return h;
}

/* For an MPLS packet, finds the IP packet under the labels, as pop_mpls
 * and a recirculation will present it: stores its type, protocol and L4
 * part and returns its L3 size without the Ethernet padding (which the
 * flow extraction of an IP packet leaves out), or 0 if there is none. */
static size_t
parse_under_mpls(const uint8_t *l3, size_t l3_size, ovs_be16 *dl_type,
                 uint8_t *proto, const uint8_t **l4, size_t *l4_size)
{
    if (!l3 || !l3_size) {
        return 0;
    }
    if (l3[0] >> 4 == 4 && l3_size >= IP_HEADER_LEN) {
        const struct ip_header *ip = (const void *) l3;
        size_t ihl = IP_IHL(ip->ip_ihl_ver) * 4;
        size_t tot_len = ntohs(ip->ip_tot_len);

        if (ihl < IP_HEADER_LEN || tot_len < ihl || tot_len > l3_size) {
            return 0;
        }
        *dl_type = htons(ETH_TYPE_IP);
        *proto = ip->ip_proto;
        *l4 = l3 + ihl;
        *l4_size = tot_len - ihl;
        return tot_len;
    } else if (l3[0] >> 4 == 6 && l3_size >= IPV6_HEADER_LEN) {
        const struct ovs_16aligned_ip6_hdr *ip6 = (const void *) l3;
        size_t tot_len = IPV6_HEADER_LEN + ntohs(ip6->ip6_plen);

        if (tot_len > l3_size) {
            return 0;
        }
        /* Extension headers are taken as payload: both rounds agree. */
        *dl_type = htons(ETH_TYPE_IPV6);
        *proto = ip6->ip6_nxt;
        *l4 = l3 + IPV6_HEADER_LEN;
        *l4_size = tot_len - IPV6_HEADER_LEN;
        return tot_len;
    }
    return 0;
}

void
upcall_trace_fingerprint_packet(const struct flow *upcall_flow,
                                const struct dp_packet *packet,
                                struct uptrace_fingerprint *fp)
{
    const uint8_t *l3 = dp_packet_l3(packet);
    size_t l3_size = l3 ? dp_packet_l3_size(packet) : 0;
    const uint8_t *l4 = dp_packet_l4(packet);
    size_t l4_size = l4 ? dp_packet_l4_size(packet) : 0;
    ovs_be16 dl_type = upcall_flow->dl_type;
    uint8_t proto = upcall_flow->nw_proto;
    uint32_t h = hash_int(odp_to_u32(upcall_flow->in_port.odp_port), 0);

    COVERAGE_INC(upcall_trace_payload_hash);

    if (eth_type_mpls(dl_type)) {
        size_t inner = parse_under_mpls(l3, l3_size, &dl_type, &proto,
                                        &l4, &l4_size);
        if (inner) {
            l3_size = inner;
        } else {
            l4 = NULL;
        }
    }

    if (dl_type == htons(ETH_TYPE_IP)) {
        const struct ip_header *ip = (const void *) l3;

        if (ip && l3_size >= IP_HEADER_LEN) {
            h = hash_int(((uint32_t) ntohs(ip->ip_id) << 16)
                         | ntohs(ip->ip_tot_len), h);
        }
    } else if (dl_type == htons(ETH_TYPE_IPV6)) {
        const struct ovs_16aligned_ip6_hdr *ip6 = (const void *) l3;

        if (ip6 && l3_size >= sizeof *ip6) {
            h = hash_int(ntohs(ip6->ip6_plen), h);
        }
    }

    if (l4) {
        h = hash_l4(proto, l4, l4_size, h);
    } else if (l3) {
        h = hash_bytes(l3, l3_size, h);
    }
    fp->invariant = h;
}

void
upcall_trace_frozen(const struct xlate_in *xin, uint32_t recirc_id,
                    const struct flow *flow, bool nat)
{
    struct freezes *freezes = freezes_get();

    if (freezes->xin != xin) {
        /* ofproto/trace, or a translation run while tracing one. */
        return;
    }
    if (freezes->n >= ARRAY_SIZE(freezes->f)) {
        COVERAGE_INC(upcall_trace_freeze_unrecorded);
        return;
    }

    struct uptrace_fingerprint fp;
    upcall_trace_fingerprint_tuple(flow, &fp);
    freezes->f[freezes->n].recirc_id = recirc_id;
    freezes->f[freezes->n].tuple = fp.tuple;
    freezes->f[freezes->n].any_tuple
        = (nat
           || (eth_type_mpls(freezes->upcall_dl_type)
               && !eth_type_mpls(flow->dl_type)));
    freezes->n++;
}

/* Collects the recirculation ids in datapath 'actions', also inside nested
 * action lists, in the order of the actions (which is the order in which
 * xlate froze them). */
static void
collect_recirc_ids(const struct nlattr *actions, size_t actions_len,
                   uint32_t ids[], size_t *n, size_t max)
{
    const struct nlattr *a;
    size_t left;

    NL_ATTR_FOR_EACH_UNSAFE (a, left, actions, actions_len) {
        const struct nlattr *nested;
        size_t nested_left;

        switch (nl_attr_type(a)) {
        case OVS_ACTION_ATTR_RECIRC:
            if (*n < max) {
                ids[(*n)++] = nl_attr_get_u32(a);
            }
            break;

        case OVS_ACTION_ATTR_CLONE:
            collect_recirc_ids(nl_attr_get(a), nl_attr_get_size(a),
                               ids, n, max);
            break;

        case OVS_ACTION_ATTR_SAMPLE:
        case OVS_ACTION_ATTR_CHECK_PKT_LEN:
        case OVS_ACTION_ATTR_DEC_TTL:
            /* Each holds its action lists as nested attributes. */
            NL_NESTED_FOR_EACH_UNSAFE (nested, nested_left, a) {
                uint16_t type = nl_attr_type(nested);

                if ((nl_attr_type(a) == OVS_ACTION_ATTR_SAMPLE
                     && type == OVS_SAMPLE_ATTR_ACTIONS)
                    || (nl_attr_type(a) == OVS_ACTION_ATTR_CHECK_PKT_LEN
                        && (type == OVS_CHECK_PKT_LEN_ATTR_ACTIONS_IF_GREATER
                            || type
                               == OVS_CHECK_PKT_LEN_ATTR_ACTIONS_IF_LESS_EQUAL))
                    || (nl_attr_type(a) == OVS_ACTION_ATTR_DEC_TTL
                        && type == OVS_DEC_TTL_ATTR_ACTION)) {
                    collect_recirc_ids(nl_attr_get(nested),
                                       nl_attr_get_size(nested), ids, n, max);
                }
            }
            break;

        default:
            break;
        }
    }
}

void
upcall_trace_expect_rounds(struct uptrace_round *capture,
                           const struct xlate_in *xin,
                           const struct flow *upcall_flow,
                           const struct dp_packet *packet,
                           const struct flow *final_flow,
                           const struct ofpbuf *odp_actions)
{
    struct freezes *freezes = freezes_get();
    size_t n_freezes = freezes->xin == xin ? freezes->n : 0;
    uint32_t ids[MAX_FREEZES];
    bool used[MAX_FREEZES] = { false };
    struct uptrace_fingerprint fp;
    size_t n_ids = 0;

    freezes->xin = NULL;
    collect_recirc_ids(odp_actions->data, odp_actions->size,
                       ids, &n_ids, ARRAY_SIZE(ids));
    if (!n_ids) {
        return;
    }

    /* The same packet recirculates each time: one invariant. */
    upcall_trace_fingerprint_packet(upcall_flow, packet, &fp);

    /* Each recirculation in the actions is paired with the first freeze of
     * its id not yet paired: a recirc id shared by two forks (two clones
     * freezing equal states) gets one expectation for each.  A freeze
     * whose recirculation is not in the actions (translation dropped it)
     * expects nothing, so that it never reports a round as missing. */
    for (size_t i = 0; i < n_ids; i++) {
        size_t j;

        for (j = 0; j < n_freezes; j++) {
            if (!used[j] && freezes->f[j].recirc_id == ids[i]) {
                break;
            }
        }
        if (j < n_freezes) {
            used[j] = true;
            fp.tuple = freezes->f[j].tuple;
            fp.nat = freezes->f[j].any_tuple;
        } else {
            COVERAGE_INC(upcall_trace_freeze_unrecorded);
            upcall_trace_fingerprint_tuple(final_flow, &fp);
            fp.nat = false;
        }
        uptrace_round_expect_recirc(capture, ids[i], &fp);
    }
}
