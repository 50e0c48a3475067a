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

#ifndef UPCALL_TRACE_BLOB_H
#define UPCALL_TRACE_BLOB_H 1

/* Live upcall tracing: what the shim stores in a round's blobs, and how they
 * read back as text.
 *
 * The engine keeps a round's flows, megaflow and datapath actions as opaque
 * bytes (enum uptrace_blob) and formats them only when a trace is read,
 * through the formatter given at engine creation.  The layout of each blob
 * and the formatter that reads it are defined together here, so that they
 * cannot disagree:
 *
 *   UPTRACE_BLOB_INITIAL_FLOW,   a "struct flow".
 *   UPTRACE_BLOB_FINAL_FLOW
 *   UPTRACE_BLOB_MEGAFLOW        a "struct upcall_trace_megaflow_blob".
 *   UPTRACE_BLOB_ODP_ACTIONS     datapath actions, as netlink attributes.
 *
 * This module depends only on lib/ and the engine's header, so that the
 * micro-benchmarks (tests/bench/) render with this very code. */

#include <stddef.h>
#include "flow.h"
#include "upcall-trace.h"

/* The megaflow of a round, as stored: a flow and its wildcards.  Not a
 * "struct match", whose tunnel metadata allocation would more than double
 * the size of every stored round. */
struct upcall_trace_megaflow_blob {
    struct flow flow;
    struct flow_wildcards wc;
};

/* An uptrace_blob_formatter for the blobs above: returns the malloc()'d text
 * of blob 'kind' ('data', 'size' bytes), or NULL if 'size' is not that of
 * the blob's layout.  'bridge' and 'aux' are not used. */
char *upcall_trace_format_blob(enum uptrace_blob kind, const void *data,
                               size_t size, const char *bridge, void *aux);

#endif /* upcall-trace-blob.h */
