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

#ifndef UPCALL_TRACE_INDEX_H
#define UPCALL_TRACE_INDEX_H 1

/* Live upcall tracing: the index the upcall path looks sessions up in.
 *
 * For each bridge, the sessions on it and their matches (filter and port,
 * combined), and the bridge's port names.  The filters themselves are
 * parsed here too (upcall_trace_filter_parse()).  An index is built once, by the
 * configuration layer, and never changes afterward: the shim
 * (ofproto-dpif-upcall-trace.c) publishes it with RCU, so that handler and
 * PMD threads read it without any lock, and replaces it as a whole.
 *
 * This module depends only on lib/ and the engine's header, so that the
 * micro-benchmarks (tests/bench/) measure this very code without an
 * ofproto.  Looking bridges up, filling their port names and the RCU
 * publication are the shim's. */

#include <stdbool.h>
#include <stddef.h>
#include "openvswitch/hmap.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/types.h"
#include "uuid.h"

struct flow;
struct match;
struct ofputil_port_map;
struct tun_table;
struct uptrace_session;

/* An index.  Its members are private to upcall-trace-index.c: it is defined
 * here only because ovsrcu_postpone(), in the shim, needs a complete type to
 * check its argument. */
struct upcall_trace_index {
    /* Bridges are few: a lookup compares uuids in an array. */
    struct uuid *uuids;                     /* The bridges' ofproto uuids. */
    struct upcall_trace_bridge **bridges;   /* Their sessions. */
    size_t n_bridges;
};

/* Internals.
 *
 * Private to upcall-trace-index.c, but defined here, as lib/classifier-
 * private.h does for the classifier, so that the upcall path inlines its
 * quick test (upcall_trace_bridge_may_match()): most upcalls end there, and
 * a call costs them more than the test. */

/* Each bridge keeps its sessions' matches grouped by mask, each group in a
 * hash table of the masked flow, as the classifier's subtables are: deciding
 * that an upcall matches no session costs one hash and one lookup per
 * distinct filter shape, whatever the number of sessions, and a match finds
 * every matching session at once. */
struct upcall_trace_mask_group {
    const struct minimask *mask;        /* The first rule's. */
    struct hmap rules;                  /* Of "struct trace_rule". */

    /* The 64-bit words of "struct flow" that 'mask' covers, their masks and
     * the first rule's masked values.  Only the words whose value differs
     * between the group's rules are hashed: the first 'n_varying' of
     * 'words' (a flow that differs in another word fails
     * minimatch_matches_flow(), which confirms every hash match). */
    size_t n_words, n_varying;
    uint8_t *words;
    uint64_t *word_masks;
    uint64_t *first_values;
};

/* A multiply-xorshift mix, a few instructions per word: only equality
 * matters, and hmap uses the low bits, into which the high half is
 * folded. */
static inline uint32_t
ut_mix_finish(uint64_t acc)
{
    return acc ^ (acc >> 32);
}

static inline uint64_t
ut_mix_word(uint64_t acc, uint64_t word)
{
    acc = (acc ^ word) * UINT64_C(0x9e3779b97f4a7c15);
    return acc ^ (acc >> 29);
}

/* Hashes the varying words of 'flow' in 'group'. */
static inline uint32_t
ut_group_hash_flow(const struct upcall_trace_mask_group *group, const uint64_t *flow_u64)
{
    uint64_t acc = 0;

    for (size_t i = 0; i < group->n_varying; i++) {
        acc = ut_mix_word(acc, (flow_u64[group->words[i]]
                             & group->word_masks[i]));
    }
    return ut_mix_finish(acc);
}

/* The sessions of one bridge in an index. */
struct upcall_trace_bridge {
    struct upcall_trace_mask_group **groups;         /* Not moved: an hmap cannot be. */
    size_t n_groups, allocated_groups;
    size_t n_rules;

    /* Whether some match looks at what a thaw restores from the frozen
     * pipeline (in_port, registers, metadata, tunnel) or at conntrack
     * fields. */
    bool needs_thaw_fields;

    /* Port names, for the rounds' in_port, read by capture threads. */
    struct ofputil_port_map ports;
};

/* Filters (main thread). */

/* Parses 'filter', an OpenFlow match in the syntax of ovs-fields(7) as
 * "ovs-ofctl add-flow" accepts it, without actions or other flow keywords
 * (masks, prefixes such as nw_src=10.0.0.0/24, flags such as
 * ct_state=+trk+est, subfields such as reg0[0..3]=5, protocol aliases,
 * port names from 'port_map' if nonnull), into 'match'.  'tun_table' is the
 * bridge's tunnel metadata table, or NULL.
 *
 * Unlike "ovs-ofctl add-flow", which drops (OpenFlow 1.0) or refuses (1.1
 * and later) a field whose prerequisites the match does not state, the
 * filter must state them: "ip,nw_src=10.0.0.0/24", not
 * "nw_src=10.0.0.0/24".  "tp_src" and "tp_dst" stand for the source and
 * destination port of TCP, UDP or SCTP, or the ICMP type and code.
 *
 * Returns NULL on success, otherwise a malloc()'d message (without the
 * filter itself) that the caller must free. */
char *upcall_trace_filter_parse(const char *filter,
                                const struct ofputil_port_map *port_map,
                                const struct tun_table *tun_table,
                                struct match *match);

/* Building (main thread). */

struct upcall_trace_index *upcall_trace_index_create(void);

/* Adds to 'index' the session 'session', whose upcalls on the bridge with
 * ofproto-dpif uuid 'bridge' are those that satisfy 'match'.  Takes a
 * reference to 'session'.  The same session may be added more than once and
 * sessions may share a match.
 *
 * Returns the bridge's (empty) port name map, for the caller to fill, when
 * this is the first session added for 'bridge', otherwise NULL. */
struct ofputil_port_map *upcall_trace_index_add(
    struct upcall_trace_index *index, const struct uuid *bridge,
    const struct match *match, struct uptrace_session *session);

/* Frees 'index' and releases its session references.  NULL is allowed.  No
 * thread may be reading 'index' any longer: call it through
 * ovsrcu_postpone() for a published index. */
void upcall_trace_index_destroy(struct upcall_trace_index *index);

/* Reading (any thread). */

/* The sessions of the bridge with ofproto-dpif uuid 'bridge', or NULL if it
 * has none. */
static inline const struct upcall_trace_bridge *
upcall_trace_index_find(const struct upcall_trace_index *index,
                        const struct uuid *bridge)
{
    for (size_t i = 0; i < index->n_bridges; i++) {
        if (uuid_equals(&index->uuids[i], bridge)) {
            return index->bridges[i];
        }
    }
    return NULL;
}

/* Returns the number of sessions of 'bridge' whose match 'flow' satisfies,
 * in the order they were added, and stores them in '*sessionsp': 'stub'
 * (with room for 'n_stub') when they fit, otherwise an array that the caller
 * must free().  'flow' has OpenFlow port numbers, as the filters do.  The
 * sessions are not referenced: they stay valid as long as the index.
 *
 * The cost does not depend on the number of sessions that do not match,
 * only on the number of distinct shapes (sets of fields and masks) of their
 * filters. */
size_t upcall_trace_bridge_match(const struct upcall_trace_bridge *bridge,
                                 const struct flow *flow,
                                 struct uptrace_session **stub, size_t n_stub,
                                 struct uptrace_session ***sessionsp);

/* Returns false if no session of 'bridge' matches 'flow', true if some
 * may: a quick test for the upcall path, which most upcalls end at, that
 * upcall_trace_bridge_match() confirms.  'thawed' says that the round
 * resumes a pipeline frozen on 'bridge': if some filter looks at what a
 * thaw restores (upcall_trace_bridge_needs_thaw_fields()), 'flow' cannot
 * tell, and the answer is true. */
static inline bool
upcall_trace_bridge_may_match(const struct upcall_trace_bridge *bridge,
                              const struct flow *flow, bool thawed)
{
    const uint64_t *flow_u64 = (const uint64_t *) flow;

    if (thawed && bridge->needs_thaw_fields) {
        return true;
    }
    for (size_t i = 0; i < bridge->n_groups; i++) {
        const struct upcall_trace_mask_group *group = bridge->groups[i];
        size_t j;

        /* The varying words first: a hash and a bucket, which most flows
         * end at. */
        if (group->n_varying
            && !hmap_first_with_hash(&group->rules,
                                     ut_group_hash_flow(group, flow_u64))) {
            continue;
        }
        /* Then the words all the group's rules agree on (all the words of
         * a single session's filter), a compare each. */
        for (j = group->n_varying; j < group->n_words; j++) {
            if ((flow_u64[group->words[j]] & group->word_masks[j])
                != group->first_values[j]) {
                break;
            }
        }
        if (j == group->n_words) {
            return true;
        }
    }
    return false;
}

/* Whether some filter of 'bridge' looks at a field that a thaw restores from
 * the frozen pipeline (in_port, registers, metadata, tunnel) or at a
 * conntrack field, so that matching a thawed round needs its restored
 * flow. */
bool upcall_trace_bridge_needs_thaw_fields(
    const struct upcall_trace_bridge *bridge);

/* The name of port 'port' of 'bridge', as the map filled when the index was
 * built had it, or NULL. */
const char *upcall_trace_bridge_port_name(
    const struct upcall_trace_bridge *bridge, ofp_port_t port);

#endif /* upcall-trace-index.h */
