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

#include "upcall-trace-nodes.h"

#include <stdint.h>
#include <stdlib.h>

#include "ovs-thread.h"
#include "util.h"

/* A thread's arena.  Only its thread uses it: no lock. */
struct node_arena {
    bool filling;           /* Between begin and end: nodes come from here. */
    bool holding;           /* 'data' holds a tree not yet released. */
    bool overflowed;        /* Some node of that tree was malloc()'d. */
    size_t used;            /* Bytes of 'data' given out. */
    size_t spilled;         /* Bytes of the tree malloc()'d instead. */
    size_t size;            /* Bytes in 'data'. */
    size_t wanted;          /* Bytes the largest tree needed. */
    char *data;
};

/* Enough for the trees of most pipelines (7 nodes of about 100 bytes in the
 * RFC's conntrack pipeline); a larger tree makes the arena grow. */
#define NODE_ARENA_MIN_SIZE 4096

/* Nodes hold pointers and lists. */
#define NODE_ALIGN 16

/* Found through a thread-local pointer, a few instructions where
 * ovsthread_getspecific() takes tens; freed by the key's destructor when
 * the thread exits. */
static ovsthread_key_t arena_key;
DEFINE_STATIC_PER_THREAD_DATA(struct node_arena *, arena_ptr, NULL);

static void
arena_destroy(void *arena_)
{
    struct node_arena *arena = arena_;

    free(arena->data);
    free(arena);
}

static struct node_arena *
arena_get(void)
{
    struct node_arena **arenap = arena_ptr_get();

    if (OVS_UNLIKELY(!*arenap)) {
        static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

        if (ovsthread_once_start(&once)) {
            ovsthread_key_create(&arena_key, arena_destroy);
            ovsthread_once_done(&once);
        }
        *arenap = xzalloc(sizeof **arenap);
        ovsthread_setspecific(arena_key, *arenap);
    }
    return *arenap;
}

bool
upcall_trace_nodes_begin(void)
{
    struct node_arena *arena = arena_get();

    if (arena->holding) {
        return false;
    }
    if (arena->wanted > arena->size || !arena->data) {
        size_t size = MAX(NODE_ARENA_MIN_SIZE,
                          ROUND_UP(arena->wanted, NODE_ARENA_MIN_SIZE));

        free(arena->data);
        arena->data = xmalloc(size);
        arena->size = size;
    }
    arena->used = 0;
    arena->spilled = 0;
    arena->overflowed = false;
    arena->filling = true;
    arena->holding = true;
    return true;
}

void
upcall_trace_nodes_end(void)
{
    struct node_arena *arena = *arena_ptr_get();

    if (arena) {
        arena->filling = false;
    }
}

bool
upcall_trace_nodes_release(bool in_arena)
{
    struct node_arena *arena = *arena_ptr_get();

    if (!in_arena || !arena) {
        return true;
    }
    arena->filling = false;
    arena->holding = false;
    return arena->overflowed;
}

void *
upcall_trace_node_alloc(size_t size)
{
    struct node_arena *arena = *arena_ptr_get();

    if (arena && arena->filling) {
        size_t rounded = ROUND_UP(size, NODE_ALIGN);

        if (rounded <= arena->size - arena->used) {
            void *p = arena->data + arena->used;

            arena->used += rounded;
            return p;
        }
        /* Remember what this tree needed, for the next one. */
        arena->overflowed = true;
        arena->spilled += rounded;
        arena->wanted = MAX(arena->wanted, arena->used + arena->spilled);
    }
    return xmalloc(size);
}

void
upcall_trace_node_free(void *node)
{
    struct node_arena *arena = *arena_ptr_get();

    if (arena && arena->data
        && (uintptr_t) node - (uintptr_t) arena->data < arena->size) {
        return;
    }
    free(node);
}
