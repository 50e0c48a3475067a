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

#ifndef UPCALL_TRACE_TUNNEL_H
#define UPCALL_TRACE_TUNNEL_H 1

/* Live upcall tracing: Geneve options, as tun_metadataN fields.
 *
 * The datapath gives Geneve options raw (FLOW_TNL_F_UDPIF); a bridge's TLV
 * map names them tun_metadataN, as xlate and ofproto/trace do.  These are
 * the shim's conversions, so that filters match the named fields and traces
 * read as ofproto/trace prints them. */

#include <stddef.h>
#include "upcall-trace.h"

struct flow;
struct flow_wildcards;
struct ofproto_dpif;
struct xlate_in;

/* The bridge that the translation of 'xin', an upcall of 'ofproto', runs on:
 * for a continuation, the bridge it resumes on (after a patch port, not the
 * bridge of the upcall's input port). */
const struct ofproto_dpif *upcall_trace_xlate_ofproto(
    const struct ofproto_dpif *ofproto, const struct xlate_in *xin);

/* Completes 'flow' and 'wc', that parse_ofp_exact_flow() parsed from
 * 'filter': sets the mask of each tun_metadataN field (it leaves them
 * unmasked).  Returns NULL, or a malloc()'d message if 'filter' names a
 * tun_metadataN field that the bridge's TLV map does not name (the parser
 * ignores those). */
char *upcall_trace_filter_tun_metadata(const char *filter,
                                       const struct flow *,
                                       struct flow_wildcards *wc);

/* The flow that 'ofproto''s filters are matched on: 'xin_flow' itself if the
 * upcall's flow 'upcall_flow' has no raw Geneve options, otherwise a copy in
 * 'buf' with them named by 'ofproto''s TLV map. */
struct flow *upcall_trace_filter_flow(const struct ofproto_dpif *ofproto,
                                      const struct flow *upcall_flow,
                                      struct flow *xin_flow,
                                      struct flow *buf);

/* The final flow of a round to store, with Geneve options raw: 'xin''s flow
 * itself, 'initial_flow' if translation left the flow unchanged, or a copy
 * in 'buf'.  'upcall_flow' is the upcall's flow, 'initial_flow' the copy of
 * 'xin''s flow taken before translation. */
const struct flow *upcall_trace_final_flow(const struct flow *upcall_flow,
                                           const struct flow *initial_flow,
                                           const struct xlate_in *xin,
                                           struct flow *buf);

/* The engine's blob formatter: upcall_trace_format_blob(), after naming the
 * raw Geneve options of flows and megaflows with the current TLV map of
 * 'bridge'.  Main thread only. */
char *upcall_trace_format_tunnel_blob(enum uptrace_blob, const void *data,
                                      size_t size, const char *bridge,
                                      void *aux);

#endif /* upcall-trace-tunnel.h */
