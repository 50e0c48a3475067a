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

#include "upcall-trace-index.h"

#include "flow.h"
#include "nx-match.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/hmap.h"
#include "openvswitch/match.h"
#include "openvswitch/meta-flow.h"
#include "openvswitch/ofp-parse.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/ofp-protocol.h"
#include "packets.h"
#include "upcall-trace.h"
#include "util.h"
#include "uuid.h"

/* Filters. */

/* What the filter must also match for a field whose prerequisite is
 * 'prereqs', as the user would write it. */
static const char *
prereq_hint(enum mf_prereqs prereqs)
{
    switch (prereqs) {
    case MFP_ARP: return "arp or rarp";
    case MFP_VLAN_VID: return "a VLAN (vlan_tci=0x1000/0x1000)";
    case MFP_IPV4: return "ip";
    case MFP_IPV6: return "ipv6";
    case MFP_IP_ANY: return "ip or ipv6";
    case MFP_NSH: return "nsh (dl_type=0x894f)";
    case MFP_MPLS: return "mpls or mplsm";
    case MFP_TCP: return "tcp or tcp6";
    case MFP_UDP: return "udp or udp6";
    case MFP_SCTP: return "sctp or sctp6";
    case MFP_ICMPV4: return "icmp";
    case MFP_ICMPV6: return "icmp6";
    case MFP_CT_VALID: return "ct_state=+trk and ip or ipv6";
    case MFP_ND: return "icmp6 with icmp_type=135 or 136, icmp_code=0";
    case MFP_ND_SOLICIT: return "icmp6,icmp_type=135,icmp_code=0";
    case MFP_ND_ADVERT: return "icmp6,icmp_type=136,icmp_code=0";
    case MFP_ETHERNET: return "an Ethernet packet_type";
    case MFP_NONE:
    default:
        return "its prerequisites";
    }
}

/* Whether the prerequisites of the field named 'name' ('mf') are in
 * 'match'.  "tp_src" and "tp_dst" are those of any transport protocol, as
 * in OpenFlow 1.0. */
static bool
field_prereqs_ok(const char *name, const struct mf_field *mf,
                 const struct match *match)
{
    static const enum mf_field_id tp_src[] = {
        MFF_TCP_SRC, MFF_UDP_SRC, MFF_SCTP_SRC, MFF_ICMPV4_TYPE,
        MFF_ICMPV6_TYPE,
    };
    static const enum mf_field_id tp_dst[] = {
        MFF_TCP_DST, MFF_UDP_DST, MFF_SCTP_DST, MFF_ICMPV4_CODE,
        MFF_ICMPV6_CODE,
    };
    const enum mf_field_id *alternatives = (!strcmp(name, "tp_src") ? tp_src
                                            : !strcmp(name, "tp_dst") ? tp_dst
                                            : NULL);

    if (alternatives) {
        for (size_t i = 0; i < ARRAY_SIZE(tp_src); i++) {
            if (mf_are_match_prereqs_ok(mf_from_id(alternatives[i]),
                                        match)) {
                return true;
            }
        }
        return false;
    }
    return mf_are_match_prereqs_ok(mf, match);
}

/* Parses 'value' into the bits of subfield 'name' ("reg0[0..3]") of
 * 'match', as "ovs-ofctl add-flow" does. */
static char * OVS_WARN_UNUSED_RESULT
parse_subfield(const char *name, const char *value, struct match *match,
               struct mf_subfield *sf)
{
    union mf_value val, field_value, field_mask;
    char *error;
    char *tail;

    error = mf_parse_subfield(sf, name);
    if (error) {
        return error;
    }
    if (parse_int_string(value, (uint8_t *) &val, sf->field->n_bytes, &tail)
        || *tail) {
        return xasprintf("%s: cannot parse integer value: %s", name, value);
    }
    if (!bitwise_is_all_zeros(&val, sf->field->n_bytes, sf->n_bits,
                              sf->field->n_bytes * 8 - sf->n_bits)) {
        return xasprintf("%s: value %s does not fit into %d bits",
                         name, value, sf->n_bits);
    }

    unsigned int size = sf->field->n_bytes;
    mf_get(sf->field, match, &field_value, &field_mask);
    bitwise_copy(&val, size, 0, &field_value, size, sf->ofs, sf->n_bits);
    bitwise_one(&field_mask, size, sf->ofs, sf->n_bits);
    mf_set(sf->field, &field_value, &field_mask, match, &error);
    if (!error) {
        match_add_ethernet_prereq(match, sf->field);
    }
    return error;
}

/* Keywords of "ovs-ofctl add-flow" that are not part of a match. */
static bool
is_flow_keyword(const char *name)
{
    static const char *const keywords[] = {
        "actions", "table", "priority", "cookie", "idle_timeout",
        "hard_timeout", "importance", "out_port", "out_group",
        "send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts",
        "no_byte_counts", "no_readonly_table", "allow_hidden_fields",
        "duration", "n_packets", "n_bytes", "idle_age", "hard_age",
    };

    for (size_t i = 0; i < ARRAY_SIZE(keywords); i++) {
        if (!strcmp(name, keywords[i])) {
            return true;
        }
    }
    return false;
}

char *
upcall_trace_filter_parse(const char *filter,
                          const struct ofputil_port_map *port_map,
                          const struct tun_table *tun_table,
                          struct match *match)
{
    struct field {
        char *name;
        const struct mf_field *mf;
    } *fields = NULL;
    size_t n_fields = 0, allocated_fields = 0;
    char *copy = xstrdup(filter);
    char *pos = copy;
    char *error = NULL;
    char *name, *value;

    match_init_catchall(match);
    match->flow.tunnel.metadata.tab = tun_table;
    while (!error && ofputil_parse_key_value(&pos, &name, &value)) {
        enum ofputil_protocol usable = OFPUTIL_P_ANY;
        const struct ofp_protocol *p;
        const struct mf_field *mf = NULL;
        struct mf_subfield sf;

        if (ofp_parse_protocol(name, &p)) {
            match_set_dl_type(match, htons(p->dl_type));
            if (p->nw_proto) {
                match_set_nw_proto(match, p->nw_proto);
            }
            match_set_default_packet_type(match);
        } else if (!strcmp(name, "eth")) {
            match_set_packet_type(match, htonl(PT_ETH));
        } else if ((mf = mf_from_name(name)) != NULL) {
            error = ofp_parse_field(mf, value, port_map, match, &usable);
        } else if (strchr(name, '[')) {
            error = parse_subfield(name, value, match, &sf);
            mf = sf.field;
        } else if (is_flow_keyword(name)) {
            error = xasprintf("%s is not a match field (a filter is only "
                              "the match of a flow)", name);
        } else {
            error = xasprintf("unknown field %s", name);
        }

        if (!error && mf) {
            if (n_fields >= allocated_fields) {
                fields = x2nrealloc(fields, &allocated_fields,
                                    sizeof *fields);
            }
            fields[n_fields].name = name;
            fields[n_fields++].mf = mf;
        }
    }

    /* Copy ethertype to flow->dl_type for matches on packet_type, as
     * "ovs-ofctl add-flow" does. */
    if (!error && match->wc.masks.packet_type == OVS_BE32_MAX
        && pt_ns(match->flow.packet_type) == OFPHTN_ETHERTYPE) {
        match->flow.dl_type = pt_ns_type_be(match->flow.packet_type);
    }

    /* Prerequisites are checked once the whole filter is known, so that they
     * may be written in any order. */
    for (size_t i = 0; !error && i < n_fields; i++) {
        if (!field_prereqs_ok(fields[i].name, fields[i].mf, match)) {
            error = xasprintf("%s needs %s in the filter (its OpenFlow "
                              "prerequisite)", fields[i].name,
                              prereq_hint(fields[i].mf->prereqs));
        }
    }

    free(fields);
    free(copy);
    if (error) {
        match_init_catchall(match);
    }
    return error;
}

/* The index. */

/* Each bridge keeps its sessions' matches grouped by mask, each group in a
 * hash table of the masked flow, as the classifier's subtables are: deciding
 * that an upcall matches no session costs one hash and one lookup per
 * distinct filter shape, whatever the number of sessions, and a match finds
 * every matching session at once. */
struct trace_rule {
    struct hmap_node node;              /* In 'mask_group.rules'. */
    struct minimatch match;
    size_t seq;                         /* Order of addition on the bridge. */
    struct uptrace_session *session;    /* Holds a reference. */
};

struct mask_group {
    const struct minimask *mask;        /* The first rule's. */
    struct hmap rules;                  /* Of "struct trace_rule". */

    /* The 64-bit words of "struct flow" that 'mask' covers, and their masks,
     * to hash a flow without walking the minimask's maps. */
    size_t n_words;
    uint8_t *words;
    uint64_t *word_masks;
};

BUILD_ASSERT_DECL(FLOW_U64S <= UINT8_MAX + 1);

/* Hashes the words of 'flow' that 'group' masks.  Only equality matters
 * (a hash match is confirmed with minimatch_matches_flow()), so a
 * multiply-xorshift mix, a few instructions per word, is enough; the high
 * half is folded in because hmap uses the low bits. */
static inline uint32_t
group_hash_flow(const struct mask_group *group, const uint64_t *flow_u64)
{
    uint64_t acc = group->n_words;

    for (size_t i = 0; i < group->n_words; i++) {
        acc = (acc ^ (flow_u64[group->words[i]] & group->word_masks[i]))
              * UINT64_C(0x9e3779b97f4a7c15);
        acc ^= acc >> 29;
    }
    return acc ^ (acc >> 32);
}

static void
group_init_words(struct mask_group *group)
{
    const uint64_t *masks = miniflow_get_values(&group->mask->masks);
    size_t idx, n = 0;

    group->n_words = miniflow_n_values(&group->mask->masks);
    group->words = xmalloc(MAX(group->n_words, 1) * sizeof *group->words);
    group->word_masks = xmalloc(MAX(group->n_words, 1)
                                * sizeof *group->word_masks);
    FLOWMAP_FOR_EACH_INDEX (idx, group->mask->masks.map) {
        group->words[n] = idx;
        group->word_masks[n] = masks[n];
        n++;
    }
    ovs_assert(n == group->n_words);
}

struct upcall_trace_bridge {
    struct hmap_node node;              /* In 'upcall_trace_index.bridges'. */
    struct uuid ofproto_uuid;
    struct mask_group **groups;         /* Not moved: an hmap cannot be. */
    size_t n_groups, allocated_groups;
    size_t n_rules;

    /* Whether some match looks at what a thaw restores from the frozen
     * pipeline (in_port, registers, metadata, tunnel) or at conntrack
     * fields. */
    bool needs_thaw_fields;

    /* Port names, for the rounds' in_port, read by capture threads. */
    struct ofputil_port_map ports;
};

struct upcall_trace_index *
upcall_trace_index_create(void)
{
    struct upcall_trace_index *index = xmalloc(sizeof *index);

    hmap_init(&index->bridges);
    return index;
}

static struct upcall_trace_bridge *
bridge_find(const struct upcall_trace_index *index, const struct uuid *uuid)
{
    struct upcall_trace_bridge *bridge;

    HMAP_FOR_EACH_WITH_HASH (bridge, node, uuid_hash(uuid), &index->bridges) {
        if (uuid_equals(&bridge->ofproto_uuid, uuid)) {
            return bridge;
        }
    }
    return NULL;
}

static bool
match_needs_thaw_fields(const struct match *match)
{
    const struct flow_wildcards *wc = &match->wc;

    return (wc->masks.in_port.ofp_port || wc->masks.metadata
            || !is_all_zeros(wc->masks.regs, sizeof wc->masks.regs)
            || !is_all_zeros(&wc->masks.tunnel, sizeof wc->masks.tunnel)
            || wc->masks.ct_state || wc->masks.ct_zone || wc->masks.ct_mark
            || !ovs_u128_is_zero(wc->masks.ct_label)
            || wc->masks.ct_nw_proto || wc->masks.ct_nw_src
            || wc->masks.ct_nw_dst || wc->masks.ct_tp_src
            || wc->masks.ct_tp_dst
            || ipv6_addr_is_set(&wc->masks.ct_ipv6_src)
            || ipv6_addr_is_set(&wc->masks.ct_ipv6_dst));
}

struct ofputil_port_map *
upcall_trace_index_add(struct upcall_trace_index *index,
                       const struct uuid *uuid, const struct match *match,
                       struct uptrace_session *session)
{
    struct upcall_trace_bridge *bridge = bridge_find(index, uuid);
    struct ofputil_port_map *ports = NULL;
    struct mask_group *group = NULL;

    if (!bridge) {
        bridge = xzalloc(sizeof *bridge);
        bridge->ofproto_uuid = *uuid;
        ofputil_port_map_init(&bridge->ports);
        hmap_insert(&index->bridges, &bridge->node, uuid_hash(uuid));
        ports = &bridge->ports;
    }

    struct trace_rule *rule = xmalloc(sizeof *rule);
    minimatch_init(&rule->match, match);
    rule->seq = bridge->n_rules++;
    rule->session = uptrace_session_ref(session);
    bridge->needs_thaw_fields |= match_needs_thaw_fields(match);

    for (size_t i = 0; i < bridge->n_groups; i++) {
        if (minimask_equal(bridge->groups[i]->mask, rule->match.mask)) {
            group = bridge->groups[i];
            break;
        }
    }
    if (!group) {
        if (bridge->n_groups >= bridge->allocated_groups) {
            bridge->groups = x2nrealloc(bridge->groups,
                                        &bridge->allocated_groups,
                                        sizeof *bridge->groups);
        }
        group = xmalloc(sizeof *group);
        bridge->groups[bridge->n_groups++] = group;
        group->mask = rule->match.mask;
        hmap_init(&group->rules);
        group_init_words(group);
    }
    hmap_insert(&group->rules, &rule->node,
                group_hash_flow(group, (const uint64_t *) &match->flow));
    return ports;
}

void
upcall_trace_index_destroy(struct upcall_trace_index *index)
{
    struct upcall_trace_bridge *bridge;

    if (!index) {
        return;
    }
    HMAP_FOR_EACH_POP (bridge, node, &index->bridges) {
        /* A group's mask belongs to one of its rules: free rules last. */
        struct trace_rule **rules = xmalloc(bridge->n_rules * sizeof *rules);
        size_t n = 0;

        for (size_t i = 0; i < bridge->n_groups; i++) {
            struct trace_rule *rule;

            HMAP_FOR_EACH_POP (rule, node, &bridge->groups[i]->rules) {
                rules[n++] = rule;
            }
            hmap_destroy(&bridge->groups[i]->rules);
            free(bridge->groups[i]->words);
            free(bridge->groups[i]->word_masks);
            free(bridge->groups[i]);
        }
        for (size_t i = 0; i < n; i++) {
            minimatch_destroy(&rules[i]->match);
            uptrace_session_unref(rules[i]->session);
            free(rules[i]);
        }
        free(rules);
        free(bridge->groups);
        ofputil_port_map_destroy(&bridge->ports);
        free(bridge);
    }
    hmap_destroy(&index->bridges);
    free(index);
}

const struct upcall_trace_bridge *
upcall_trace_index_find(const struct upcall_trace_index *index,
                        const struct uuid *uuid)
{
    return bridge_find(index, uuid);
}

bool
upcall_trace_bridge_needs_thaw_fields(const struct upcall_trace_bridge *bridge)
{
    return bridge->needs_thaw_fields;
}

size_t
upcall_trace_bridge_match(const struct upcall_trace_bridge *bridge,
                          const struct flow *flow,
                          struct uptrace_session **stub, size_t n_stub,
                          struct uptrace_session ***sessionsp)
{
    const struct trace_rule *stub_rules[16];
    const struct trace_rule **rules = stub_rules;
    size_t n = 0, allocated = ARRAY_SIZE(stub_rules);

    for (size_t i = 0; i < bridge->n_groups; i++) {
        const struct mask_group *group = bridge->groups[i];
        uint32_t hash = group_hash_flow(group, (const uint64_t *) flow);
        const struct trace_rule *rule;

        HMAP_FOR_EACH_WITH_HASH (rule, node, hash, &group->rules) {
            if (minimatch_matches_flow(&rule->match, flow)) {
                if (n >= allocated) {
                    rules = (rules == stub_rules
                             ? xmemdup(stub_rules, sizeof stub_rules)
                             : rules);
                    rules = x2nrealloc(rules, &allocated, sizeof *rules);
                }
                rules[n++] = rule;
            }
        }
    }

    *sessionsp = stub;
    if (!n) {
        return 0;
    }

    /* In the order the sessions were added (insertion sort: matches are
     * few, and usually already in order within a group). */
    for (size_t i = 1; i < n; i++) {
        const struct trace_rule *rule = rules[i];
        size_t j = i;

        for (; j > 0 && rules[j - 1]->seq > rule->seq; j--) {
            rules[j] = rules[j - 1];
        }
        rules[j] = rule;
    }

    struct uptrace_session **sessions
        = n <= n_stub ? stub : xmalloc(n * sizeof *sessions);
    for (size_t i = 0; i < n; i++) {
        sessions[i] = rules[i]->session;
    }
    if (rules != stub_rules) {
        free(rules);
    }
    *sessionsp = sessions;
    return n;
}

const char *
upcall_trace_bridge_port_name(const struct upcall_trace_bridge *bridge,
                              ofp_port_t port)
{
    return ofputil_port_map_get_name(&bridge->ports, port);
}
