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

/* Tests ofproto/upcall-trace-nodes.c: a traced translation's nodes come
 * from the thread's arena and are released without a free(); a tree too
 * large for the arena spills to malloc() and makes the next arena larger;
 * nodes outside a started tree, or of a tree started while another is held,
 * are malloc()'d and freed as usual.  Run under the sanitizer build
 * (UPCALL_TRACE_SANITIZE), a node freed twice or leaked fails it. */

#include <config.h>

#include "upcall-trace-nodes.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ovs-thread.h"
#include "util.h"

static int n_failures;

#define CHECK(COND)                                                     \
    do {                                                                \
        if (!(COND)) {                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n",                \
                    __FILE__, __LINE__, #COND);                         \
            n_failures++;                                               \
        }                                                               \
    } while (0)

/* Allocates 'n' nodes of 'size' bytes into 'nodes', writing each whole, as
 * oftrace_report() does with a node and its text. */
static void
alloc_nodes(void **nodes, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        nodes[i] = upcall_trace_node_alloc(size);
        memset(nodes[i], (int) i, size);
        CHECK((uintptr_t) nodes[i] % 8 == 0);
    }
}

/* Whether every node in 'nodes' is distinct and none overlaps another. */
static bool
disjoint(void **nodes, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            uintptr_t a = (uintptr_t) nodes[i], b = (uintptr_t) nodes[j];

            if (a < b + size && b < a + size) {
                return false;
            }
        }
    }
    return true;
}

static void
test_tree_in_arena(void)
{
    void *nodes[7];
    void *first;

    /* A round's tree: all in the arena, released without a destroy. */
    CHECK(upcall_trace_nodes_begin());
    alloc_nodes(nodes, 7, 120);
    CHECK(disjoint(nodes, 7, 120));
    upcall_trace_nodes_end();
    first = nodes[0];
    for (size_t i = 0; i < 7; i++) {
        upcall_trace_node_free(nodes[i]);     /* No-op: in the arena. */
    }
    CHECK(!upcall_trace_nodes_release(true));

    /* The next round reuses the same memory. */
    CHECK(upcall_trace_nodes_begin());
    alloc_nodes(nodes, 1, 120);
    CHECK(nodes[0] == first);
    upcall_trace_nodes_end();
    CHECK(!upcall_trace_nodes_release(true));
}

static void
test_overflow_grows_arena(void)
{
    enum { N = 200, SIZE = 200 };      /* 40 kB: more than the first arena. */
    void **nodes = xmalloc(N * sizeof *nodes);

    CHECK(upcall_trace_nodes_begin());
    alloc_nodes(nodes, N, SIZE);
    CHECK(disjoint(nodes, N, SIZE));
    upcall_trace_nodes_end();
    /* Some nodes were malloc()'d: the caller destroys the tree, freeing
     * those, skipping the arena's (the sanitizer would catch either
     * mistake). */
    CHECK(upcall_trace_nodes_release(true));
    for (size_t i = 0; i < N; i++) {
        upcall_trace_node_free(nodes[i]);
    }

    /* The next tree of that size fits. */
    CHECK(upcall_trace_nodes_begin());
    alloc_nodes(nodes, N, SIZE);
    upcall_trace_nodes_end();
    CHECK(!upcall_trace_nodes_release(true));
    free(nodes);
}

static void
test_outside_a_tree(void)
{
    void *node;

    /* ofproto/trace: no tree started, malloc()'d and freed. */
    alloc_nodes(&node, 1, 64);
    upcall_trace_node_free(node);

    /* After upcall_trace_nodes_end(), too. */
    CHECK(upcall_trace_nodes_begin());
    upcall_trace_nodes_end();
    alloc_nodes(&node, 1, 64);
    upcall_trace_node_free(node);
    CHECK(!upcall_trace_nodes_release(true));
}

static void
test_tree_while_another_is_held(void)
{
    void *held[3], *other[3];

    CHECK(upcall_trace_nodes_begin());
    alloc_nodes(held, 3, 100);
    upcall_trace_nodes_end();

    /* A second tree before the first is released: kept out of the arena,
     * so that it cannot overwrite the first. */
    CHECK(!upcall_trace_nodes_begin());
    alloc_nodes(other, 3, 100);
    upcall_trace_nodes_end();
    for (size_t i = 0; i < 3; i++) {
        CHECK(((unsigned char *) held[i])[0] == i);
    }
    CHECK(upcall_trace_nodes_release(false));
    for (size_t i = 0; i < 3; i++) {
        upcall_trace_node_free(other[i]);
    }

    CHECK(!upcall_trace_nodes_release(true));
}

static void *
other_thread(void *arg OVS_UNUSED)
{
    /* Each thread has its own arena. */
    test_tree_in_arena();
    return NULL;
}

int
main(void)
{
    test_tree_in_arena();
    test_overflow_grows_arena();
    test_outside_a_tree();
    test_tree_while_another_is_held();
    xpthread_join(ovs_thread_create("nodes-test", other_thread, NULL), NULL);

    if (n_failures) {
        fprintf(stderr, "upcall-trace-nodes-test: %d checks failed\n",
                n_failures);
        return 1;
    }
    printf("upcall-trace-nodes-test: all checks passed\n");
    return 0;
}
