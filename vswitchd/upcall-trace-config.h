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

#ifndef VSWITCHD_UPCALL_TRACE_CONFIG_H
#define VSWITCHD_UPCALL_TRACE_CONFIG_H 1

/* Live upcall tracing: the Upcall_Trace table.
 *
 * Reconciles every row of the Upcall_Trace table into a session of the
 * upcall trace engine (ofproto/upcall-trace.h), through the shim
 * (ofproto/ofproto-dpif-upcall-trace.h), and writes each session's state and
 * counters back into the row's "status" column.
 *
 * bridge.c calls these functions, in the main thread only:
 *
 *   - upcall_trace_config_init() from bridge_init(), before the IDL first
 *     runs.
 *
 *   - upcall_trace_config_reconfigure() at the end of bridge_reconfigure(),
 *     once the bridges and their ports exist.
 *
 *   - upcall_trace_config_run() and upcall_trace_config_wait() from
 *     bridge_run() and bridge_wait().
 *
 *   - upcall_trace_config_get_memory_usage() from bridge_get_memory_usage().
 */

struct ovsdb_idl;
struct simap;

void upcall_trace_config_init(struct ovsdb_idl *);
void upcall_trace_config_reconfigure(struct ovsdb_idl *);
void upcall_trace_config_run(struct ovsdb_idl *);
void upcall_trace_config_wait(void);
void upcall_trace_config_get_memory_usage(struct simap *);

#endif /* vswitchd/upcall-trace-config.h */
