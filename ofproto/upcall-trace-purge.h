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

#ifndef OFPROTO_UPCALL_TRACE_PURGE_H
#define OFPROTO_UPCALL_TRACE_PURGE_H 1

/* Live upcall tracing: "upcall/trace/purge SESSION" removes the datapath
 * flows whose megaflow can match the session, so that the next packets it
 * wants are upcalled and traced, and leaves every other flow in place. */

#include <stdbool.h>

struct flow;
struct flow_wildcards;
struct match;

/* Registers the unixctl command.  Called by upcall_trace_init(). */
void upcall_trace_purge_register(void);

/* True if some packet can satisfy both the megaflow 'flow'/'wc' and 'match':
 * on every bit both masks cover, the values agree. */
bool upcall_trace_megaflow_may_match(const struct flow *flow,
                                     const struct flow_wildcards *wc,
                                     const struct match *match);

#endif /* upcall-trace-purge.h */
