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
 *   - Realistic round content: a real struct flow, megaflow blob and
 *     datapath actions, as the shim hands them to the engine.
 *   - The shim's per-upcall match decision on the shim's own index
 *     (ofproto/upcall-trace-index.c), built here without an ofproto.
 *   - The shim's blob formatter (ofproto/upcall-trace-blob.c), so that
 *     rendering is measured with the real flow_format() and
 *     format_odp_actions(). */

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
    const void *megaflow;       /* struct upcall_trace_megaflow_blob. */
    size_t megaflow_size;
    const void *odp_actions;    /* Netlink attributes. */
    size_t odp_actions_size;
};
void bench_blobs_get(struct bench_blobs *);

/* The shim's formatter, upcall_trace_format_blob(), whose header is not
 * C++-clean. */
uptrace_blob_formatter *bench_blob_formatter(void);

/* The shim's index with one bridge and 'n' sessions on it (each referenced
 * by the index until bench_index_destroy()).  If 'matching', every
 * session's filter matches the benchmark's upcall ("udp,nw_src=10.0.0.1");
 * otherwise none does ("udp,udp_dst=N" with N never 53), all with the same
 * shape, as sessions on one bridge usually are. */
struct upcall_trace_index;
struct upcall_trace_index *bench_index_create(struct uptrace_session *const *,
                                              size_t n, bool matching);
void bench_index_destroy(struct upcall_trace_index *);

/* upcall_trace_is_active(): one relaxed atomic load.  Its counter is defined
 * by the shim, which cannot be linked without the rest of ofproto. */
bool bench_is_active(void);
void bench_set_active(unsigned int n);

/* What upcall_trace_begin() does to decide on the benchmark's upcall flow:
 * looks the bridge up and returns the number of sessions whose filter the
 * flow matches, in '*sessionsp': 'stub' (room for 'n_stub') or, with more
 * sessions on the bridge than that, an array the caller must free(). */
size_t bench_index_match(const struct upcall_trace_index *,
                         struct uptrace_session **stub, size_t n_stub,
                         struct uptrace_session ***sessionsp);

#ifdef __cplusplus
}
#endif

#endif /* upcall-trace-bench-ovs.h */
