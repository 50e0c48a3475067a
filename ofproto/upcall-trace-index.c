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

/* The index (its structures are in upcall-trace-index.h). */

BUILD_ASSERT_DECL(FLOW_U64S <= UINT8_MAX + 1);

/* A session's match in a mask group. */
struct trace_rule {
    struct hmap_node node;              /* In 'upcall_trace_mask_group.rules'. */
    struct minimatch match;
    size_t seq;                         /* Order of addition on the bridge. */
    struct uptrace_session *session;    /* Holds a reference. */
};

/* Hashes the varying words of 'rule', which belongs to 'group'. */
static uint32_t
group_hash_rule(const struct upcall_trace_mask_group *group, const struct trace_rule *rule)
{
    uint64_t acc = 0;

    for (size_t i = 0; i < group->n_varying; i++) {
        acc = ut_mix_word(acc, (miniflow_get(rule->match.flow, group->words[i])
                             & group->word_masks[i]));
    }
    return ut_mix_finish(acc);
}

static struct upcall_trace_mask_group *
group_create(const struct minimask *mask)
{
    struct upcall_trace_mask_group *group = xzalloc(sizeof *group);
    const uint64_t *masks = miniflow_get_values(&mask->masks);
    size_t idx, n = 0;

    group->mask = mask;
    hmap_init(&group->rules);
    group->n_words = miniflow_n_values(&mask->masks);
    group->words = xmalloc(MAX(group->n_words, 1) * sizeof *group->words);
    group->word_masks = xmalloc(MAX(group->n_words, 1)
                                * sizeof *group->word_masks);
    group->first_values = xmalloc(MAX(group->n_words, 1)
                                  * sizeof *group->first_values);
    FLOWMAP_FOR_EACH_INDEX (idx, mask->masks.map) {
        group->words[n] = idx;
        group->word_masks[n] = masks[n];
        n++;
    }
    ovs_assert(n == group->n_words);
    return group;
}

/* Adds 'rule' to 'group'.  If the rule makes some word vary in the group,
 * rehashes the group's rules. */
static void
group_add(struct upcall_trace_mask_group *group, struct trace_rule *rule)
{
    bool rehash = false;

    for (size_t i = group->n_varying; i < group->n_words; i++) {
        uint64_t value = (miniflow_get(rule->match.flow, group->words[i])
                          & group->word_masks[i]);

        if (hmap_is_empty(&group->rules)) {
            group->first_values[i] = value;
        } else if (value != group->first_values[i]) {
            /* Varying from now on: move it among the first words. */
            size_t j = group->n_varying++;
            uint8_t word = group->words[i];
            uint64_t mask = group->word_masks[i];
            uint64_t first = group->first_values[i];

            group->words[i] = group->words[j];
            group->word_masks[i] = group->word_masks[j];
            group->first_values[i] = group->first_values[j];
            group->words[j] = word;
            group->word_masks[j] = mask;
            group->first_values[j] = first;
            rehash = true;
        }
    }

    if (rehash) {
        struct hmap old = HMAP_INITIALIZER(&old);
        struct trace_rule *r;

        hmap_swap(&old, &group->rules);
        HMAP_FOR_EACH_POP (r, node, &old) {
            hmap_insert(&group->rules, &r->node, group_hash_rule(group, r));
        }
        hmap_destroy(&old);
    }
    hmap_insert(&group->rules, &rule->node, group_hash_rule(group, rule));
}

static void
group_destroy(struct upcall_trace_mask_group *group)
{
    hmap_destroy(&group->rules);
    free(group->words);
    free(group->word_masks);
    free(group->first_values);
    free(group);
}

struct upcall_trace_index *
upcall_trace_index_create(void)
{
    struct upcall_trace_index *index = xmalloc(sizeof *index);

    index->uuids = NULL;
    index->bridges = NULL;
    index->n_bridges = 0;
    return index;
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
    struct upcall_trace_bridge *bridge = CONST_CAST(
        struct upcall_trace_bridge *, upcall_trace_index_find(index, uuid));
    struct ofputil_port_map *ports = NULL;
    struct upcall_trace_mask_group *group = NULL;

    if (!bridge) {
        size_t n = index->n_bridges++;

        bridge = xzalloc(sizeof *bridge);
        ofputil_port_map_init(&bridge->ports);
        index->uuids = xrealloc(index->uuids, (n + 1) * sizeof *index->uuids);
        index->bridges = xrealloc(index->bridges,
                                  (n + 1) * sizeof *index->bridges);
        index->uuids[n] = *uuid;
        index->bridges[n] = bridge;
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
        group = group_create(rule->match.mask);
        bridge->groups[bridge->n_groups++] = group;
    }
    group_add(group, rule);
    return ports;
}

void
upcall_trace_index_destroy(struct upcall_trace_index *index)
{
    if (!index) {
        return;
    }
    for (size_t b = 0; b < index->n_bridges; b++) {
        struct upcall_trace_bridge *bridge = index->bridges[b];

        /* A group's mask belongs to one of its rules: free rules last. */
        struct trace_rule **rules = xmalloc(bridge->n_rules * sizeof *rules);
        size_t n = 0;

        for (size_t i = 0; i < bridge->n_groups; i++) {
            struct trace_rule *rule;

            HMAP_FOR_EACH_POP (rule, node, &bridge->groups[i]->rules) {
                rules[n++] = rule;
            }
            group_destroy(bridge->groups[i]);
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
    free(index->uuids);
    free(index->bridges);
    free(index);
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
        const struct upcall_trace_mask_group *group = bridge->groups[i];
        uint32_t hash = ut_group_hash_flow(group, (const uint64_t *) flow);
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
