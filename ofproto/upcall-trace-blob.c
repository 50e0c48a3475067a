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

#include "upcall-trace-blob.h"

#include <string.h>

#include "odp-util.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofpbuf.h"
#include "util.h"

/* Ports are given as numbers, as ofproto/trace does by default, so that the
 * flows agree with the translation text, which is made in capture threads
 * where port names cannot be read safely. */
char *
upcall_trace_format_blob(enum uptrace_blob kind, const void *data,
                         size_t size, const char *bridge OVS_UNUSED,
                         void *aux OVS_UNUSED)
{
    struct ds s = DS_EMPTY_INITIALIZER;

    switch (kind) {
    case UPTRACE_BLOB_INITIAL_FLOW:
    case UPTRACE_BLOB_FINAL_FLOW: {
        struct flow flow;

        if (size != sizeof flow) {
            return NULL;
        }
        memcpy(&flow, data, sizeof flow);
        flow_format(&s, &flow, NULL);
        break;
    }

    case UPTRACE_BLOB_MEGAFLOW: {
        struct upcall_trace_megaflow_blob blob;
        struct match match;

        if (size != sizeof blob) {
            return NULL;
        }
        memcpy(&blob, data, sizeof blob);
        match_init(&match, &blob.flow, &blob.wc);
        match_format(&match, NULL, &s, OFP_DEFAULT_PRIORITY);
        break;
    }

    case UPTRACE_BLOB_ODP_ACTIONS: {
        /* Netlink attributes must be 4-byte aligned. */
        uint64_t stub[1024 / 8];
        struct ofpbuf buf;

        ofpbuf_use_stub(&buf, stub, sizeof stub);
        ofpbuf_put(&buf, data, size);
        format_odp_actions(&s, buf.data, buf.size, NULL);
        ofpbuf_uninit(&buf);
        break;
    }

    case UPTRACE_N_BLOBS:
    default:
        return NULL;
    }
    return ds_steal_cstr(&s);
}
