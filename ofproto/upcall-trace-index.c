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

#include "classifier.h"
#include "flow.h"
#include "openvswitch/hmap.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-port.h"
#include "upcall-trace.h"
#include "util.h"
#include "uuid.h"

/* Each bridge has a classifier of its sessions' matches, so that deciding
 * that an upcall matches no session costs a classifier lookup, which depends
 * on the number of distinct filter shapes, not of sessions. */
struct trace_rule {
    struct cls_rule cr;                 /* Priority: unique per bridge. */
    struct uptrace_session *session;    /* Holds a reference. */
};

struct upcall_trace_bridge {
    struct hmap_node node;              /* In 'upcall_trace_index.bridges'. */
    struct uuid ofproto_uuid;
    struct classifier cls;
    struct trace_rule **rules;
    size_t n_rules, allocated_rules;

    /* Port names, for the rounds' in_port, read by capture threads. */
    struct ofputil_port_map ports;
};

/* Up to this many sessions on a bridge, comparing the flow with each of
 * their matches is cheaper than a classifier lookup. */
#define UPCALL_TRACE_LINEAR_MAX 4

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

struct ofputil_port_map *
upcall_trace_index_add(struct upcall_trace_index *index,
                       const struct uuid *uuid, const struct match *match,
                       struct uptrace_session *session)
{
    struct upcall_trace_bridge *bridge = bridge_find(index, uuid);
    struct ofputil_port_map *ports = NULL;

    if (!bridge) {
        bridge = xzalloc(sizeof *bridge);
        bridge->ofproto_uuid = *uuid;
        classifier_init(&bridge->cls, flow_segment_u64s);
        ofputil_port_map_init(&bridge->ports);
        hmap_insert(&index->bridges, &bridge->node, uuid_hash(uuid));
        ports = &bridge->ports;
    }

    struct trace_rule *rule = xmalloc(sizeof *rule);
    /* A unique priority per rule: the classifier refuses two rules with the
     * same match and priority, and sessions may share a filter. */
    cls_rule_init(&rule->cr, match, (int) bridge->n_rules + 1);
    rule->session = uptrace_session_ref(session);
    classifier_insert(&bridge->cls, &rule->cr, OVS_VERSION_MIN, NULL, 0);
    if (bridge->n_rules >= bridge->allocated_rules) {
        bridge->rules = x2nrealloc(bridge->rules, &bridge->allocated_rules,
                                   sizeof *bridge->rules);
    }
    bridge->rules[bridge->n_rules++] = rule;
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
        for (size_t i = 0; i < bridge->n_rules; i++) {
            classifier_remove_assert(&bridge->cls, &bridge->rules[i]->cr);
        }
        classifier_destroy(&bridge->cls);
        for (size_t i = 0; i < bridge->n_rules; i++) {
            cls_rule_destroy(&bridge->rules[i]->cr);
            uptrace_session_unref(bridge->rules[i]->session);
            free(bridge->rules[i]);
        }
        free(bridge->rules);
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

size_t
upcall_trace_bridge_match(const struct upcall_trace_bridge *bridge,
                          struct flow *flow,
                          struct uptrace_session **stub, size_t n_stub,
                          struct uptrace_session ***sessionsp)
{
    struct uptrace_session **sessions;
    size_t n = 0;

    *sessionsp = stub;
    if (bridge->n_rules > UPCALL_TRACE_LINEAR_MAX
        && !classifier_lookup(&bridge->cls, OVS_VERSION_MIN, flow,
                              NULL, NULL)) {
        return 0;
    }

    /* The classifier finds the best match only; sessions are rarely many on
     * one bridge, so find all of them directly. */
    sessions = (bridge->n_rules <= n_stub ? stub
                : xmalloc(bridge->n_rules * sizeof *sessions));
    for (size_t i = 0; i < bridge->n_rules; i++) {
        const struct trace_rule *rule = bridge->rules[i];

        if (minimatch_matches_flow(&rule->cr.match, flow)) {
            sessions[n++] = rule->session;
        }
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
