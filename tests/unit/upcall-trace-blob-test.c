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

/* Tests ofproto/upcall-trace-blob.c: each blob, laid out as the shim stores
 * it, reads back as the text of ofproto/trace, and a blob of the wrong size
 * is refused rather than misread.  Exits with status 0 on success, 1 on
 * failure. */

#include <config.h>

#include "upcall-trace-blob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "odp-util.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofpbuf.h"
#include "util.h"

static int n_failures;

/* Checks that formatting blob 'kind' gives 'expected' (NULL: no text). */
static void
check_format(int line, enum uptrace_blob kind, const void *data, size_t size,
             const char *expected)
{
    char *s = upcall_trace_format_blob(kind, data, size, "br0", NULL);

    if (expected ? !s || strcmp(s, expected) : s != NULL) {
        fprintf(stderr, "%s:%d: blob %d formatted as \"%s\", "
                "expected \"%s\"\n", __FILE__, line, (int) kind,
                s ? s : "(null)", expected ? expected : "(null)");
        n_failures++;
    }
    free(s);
}
#define CHECK_FORMAT(KIND, DATA, SIZE, EXPECTED) \
    check_format(__LINE__, KIND, DATA, SIZE, EXPECTED)

int
main(void)
{
    struct upcall_trace_megaflow_blob megaflow;
    struct flow_wildcards wc;
    struct ofpbuf actions;
    struct match match;
    struct flow flow;
    char *error;

    error = parse_ofp_exact_flow(&flow, &wc, NULL,
                                 "in_port=1,udp,nw_src=10.0.0.1,"
                                 "nw_dst=10.0.0.2,udp_src=5000,udp_dst=53",
                                 NULL);
    if (error) {
        ovs_fatal(0, "flow: %s", error);
    }

    /* Flows: a "struct flow", ports as numbers. */
    struct ds expected = DS_EMPTY_INITIALIZER;
    flow_format(&expected, &flow, NULL);
    CHECK_FORMAT(UPTRACE_BLOB_INITIAL_FLOW, &flow, sizeof flow,
                 ds_cstr(&expected));
    CHECK_FORMAT(UPTRACE_BLOB_FINAL_FLOW, &flow, sizeof flow,
                 ds_cstr(&expected));
    CHECK_FORMAT(UPTRACE_BLOB_FINAL_FLOW, &flow, sizeof flow - 1, NULL);
    if (!strstr(ds_cstr(&expected), "nw_src=10.0.0.1")) {
        fprintf(stderr, "flow_format() gave \"%s\"\n", ds_cstr(&expected));
        n_failures++;
    }
    ds_destroy(&expected);

    /* The megaflow: a flow and its wildcards. */
    megaflow.flow = flow;
    flow_wildcards_init_catchall(&megaflow.wc);
    WC_MASK_FIELD(&megaflow.wc, in_port);
    WC_MASK_FIELD(&megaflow.wc, dl_type);
    WC_MASK_FIELD(&megaflow.wc, nw_proto);
    WC_MASK_FIELD(&megaflow.wc, nw_src);
    CHECK_FORMAT(UPTRACE_BLOB_MEGAFLOW, &megaflow, sizeof megaflow,
                 "udp,in_port=1,nw_src=10.0.0.1");
    /* A "struct match" is not the layout of the megaflow blob. */
    match_init(&match, &megaflow.flow, &megaflow.wc);
    CHECK_FORMAT(UPTRACE_BLOB_MEGAFLOW, &match, sizeof match, NULL);

    /* Datapath actions, from an unaligned copy. */
    ofpbuf_init(&actions, 64);
    if (odp_actions_from_string("ct(zone=1),recirc(1)", NULL, &actions)) {
        ovs_fatal(0, "datapath actions do not parse");
    }
    char *unaligned = xmalloc(actions.size + 1);
    memcpy(unaligned + 1, actions.data, actions.size);
    CHECK_FORMAT(UPTRACE_BLOB_ODP_ACTIONS, unaligned + 1, actions.size,
                 "ct(zone=1),recirc(0x1)");
    CHECK_FORMAT(UPTRACE_BLOB_ODP_ACTIONS, unaligned, 0, "drop");
    free(unaligned);
    ofpbuf_uninit(&actions);

    CHECK_FORMAT(UPTRACE_N_BLOBS, &flow, sizeof flow, NULL);

    if (n_failures) {
        fprintf(stderr, "%d checks failed\n", n_failures);
        return 1;
    }
    printf("upcall-trace-blob-test: all checks passed\n");
    return 0;
}
