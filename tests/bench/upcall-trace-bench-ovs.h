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

#ifndef TESTS_UPCALL_TRACE_BENCH_OVS_H
#define TESTS_UPCALL_TRACE_BENCH_OVS_H 1

/* The Open vSwitch side of the engine micro-benchmarks, in C, because Open
 * vSwitch's internal headers are not C++-clean.
 *
 *   - Realistic round content: a real struct flow, struct match and
 *     datapath actions, as the shim hands them to the engine.
 *   - The shim's blob formatter (ofproto-dpif-upcall-trace.c format_blob()),
 *     so that rendering is measured with the real flow_format() and
 *     format_odp_actions().
 *   - A replica of the shim's per-upcall match decision (match_sessions():
 *     a classifier per bridge, then minimatch_matches_flow() on every rule
 *     when the classifier found one), which is static in the shim and needs
 *     an ofproto to reach. */

#include <stdbool.h>
#include <stddef.h>
#include "upcall-trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Blobs of a typical round: a UDP flow through ct(zone=1) and recirc. */
struct bench_blobs {
    const void *flow;           /* struct flow, initial and final. */
    size_t flow_size;
    const void *megaflow;       /* struct match. */
    size_t megaflow_size;
    const void *odp_actions;    /* Netlink attributes. */
    size_t odp_actions_size;
};
void bench_blobs_get(struct bench_blobs *);

/* The shim's formatter. */
char *bench_format_blob(enum uptrace_blob, const void *data, size_t size,
                        const char *bridge, void *aux);

/* The shim's index for one bridge with 'n' sessions.  If 'matching', every
 * session's filter matches the benchmark's upcall ("udp,nw_src=10.0.0.1");
 * otherwise none does ("udp,udp_dst=N" with N never 53), all with the same
 * shape, as sessions on one bridge usually are. */
struct bench_index;
struct bench_index *bench_index_create(struct uptrace_session *const *,
                                       size_t n, bool matching);
void bench_index_destroy(struct bench_index *);

/* upcall_trace_is_active(): one relaxed atomic load. */
bool bench_is_active(void);
void bench_set_active(unsigned int n);

/* match_sessions() for the benchmark's upcall flow: the sessions whose
 * filter it matches, in 'out' (room for the index's 'n' sessions), and
 * their number. */
size_t bench_index_match(const struct bench_index *,
                         struct uptrace_session **out);

#ifdef __cplusplus
}
#endif

#endif /* upcall-trace-bench-ovs.h */
