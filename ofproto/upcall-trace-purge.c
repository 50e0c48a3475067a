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

/* Live upcall tracing: "upcall/trace/purge SESSION".
 *
 * Only upcalled packets are traced: once a megaflow covers a packet, the
 * datapath handles it without ovs-vswitchd.  To trace the next packets a
 * session is interested in, their datapath flows must go.  revalidator/purge
 * and dpctl/del-flows remove every flow, and on a busy switch every flow
 * then upcalls at once.  This command removes only the flows whose megaflow
 * can match one of the session's matches (its filter and port, on its
 * bridge): the others keep forwarding in the datapath.
 *
 * A megaflow "can match" a session when some packet satisfies both: for
 * every bit that both the megaflow's mask and the session's mask cover, the
 * two values agree.  Datapath flows speak datapath port numbers and name no
 * bridge; xlate_lookup_ofproto() gives the bridge and the OpenFlow in_port,
 * as it does for an upcall, recirculated flows included.
 *
 * The flows are removed through udpif_purge_flows() (a hook in
 * ofproto-dpif-upcall.c), as revalidator/purge removes them: with the
 * revalidators paused, each flow deleted from the datapath and its ukey
 * retired, so the next packet installs a new flow at once. */

#include <config.h>

#include "upcall-trace-purge.h"

#include <errno.h>

#include "flow.h"
#include "odp-util.h"
#include "ofproto-dpif.h"
#include "ofproto-dpif-upcall.h"
#include "ofproto-dpif-upcall-trace.h"
#include "ofproto-dpif-xlate.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/json.h"
#include "openvswitch/vlog.h"
#include "unixctl.h"
#include "upcall-trace.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(upcall_trace_purge);

/* What a purge looks for. */
struct purge_ctx {
    /* The session's bindings, their matches expanded once for all flows. */
    struct uuid *ofproto_uuids;
    struct match *matches;
    size_t n_bindings;
    size_t n_examined;          /* Flows looked at. */
};

bool
upcall_trace_megaflow_may_match(const struct flow *flow,
                                const struct flow_wildcards *wc,
                                const struct match *match)
{
    const uint64_t *fv = (const uint64_t *) flow;
    const uint64_t *fm = (const uint64_t *) &wc->masks;
    const uint64_t *mv = (const uint64_t *) &match->flow;
    const uint64_t *mm = (const uint64_t *) &match->wc.masks;

    for (size_t i = 0; i < FLOW_U64S; i++) {
        if ((fv[i] ^ mv[i]) & fm[i] & mm[i]) {
            return false;
        }
    }
    return true;
}

/* udpif_flow_selector for udpif_purge_flows(). */
static bool
select_flow(const struct dpif_backer *backer,
            const struct nlattr *key, size_t key_len,
            const struct nlattr *mask, size_t mask_len, void *ctx_)
{
    struct purge_ctx *ctx = ctx_;
    struct flow_wildcards wc;
    struct ofproto_dpif *ofproto;
    ofp_port_t ofp_in_port;
    struct flow flow;

    ctx->n_examined++;
    if (odp_flow_key_to_flow(key, key_len, &flow, NULL) == ODP_FIT_ERROR
        || odp_flow_key_to_mask(mask, mask_len, &wc, &flow, NULL)
           == ODP_FIT_ERROR) {
        return false;
    }

    ofproto = xlate_lookup_ofproto(backer, &flow, &ofp_in_port, NULL);
    if (!ofproto) {
        return false;
    }

    /* The session's matches, like the upcall path, see OpenFlow ports. */
    flow.in_port.odp_port = 0;
    flow.in_port.ofp_port = ofp_in_port;
    wc.masks.in_port.odp_port = 0;
    wc.masks.in_port.ofp_port = u16_to_ofp(UINT16_MAX);

    for (size_t i = 0; i < ctx->n_bindings; i++) {
        if (uuid_equals(&ctx->ofproto_uuids[i], &ofproto->uuid)
            && upcall_trace_megaflow_may_match(&flow, &wc,
                                               &ctx->matches[i])) {
            return true;
        }
    }
    return false;
}

static void
unixctl_purge(struct unixctl_conn *conn, int argc OVS_UNUSED,
              const char *argv[], void *aux OVS_UNUSED)
{
    const char *name = argv[1];
    struct uptrace_session *session;
    const struct upcall_trace_binding *all;
    struct purge_ctx ctx = { .matches = NULL };
    size_t n_all, n_purged;

    session = uptrace_engine_find_session(upcall_trace_engine(), name);
    if (!session) {
        unixctl_command_reply_error(conn, "no such session");
        return;
    }

    all = upcall_trace_get_bindings(&n_all);
    for (size_t i = 0; i < n_all; i++) {
        if (all[i].session == session) {
            size_t n = ctx.n_bindings++;

            ctx.ofproto_uuids = xrealloc(ctx.ofproto_uuids,
                                         (n + 1) * sizeof *ctx.ofproto_uuids);
            ctx.matches = xrealloc(ctx.matches,
                                   (n + 1) * sizeof *ctx.matches);
            ctx.ofproto_uuids[n] = all[i].ofproto_uuid;
            minimatch_expand(&all[i].match, &ctx.matches[n]);
        }
    }
    if (!ctx.n_bindings) {
        /* Waiting for its bridge or port, or in error: nothing can match. */
        unixctl_command_reply_error(conn, "session is not active (see "
                                    "upcall/trace/show): no datapath flow "
                                    "can match it");
        return;
    }

    n_purged = udpif_purge_flows(select_flow, &ctx);
    free(ctx.ofproto_uuids);
    free(ctx.matches);

    VLOG_INFO("upcall/trace/purge %s: removed %"PRIuSIZE" of %"PRIuSIZE
              " datapath flows", name, n_purged, ctx.n_examined);
    if (unixctl_command_get_output_format(conn) == UNIXCTL_OUTPUT_FMT_JSON) {
        struct json *json = json_object_create();

        json_object_put_string(json, "session", name);
        json_object_put(json, "n_purged", json_integer_create(n_purged));
        json_object_put(json, "n_examined",
                        json_integer_create(ctx.n_examined));
        unixctl_command_reply_json(conn, json);
    } else {
        char *reply = xasprintf("removed %"PRIuSIZE" of %"PRIuSIZE
                                " datapath flows", n_purged, ctx.n_examined);

        unixctl_command_reply(conn, reply);
        free(reply);
    }
}

void
upcall_trace_purge_register(void)
{
    unixctl_command_register("upcall/trace/purge", "SESSION", 1, 1,
                             unixctl_purge, NULL);
}
