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

#include "upcall-trace-tunnel.h"

#include <string.h>

#include "flow.h"
#include "ofproto-dpif.h"
#include "ofproto-dpif-rid.h"
#include "ofproto-dpif-xlate.h"
#include "openvswitch/meta-flow.h"
#include "tun-metadata.h"
#include "upcall-trace-blob.h"
#include "util.h"

/* Geneve tunnel metadata.
 *
 * The datapath gives Geneve options as the raw bytes of the header (the
 * "UDPIF" form of FLOW_TNL_F_UDPIF): they only become tun_metadataN fields
 * through the TLV map of a bridge, which xlate applies at the start of
 * translation and ofproto/trace before printing.  Filters and recorded flows
 * need the same form, so that a filter on tun_metadataN matches, and a
 * round reads as ofproto/trace prints it.  This costs nothing to upcalls
 * that are not tunnelled, and nothing at all while no session exists on the
 * bridge. */

/* parse_ofp_exact_flow() leaves the mask of tun_metadataN fields empty: it
 * writes masks through a TLV map, which a fresh mask lacks.  It also ignores
 * a tun_metadataN field that the map does not name, which would make the
 * filter match every packet.  Refuses the latter, and sets the mask of every
 * tun_metadataN field of 'flow' in 'wc'. */
char *
upcall_trace_filter_tun_metadata(const char *filter, const struct flow *flow,
                                 struct flow_wildcards *wc)
{
    char *copy = xstrdup(filter);
    char *save_ptr = NULL;
    char *error = NULL;
    int i;

    for (char *key = strtok_r(copy, ", \t\r\n", &save_ptr); key && !error;
         key = strtok_r(NULL, ", \t\r\n", &save_ptr)) {
        key[strcspn(key, "=:")] = '\0';

        const struct mf_field *mf = mf_from_name(key);
        if (mf && mf_is_tun_metadata(mf)
            && !ULLONG_GET(flow->tunnel.metadata.present.map,
                           mf->id - MFF_TUN_METADATA0)) {
            error = xasprintf("%s is not in the bridge's TLV map (see "
                              "\"ovs-ofctl add-tlv-map\")", key);
        }
    }
    free(copy);
    if (error) {
        return error;
    }

    wc->masks.tunnel.metadata.tab = flow->tunnel.metadata.tab;
    ULLONG_FOR_EACH_1 (i, flow->tunnel.metadata.present.map) {
        mf_mask_field(mf_from_id(MFF_TUN_METADATA0 + i), wc);
    }
    /* Match the options, not the map they were named with. */
    wc->masks.tunnel.metadata.tab = NULL;
    return NULL;
}

/* Rewrites the tun_metadataN options of 'tnl', in OpenFlow form, into
 * otherwise zeroed option space, so that two equal sets of options compare
 * equal bytewise whatever bytes the conversion left around them. */
static void
tunnel_canonicalize(struct flow_tnl *tnl)
{
    struct flow_tnl old = *tnl;
    int i;

    memset(&tnl->metadata.opts, 0, sizeof tnl->metadata.opts);
    tnl->metadata.present.map = 0;
    ULLONG_FOR_EACH_1 (i, old.metadata.present.map) {
        const struct mf_field *mf = mf_from_id(MFF_TUN_METADATA0 + i);
        union mf_value value;

        tun_metadata_read(&old, mf, &value);
        tun_metadata_write(tnl, mf, &value);
    }
}

/* Converts the raw Geneve options of 'raw' (the upcall's tunnel) into the
 * tun_metadataN fields of 'dst' (a copy of that tunnel, or of its mask if
 * 'raw' differs from 'dst' as in xlate) with the TLV map 'tab'.  Returns
 * false if the options do not parse, as xlate would report. */
static bool
tunnel_from_udpif(const struct tun_table *tab, const struct flow_tnl *raw,
                  struct flow_tnl *dst)
{
    struct flow_tnl src = *dst;

    if (!tab || tun_metadata_from_geneve_udpif(tab, raw, &src, dst)) {
        return false;
    }
    return true;
}

/* Clears, in 'mask' (in OpenFlow form), the options that it does not
 * match any bit of.  In raw form, xlate matches the header of every option
 * that the packet has; ofproto/trace, which translates in OpenFlow form,
 * shows only the options the pipeline looked at. */
static void
tunnel_mask_prune(struct flow_tnl *mask)
{
    uint64_t map = mask->metadata.present.map;
    int i;

    ULLONG_FOR_EACH_1 (i, map) {
        const struct mf_field *mf = mf_from_id(MFF_TUN_METADATA0 + i);
        union mf_value value;

        tun_metadata_read(mask, mf, &value);
        if (is_all_zeros(value.tun_metadata, mf->n_bytes)) {
            ULLONG_SET0(mask->metadata.present.map, i);
        }
    }
}

struct flow *
upcall_trace_filter_flow(const struct ofproto_dpif *ofproto,
                         const struct flow *upcall_flow,
                         struct flow *xin_flow, struct flow *buf)
{
    if (OVS_LIKELY(!(upcall_flow->tunnel.flags & FLOW_TNL_F_UDPIF))) {
        return xin_flow;
    }
    *buf = *xin_flow;
    return (tunnel_from_udpif(ofproto_get_tun_tab(&ofproto->up),
                              &upcall_flow->tunnel, &buf->tunnel)
            ? buf : xin_flow);
}

const struct ofproto_dpif *
upcall_trace_xlate_ofproto(const struct ofproto_dpif *ofproto,
                           const struct xlate_in *xin)
{
    const struct frozen_state *state = xin->frozen_state;

    if (state && !uuid_equals(&state->ofproto_uuid, &ofproto->uuid)) {
        const struct ofproto_dpif *resumed
            = ofproto_dpif_lookup_by_uuid(&state->ofproto_uuid);

        if (resumed) {
            return resumed;
        }
    }
    return ofproto;
}

/* The TLV map translation uses for 'xin'. */
static const struct tun_table *
xlate_tun_tab(const struct ofproto_dpif *ofproto, const struct xlate_in *xin)
{
    return ofproto_get_tun_tab(&upcall_trace_xlate_ofproto(ofproto, xin)->up);
}

/* Blobs keep Geneve options in the raw form, which does not depend on a TLV
 * map: the initial flow and the megaflow as the datapath gave them, the
 * final flow re-encoded from the tun_metadataN fields translation left (in
 * OpenFlow form, without their map).  They are named by the bridge's TLV
 * map when read (upcall_trace_format_tunnel_blob()). */
const struct flow *
upcall_trace_final_flow(const struct flow *upcall_flow,
                        const struct flow *initial_flow,
                        const struct xlate_in *xin, struct flow *buf)
{
    const struct flow *final = &xin->flow;

    if (final->tunnel.flags & FLOW_TNL_F_UDPIF
        || (!(upcall_flow->tunnel.flags & FLOW_TNL_F_UDPIF)
            && !final->tunnel.metadata.present.map)) {
        return final;
    }

    const struct tun_table *tab = xlate_tun_tab(xin->ofproto, xin);
    *buf = *final;
    buf->tunnel.metadata.tab = tab;
    tunnel_canonicalize(&buf->tunnel);
    if (upcall_flow->tunnel.flags & FLOW_TNL_F_UDPIF) {
        struct flow initial = *initial_flow;

        if (tunnel_from_udpif(tab, &upcall_flow->tunnel, &initial.tunnel)) {
            tunnel_canonicalize(&initial.tunnel);
            if (flow_equal(&initial, buf)) {
                /* Unchanged: the same bytes as the initial flow. */
                return initial_flow;
            }
        }
    }

    struct geneve_opt opts[TLV_TOT_OPT_SIZE / sizeof(struct geneve_opt)];
    bool crit_opt;
    int len = tun_metadata_to_geneve_header(&buf->tunnel, opts, &crit_opt);

    memset(&buf->tunnel.metadata, 0, sizeof buf->tunnel.metadata);
    memcpy(buf->tunnel.metadata.opts.gnv, opts, len);
    buf->tunnel.metadata.present.len = len;
    buf->tunnel.flags |= FLOW_TNL_F_UDPIF;
    return buf;
}

/* Names, in 'flow', the raw Geneve options with TLV map 'tab', and in
 * 'mask' (if nonnull) their mask. */
static void
tunnel_name_options(const struct tun_table *tab, struct flow *flow,
                    struct flow_wildcards *mask)
{
    struct flow_tnl raw = flow->tunnel;

    if (!(raw.flags & FLOW_TNL_F_UDPIF)
        || !tunnel_from_udpif(tab, &raw, &flow->tunnel)) {
        return;
    }
    if (mask) {
        struct flow_tnl *m = &mask->masks.tunnel;

        if ((m->flags & FLOW_TNL_F_UDPIF) && tunnel_from_udpif(tab, &raw, m)) {
            m->metadata.tab = tab;
            tunnel_mask_prune(m);
        } else {
            memset(&m->metadata, 0, sizeof m->metadata);
        }
    }
}

char *
upcall_trace_format_tunnel_blob(enum uptrace_blob kind, const void *data,
                                size_t size, const char *bridge, void *aux)
{
    struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(bridge);
    const struct tun_table *tab
        = ofproto ? ofproto_get_tun_tab(&ofproto->up) : NULL;

    if ((kind == UPTRACE_BLOB_INITIAL_FLOW || kind == UPTRACE_BLOB_FINAL_FLOW)
        && size == sizeof(struct flow)) {
        struct flow flow;

        memcpy(&flow, data, sizeof flow);
        tunnel_name_options(tab, &flow, NULL);
        return upcall_trace_format_blob(kind, &flow, sizeof flow, bridge,
                                        aux);
    } else if (kind == UPTRACE_BLOB_MEGAFLOW
               && size == sizeof(struct upcall_trace_megaflow_blob)) {
        struct upcall_trace_megaflow_blob blob;

        memcpy(&blob, data, sizeof blob);
        tunnel_name_options(tab, &blob.flow, &blob.wc);
        return upcall_trace_format_blob(kind, &blob, sizeof blob, bridge,
                                        aux);
    }
    return upcall_trace_format_blob(kind, data, size, bridge, aux);
}
