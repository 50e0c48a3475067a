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

/* Live upcall tracing: what the revalidators do to the datapath flows that
 * traced rounds installed.
 *
 * Revalidator threads call upcall_trace_flow_revalidated() (a hook in
 * ofproto-dpif-upcall.c) for each flow they revalidate or sweep, once a
 * traced round has installed a flow: upcall_trace_follows_flows() is the one
 * relaxed load they pay before that, and after it, one lock-free check of
 * whether the engine follows any flow.  The engine keeps, per UFID, the
 * counters, the modifications and the deletion of the flows it follows;
 * every other flow is a miss in its table. */

#include <config.h>

#include "ofproto-dpif-upcall-trace.h"

#include "odp-util.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/ofpbuf.h"
#include "upcall-trace.h"

atomic_bool upcall_trace_flows_followed = false;

void
upcall_trace_flow_installed(void)
{
    atomic_store_relaxed(&upcall_trace_flows_followed, true);
}

void
upcall_trace_flow_revalidated(const ovs_u128 *ufid,
                              enum upcall_trace_flow_result result,
                              const char *del_reason,
                              const struct ofpbuf *old_actions,
                              const struct ofpbuf *new_actions,
                              uint64_t n_packets, uint64_t n_bytes)
{
    struct uptrace_engine *engine = upcall_trace_engine();
    uint8_t bytes[16];

    if (!uptrace_engine_follows_flows(engine)) {
        return;
    }
    memcpy(bytes, ufid, sizeof bytes);

    switch (result) {
    case UPCALL_TRACE_FLOW_KEPT:
        uptrace_engine_flow_changed(engine, bytes, UPTRACE_FLOW_STATS, NULL,
                                    n_packets, n_bytes);
        break;

    case UPCALL_TRACE_FLOW_MODIFIED: {
        struct ds detail = DS_EMPTY_INITIALIZER;

        ds_put_cstr(&detail, "actions ");
        if (old_actions && old_actions->size) {
            format_odp_actions(&detail, old_actions->data, old_actions->size,
                               NULL);
        } else {
            ds_put_cstr(&detail, "drop");
        }
        ds_put_cstr(&detail, " -> ");
        if (new_actions && new_actions->size) {
            format_odp_actions(&detail, new_actions->data, new_actions->size,
                               NULL);
        } else {
            ds_put_cstr(&detail, "drop");
        }
        uptrace_engine_flow_changed(engine, bytes, UPTRACE_FLOW_MODIFIED,
                                    ds_cstr(&detail), n_packets, n_bytes);
        ds_destroy(&detail);
        break;
    }

    case UPCALL_TRACE_FLOW_DELETED:
        uptrace_engine_flow_changed(engine, bytes, UPTRACE_FLOW_DELETED,
                                    del_reason, n_packets, n_bytes);
        break;
    }
}
