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

#include "upcall-trace.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "upcall-trace-engine.hh"
#include "upcall-trace-engine-util.hh"
#include "upcall-trace-expectations.hh"
#include "upcall-trace-registry.hh"
#include "upcall-trace-session.hh"

/* Capturing rounds: struct uptrace_round is one round being filled by a
 * capture thread (an upcall handler or a PMD thread), plus the (session,
 * trace id) pairs it will be stored in.  A round is begun for the sessions
 * an upcall matched, or continued from a recirculation expectation, and
 * committed, immutable from then on, into every trace it belongs to. */

using namespace uptrace;

/* One round being captured. */
struct uptrace_round {
    struct Target {
        SessionPtr session;
        uint64_t trace_id;
        bool started;               /* Begun by this round, not continued. */
    };

    explicit uptrace_round(std::shared_ptr<uptrace_engine> engine_)
        : engine(std::move(engine_)),
          stored(new_stored_round(engine->shared())), round(*stored) {}

    std::shared_ptr<uptrace_engine> engine;
    std::vector<Target> targets;
    /* The round, filled where it will be stored: committing it moves
     * nothing. */
    std::shared_ptr<StoredRound> stored;
    Round &round;
};

namespace uptrace {
namespace {

void
fill_round_info(Round *round, const struct uptrace_round_info *info)
{
    if (!info) {
        return;
    }
    round->upcall_type = nonnull(info->upcall_type);
    round->recirc_id = info->recirc_id;
    round->in_port = info->in_port;
    round->in_port_name = nonnull(info->in_port_name);
    round->datapath = nonnull(info->datapath);
    round->pmd_id = info->pmd_id;
    round->bridge = nonnull(info->bridge);
}

std::unique_ptr<uptrace_round>
new_capture(uptrace_engine *engine, const struct uptrace_round_info *info,
            int64_t now_ms)
{
    auto capture = std::make_unique<uptrace_round>(
        engine->shared_from_this());
    capture->round.seq = engine->shared()->next_round_seq.fetch_add(
        1, std::memory_order_relaxed);
    capture->round.monotonic_ms = now_ms;
    capture->round.wall_ms = engine->clock().wall_ms();
    fill_round_info(&capture->round, info);
    return capture;
}

/* The flow log follows a flow only as long as a trace that installed it
 * is stored: a session that evicts a trace tells it. */
static void
forget_evicted(uptrace_engine *engine, const uptrace_session *session,
               const uptrace_session::TraceFlows &evicted)
{
    if (!evicted.empty()) {
        engine->flows().forget_traces(session, evicted);
    }
}

std::unique_ptr<uptrace_round>
capture_begin(uptrace_engine *engine, uptrace_session *const sessions[],
              size_t n, const struct uptrace_round_info *info, bool partial)
{
    int64_t now = engine->clock().monotonic_ms();
    int64_t wall = engine->clock().wall_ms();

    std::vector<uptrace_round::Target> targets;
    std::string bridge;
    for (size_t i = 0; i < n; i++) {
        if (!sessions[i]) {
            continue;
        }
        std::string session_bridge;
        uptrace_session::TraceFlows evicted;
        std::optional<uint64_t> id = sessions[i]->admit_new_trace(
            partial, now, wall, &session_bridge, &evicted);
        forget_evicted(engine, sessions[i], evicted);
        if (id) {
            targets.push_back({sessions[i]->shared_from_this(), *id, true});
            if (bridge.empty()) {
                bridge = std::move(session_bridge);
            }
        }
    }
    if (targets.empty()) {
        return nullptr;
    }

    auto capture = new_capture(engine, info, now);
    capture->targets = std::move(targets);
    if (capture->round.bridge.empty()) {
        capture->round.bridge = std::move(bridge);
    }
    return capture;
}

/* Starts a trace, at the round of 'capture', in each of 'sessions' that
 * admits it and is not already one of the capture's targets. */
void
capture_add_sessions(uptrace_round *capture,
                     uptrace_session *const sessions[], size_t n,
                     bool partial)
{
    for (size_t i = 0; i < n; i++) {
        uptrace_session *session = sessions[i];
        bool known = !session;

        for (const auto &target : capture->targets) {
            known = known || target.session.get() == session;
        }
        if (known) {
            continue;
        }

        std::string bridge;
        uptrace_session::TraceFlows evicted;
        std::optional<uint64_t> id = session->admit_new_trace(
            partial, capture->round.monotonic_ms, capture->round.wall_ms,
            &bridge, &evicted);
        forget_evicted(capture->engine.get(), session, evicted);
        if (id) {
            capture->targets.push_back({session->shared_from_this(), *id,
                                        true});
        }
    }
}

std::unique_ptr<uptrace_round>
capture_continue(uptrace_engine *engine, uint32_t recirc_id,
                 const struct uptrace_fingerprint &fp,
                 const struct uptrace_round_info *info)
{
    int64_t now = engine->clock().monotonic_ms();
    std::vector<TraceRef> refs;
    if (!engine->expectations().claim(recirc_id, fp, now, &refs)) {
        return nullptr;
    }

    std::vector<uptrace_round::Target> targets;
    std::string bridge;
    for (const TraceRef &ref : refs) {
        SessionPtr session = ref.session.lock();
        std::string session_bridge;
        if (session
            && session->may_continue(ref.trace_id, now, &session_bridge)) {
            targets.push_back({std::move(session), ref.trace_id, false});
            if (bridge.empty()) {
                bridge = std::move(session_bridge);
            }
        }
    }
    if (targets.empty()) {
        return nullptr;
    }

    auto capture = new_capture(engine, info, now);
    capture->targets = std::move(targets);
    if (capture->round.bridge.empty()) {
        capture->round.bridge = std::move(bridge);
    }
    return capture;
}

void
capture_commit(std::unique_ptr<uptrace_round> capture)
{
    Round &filled = capture->round;
    /* A reallocation costs as much as a few hundred bytes of slack, which
     * memory accounting counts anyway. */
    if (filled.nodes.capacity() > filled.nodes.size() + 32) {
        filled.nodes.shrink_to_fit();
    }
    if (filled.node_text.capacity() > filled.node_text.size() + 512) {
        filled.node_text.shrink_to_fit();
    }
    if (filled.blob_data.capacity() > filled.blob_data.size() + 512) {
        filled.blob_data.shrink_to_fit();
    }
    RoundPtr round = commit_stored_round(std::move(capture->stored));
    for (const auto &target : capture->targets) {
        target.session->store_round(target.trace_id, round);
    }
    if (round->has_ufid && round->installed) {
        FlowTraces traces;
        for (const auto &target : capture->targets) {
            traces.push_back({target.trace_id, target.session.get()});
        }
        capture->engine->flows().installed(round->ufid, std::move(traces),
                                           round->wall_ms);
    }
}

void
capture_abort(std::unique_ptr<uptrace_round> capture)
{
    for (const auto &target : capture->targets) {
        if (target.started) {
            target.session->forget_empty_trace(target.trace_id);
        }
    }
}

} /* anonymous namespace */
} /* namespace uptrace */

/* The C interface. */

extern "C" {

struct uptrace_round *
uptrace_round_begin(struct uptrace_engine *engine,
                    struct uptrace_session *const sessions[], size_t n,
                    const struct uptrace_round_info *info, bool partial)
{
    return call_from_c<uptrace_round *>(nullptr, [&] {
        return capture_begin(engine, sessions, n, info, partial).release();
    });
}

size_t
uptrace_sessions_drop_closed(struct uptrace_engine *engine,
                             struct uptrace_session *sessions[], size_t n)
{
    const EngineShared &shared = *engine->shared();
    int64_t now_ms = -1;
    size_t n_open = 0;

    for (size_t i = 0; i < n; i++) {
        if (sessions[i] && !sessions[i]->is_closed(shared, &now_ms)) {
            sessions[n_open++] = sessions[i];
        }
    }
    return n_open;
}

void
uptrace_round_add_sessions(struct uptrace_round *capture,
                           struct uptrace_session *const sessions[],
                           size_t n, bool partial)
{
    call_from_c_void([&] {
        capture_add_sessions(capture, sessions, n, partial);
    });
}

bool
uptrace_engine_expects(const struct uptrace_engine *engine,
                       uint32_t recirc_id)
{
    return engine->expectations().expects(recirc_id);
}

bool
uptrace_engine_expects_tuple(const struct uptrace_engine *engine,
                             uint32_t recirc_id,
                             const struct uptrace_fingerprint *fp)
{
    return call_from_c<bool>(false, [&] {
        return engine->expectations().expects_tuple(recirc_id, fp->tuple,
                                                    fp->nat);
    });
}

struct uptrace_round *
uptrace_round_continue(struct uptrace_engine *engine, uint32_t recirc_id,
                       const struct uptrace_fingerprint *fp,
                       const struct uptrace_round_info *info)
{
    return call_from_c<uptrace_round *>(nullptr, [&] {
        return capture_continue(engine, recirc_id, *fp, info).release();
    });
}

void
uptrace_round_reserve(struct uptrace_round *capture, size_t n_nodes,
                      size_t node_text, size_t blob_bytes)
{
    call_from_c_void([&] {
        /* Only ever growing: std::string::reserve() may shrink. */
        Round &round = capture->round;
        round.nodes.reserve(n_nodes);
        if (round.node_text.capacity() < node_text) {
            round.node_text.reserve(node_text);
        }
        if (round.blob_data.capacity() < blob_bytes) {
            round.blob_data.reserve(blob_bytes);
        }
    });
}

void
uptrace_round_set_blob(struct uptrace_round *capture,
                       enum uptrace_blob which, const void *data,
                       size_t size)
{
    if (static_cast<int>(which) < 0 || which >= UPTRACE_N_BLOBS) {
        return;
    }
    call_from_c_void([&] {
        Round &round = capture->round;
        if (round.blob_data.empty() && round.blob_data.capacity() < 256) {
            /* Room for two flows, a megaflow and actions: one allocation,
             * unless uptrace_round_reserve() made room.  The surplus is
             * given back at commit. */
            round.blob_data.reserve(3072);
        }
        size = data ? std::min<size_t>(size, UINT32_MAX) : 0;
        round.blob_offset[which] = round.blob_data.size();
        round.blob_size[which] = size;
        round.blob_data.append(static_cast<const char *>(data), size);
    });
}

void
uptrace_round_set_translation(struct uptrace_round *capture,
                              const char *text)
{
    call_from_c_void([&] { capture->round.translation = nonnull(text); });
}

void
uptrace_round_set_path(struct uptrace_round *capture, const char *path)
{
    call_from_c_void([&] { capture->round.path = nonnull(path); });
}

void
uptrace_round_add_node(struct uptrace_round *capture,
                       enum uptrace_node_type type, unsigned int depth,
                       const char *text, size_t size)
{
    call_from_c_void([&] {
        Round &round = capture->round;
        if (!round.nodes.capacity()) {
            /* Enough for most translations, unless uptrace_round_reserve()
             * made room: no reallocation as they grow.  The surplus is given
             * back at commit. */
            round.nodes.reserve(16);
            round.node_text.reserve(1024);
        }
        TranslationNode node;
        node.type = static_cast<uint8_t>(type);
        node.depth = static_cast<uint16_t>(std::min(depth, 0xffffu));
        node.text_size = static_cast<uint32_t>(
            std::min<size_t>(size, UINT32_MAX));
        round.nodes.push_back(node);
        round.node_text.append(text, node.text_size);
    });
}

void
uptrace_round_add_nodes(struct uptrace_round *capture,
                        const struct uptrace_node *nodes, size_t n)
{
    call_from_c_void([&] {
        Round &round = capture->round;
        size_t text_size = 0;
        for (size_t i = 0; i < n; i++) {
            text_size += std::min<size_t>(nodes[i].size, UINT32_MAX);
        }
        round.nodes.reserve(round.nodes.size() + n);
        size_t offset = round.node_text.size();
        if (round.node_text.capacity() < offset + text_size) {
            round.node_text.reserve(offset + text_size);
        }
        round.node_text.resize(offset + text_size);
        for (size_t i = 0; i < n; i++) {
            TranslationNode node;
            node.type = static_cast<uint8_t>(nodes[i].type);
            node.depth = static_cast<uint16_t>(
                std::min(nodes[i].depth, 0xffffu));
            node.text_size = static_cast<uint32_t>(
                std::min<size_t>(nodes[i].size, UINT32_MAX));
            round.nodes.push_back(node);
            memcpy(&round.node_text[offset], nodes[i].text, node.text_size);
            offset += node.text_size;
        }
    });
}

void
uptrace_round_set_xlate_error(struct uptrace_round *capture,
                              const char *error)
{
    call_from_c_void([&] {
        capture->round.has_xlate_error = error != nullptr;
        capture->round.xlate_error = nonnull(error);
    });
}

uint32_t
uptrace_round_packet_bytes(const struct uptrace_round *capture)
{
    return call_from_c(0u, [&] {
        uint32_t n = 0;
        for (const auto &target : capture->targets) {
            n = std::max(n, target.session->packet_bytes());
        }
        return n;
    });
}

void
uptrace_round_set_packet(struct uptrace_round *capture, const void *data,
                         size_t size, size_t orig_len)
{
    call_from_c_void([&] {
        capture->round.packet.assign(static_cast<const char *>(data), size);
        capture->round.packet_len = orig_len;
    });
}

void
uptrace_round_set_ufid(struct uptrace_round *capture,
                       const uint8_t ufid[16])
{
    capture->round.has_ufid = ufid != nullptr;
    if (ufid) {
        std::copy(ufid, ufid + 16, capture->round.ufid.begin());
    }
}

void
uptrace_round_set_install(struct uptrace_round *capture, bool installed,
                          const char *reason)
{
    call_from_c_void([&] {
        capture->round.has_install = true;
        capture->round.installed = installed;
        capture->round.install_reason = nonnull(reason);
    });
}

void
uptrace_round_set_execute_error(struct uptrace_round *capture,
                                const char *error)
{
    call_from_c_void([&] {
        capture->round.execute_error = nonnull(error);
    });
}

void
uptrace_round_set_slow_path(struct uptrace_round *capture,
                            const char *explanation)
{
    call_from_c_void([&] {
        capture->round.slow_path = nonnull(explanation);
    });
}

void
uptrace_round_expect_recirc(struct uptrace_round *capture,
                            uint32_t recirc_id,
                            const struct uptrace_fingerprint *fp)
{
    call_from_c_void([&] {
        std::vector<TraceRef> refs;
        refs.reserve(capture->targets.size());
        for (const auto &target : capture->targets) {
            refs.push_back({target.session, target.trace_id});
        }
        capture->engine->expectations().add(
            recirc_id, *fp, std::move(refs),
            capture->engine->clock().monotonic_ms());
    });
}

void
uptrace_round_commit(struct uptrace_round *capture)
{
    if (!capture) {
        return;
    }
    std::unique_ptr<uptrace_round> owned(capture);
    call_from_c_void([&] { capture_commit(std::move(owned)); });
}

void
uptrace_round_abort(struct uptrace_round *capture)
{
    if (!capture) {
        return;
    }
    std::unique_ptr<uptrace_round> owned(capture);
    call_from_c_void([&] { capture_abort(std::move(owned)); });
}

} /* extern "C" */
