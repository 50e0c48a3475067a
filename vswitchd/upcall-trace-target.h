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

#ifndef VSWITCHD_UPCALL_TRACE_TARGET_H
#define VSWITCHD_UPCALL_TRACE_TARGET_H 1

/* Live upcall tracing: what an Upcall_Trace row says and targets.
 *
 * Resolves a session's bridge, "port" (a Port name: all its interfaces, or
 * an Interface name) or "iface_id" (external_ids:iface-id of an Interface)
 * into OpenFlow port numbers, and compiles its filter, without asking the
 * datapath anything: port names and numbers come from the bridge's ofproto
 * (ofproto->port_by_name) and the database (the IDL), so the cost of a
 * reconfiguration does not grow with a netlink round trip per session.
 *
 * A "struct ut_target_ctx" caches, for one reconfiguration, what is built
 * once and shared by every session: the port map of each bridge that needs
 * one, and the interfaces by iface-id.  Main thread only. */

#include <stdbool.h>
#include <stddef.h>
#include "openvswitch/match.h"
#include "openvswitch/shash.h"
#include "openvswitch/types.h"
#include "openvswitch/uuid.h"

struct ovsdb_idl;

/* At most this many bytes of a value a message quotes, then "...". */
#define UT_QUOTE_MAX 200

/* Returns a malloc()'d copy of 's' cut to UT_QUOTE_MAX bytes (not in the
 * middle of a UTF-8 character) followed by "..." if it is longer. */
char *ut_quote(const char *s);

void ut_target_init(struct ovsdb_idl *);

struct ut_target_ctx {
    struct ovsdb_idl *idl;
    struct shash port_maps;     /* Bridge name -> struct ofputil_port_map. */
    struct shash iface_ids;     /* iface-id -> struct sset of names. */
    bool have_iface_ids;
};

void ut_target_ctx_init(struct ut_target_ctx *, struct ovsdb_idl *);
void ut_target_ctx_destroy(struct ut_target_ctx *);

/* Why a session cannot capture now (the values of
 * enum upcall_trace_compile_result). */
enum ut_target_result {
    UT_TARGET_OK,               /* Resolved. */
    UT_TARGET_NO_BRIDGE,        /* Waiting: no such bridge (yet). */
    UT_TARGET_NO_PORT,          /* Waiting: no such port (yet). */
    UT_TARGET_ERROR             /* Wrong configuration. */
};

/* A resolved target: the bridge's ofproto and the OpenFlow ports (none:
 * every port). */
struct ut_target {
    struct uuid ofproto_uuid;
    ofp_port_t *ports;          /* Sorted. */
    size_t n_ports;
};

void ut_target_destroy(struct ut_target *);
bool ut_target_equal(const struct ut_target *, const struct ut_target *);

/* Resolves 'bridge' and at most one of 'port' and 'iface_id' (each may be
 * NULL) into 'target'.  On failure, '*msgp' gets a malloc()'d message. */
enum ut_target_result ut_target_resolve(struct ut_target_ctx *,
                                        const char *bridge, const char *port,
                                        const char *iface_id,
                                        struct ut_target *, char **msgp);

/* Parses 'filter' (NULL or "" for every packet) for 'bridge' into 'match'.
 * '*uses_names' tells whether the result depends on the bridge's port names
 * (so must be parsed again when they change).  Returns NULL or a malloc()'d
 * error message. */
char *ut_filter_parse(struct ut_target_ctx *, const char *bridge,
                      const char *filter, struct match *, bool *uses_names);

/* Initializes 'matches' (n_ports of 'target', or one if it has none) to
 * 'filter' restricted to each port of 'target'.  Returns the number of
 * matches, which the caller must minimatch_destroy(), or 0 with a malloc()'d
 * '*msgp' if 'filter' matches an in_port that is not one of 'target''s
 * ('what' names the target in the message).  'matches' must have room for
 * MAX(target->n_ports, 1) matches. */
size_t ut_target_matches(const struct ut_target *, const struct match *filter,
                         const char *filter_text, const char *what,
                         struct minimatch *matches, char **msgp);

/* Parsing an Upcall_Trace row. */

struct ovsrec_upcall_trace;
struct uptrace_session_config;

/* Parses 'cfg' into 'config', whose strings then point into 'cfg', and
 * options:duration into '*duration_s' (0 if none).  Returns NULL or an
 * error message (malloc()'d).  Unknown options are ignored: '*warningp'
 * then gets a malloc()'d message naming them. */
char *ut_parse_row(const struct ovsrec_upcall_trace *cfg,
                   struct uptrace_session_config *config,
                   int64_t *duration_s, char **warningp);

/* Returns a malloc()'d string that changes whenever the configuration of
 * 'cfg' (every column but the ones ovs-vswitchd writes) changes. */
char *ut_config_key(const struct ovsrec_upcall_trace *cfg);

#endif /* vswitchd/upcall-trace-target.h */
