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

#ifndef OFPROTO_UPCALL_TRACE_GROUPING_H
#define OFPROTO_UPCALL_TRACE_GROUPING_H 1

/* Grouping the recirculation rounds of one packet into one trace.
 *
 * A traced round whose datapath actions recirculate registers, for each
 * recirculation, an expectation that the next round of the same packet
 * claims (upcall-trace-expectations.hh).  What identifies that packet is
 * taken when xlate freezes the pipeline (finish_freezing__(), through
 * upcall_trace_frozen()), because that is when the header the datapath will
 * recirculate is known: after a patch port, inside clone(), per conntrack
 * fork.  The expectations are registered when translation is over, from
 * the recirculations that its datapath actions really contain. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dp_packet;
struct flow;
struct ofpbuf;
struct uptrace_round;
struct uptrace_fingerprint;
struct xlate_in;

/* Between these two calls, in this thread, upcall_trace_frozen() records
 * the freezes of the traced translation 'xin' of an upcall whose flow is
 * 'upcall_flow'. */
void upcall_trace_grouping_begin(const struct xlate_in *xin,
                                 const struct flow *upcall_flow);
void upcall_trace_grouping_end(void);

/* The hook in finish_freezing__(): translation 'xin' froze its pipeline as
 * 'recirc_id' and the datapath will recirculate the packet with the header
 * of 'flow' (its actions are committed), rewritten by conntrack's NAT if
 * 'nat'.  Does nothing unless 'xin' is a live traced translation of this
 * thread (ofproto/trace also sets xin->trace). */
void upcall_trace_frozen(const struct xlate_in *xin, uint32_t recirc_id,
                         const struct flow *flow, bool nat);

/* Computes the two parts of a packet's fingerprint: 'tuple' from the
 * addresses and ports of 'flow', 'invariant' from what no rewrite changes
 * in 'packet' (whose upcall flow is 'upcall_flow'). */
void upcall_trace_fingerprint_tuple(const struct flow *flow,
                                    struct uptrace_fingerprint *);
void upcall_trace_fingerprint_packet(const struct flow *upcall_flow,
                                     const struct dp_packet *packet,
                                     struct uptrace_fingerprint *);

/* Registers with 'capture' an expectation for each recirculation in
 * 'odp_actions', the result of the traced translation 'xin' of 'packet'
 * (whose flow 'upcall_flow' was given to upcall_trace_grouping_begin()),
 * with the tuple recorded when it was frozen, or that of 'final_flow' for
 * a recirculation whose freeze was not recorded.  Then ends recording, as
 * upcall_trace_grouping_end(). */
void upcall_trace_expect_rounds(struct uptrace_round *capture,
                                const struct xlate_in *xin,
                                const struct flow *upcall_flow,
                                const struct dp_packet *packet,
                                const struct flow *final_flow,
                                const struct ofpbuf *odp_actions);

#endif /* ofproto/upcall-trace-grouping.h */
