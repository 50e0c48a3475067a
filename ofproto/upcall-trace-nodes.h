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

#ifndef UPCALL_TRACE_NODES_H
#define UPCALL_TRACE_NODES_H 1

/* Live upcall tracing: the memory of a traced translation's node tree.
 *
 * Translation tracing builds a tree of "struct oftrace_node", one block per
 * node (oftrace_report()), that live upcall tracing copies into the round
 * and then frees: about 7 nodes per upcall, 14 calls to the allocator.  For
 * the translations that live upcall tracing starts, the nodes come instead
 * from an arena of the thread, reused by its next traced translation: the
 * tree is then released without a walk or a free().  The arena grows when
 * a tree did not fit (its last nodes were malloc()'d).  Other trees
 * (ofproto/trace) are allocated and freed as before.
 *
 * The hooks in ofproto-dpif-trace.c are patches/0012.  Depends only on
 * lib/. */

#include <stdbool.h>
#include <stddef.h>

/* Starts a tree in this thread: until upcall_trace_nodes_end(), nodes come
 * from this thread's arena.  Returns false, and the nodes are malloc()'d as
 * usual, if the arena still holds a tree that was not released. */
bool upcall_trace_nodes_begin(void);

/* Ends the tree that upcall_trace_nodes_begin() started: later nodes are
 * malloc()'d.  The tree's nodes stay valid until it is released. */
void upcall_trace_nodes_end(void);

/* Releases the tree of this thread that upcall_trace_nodes_begin() started,
 * if it returned 'in_arena' true.  Returns true if the caller must still
 * destroy the tree (oftrace_node_list_destroy(), which frees only the nodes
 * that are not in the arena): some node was malloc()'d, or the tree was not
 * in the arena.  Returns false if the caller may simply forget the tree. */
bool upcall_trace_nodes_release(bool in_arena);

/* Hook of oftrace_report(): 'size' bytes for a node, from this thread's
 * arena while a tree is started, otherwise from xmalloc(). */
void *upcall_trace_node_alloc(size_t size);

/* Hook of oftrace_node_destroy(): frees 'node' unless it is in this
 * thread's arena. */
void upcall_trace_node_free(void *node);

#endif /* upcall-trace-nodes.h */
