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

#ifndef OFPROTO_UPCALL_TRACE_ENGINE_HH
#define OFPROTO_UPCALL_TRACE_ENGINE_HH 1

/* Internal C++ interface between the store of the upcall trace engine
 * (sessions, rounds, reading: see upcall-trace-engine.cc for the map of its
 * files) and its rendering (upcall-trace-engine-render.cc).
 *
 * The store hands the renderer plain copies ("views") taken under its locks;
 * the renderer formats them with no lock held, so that formatting, which
 * calls back into Open vSwitch to print flows and actions, never delays a
 * capture thread. */

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "openvswitch/compiler.h"
#include "upcall-trace.h"

namespace uptrace {

/* One node of a round's translation tree (uptrace_round_add_node()): its
 * text is the next 'text_size' bytes of Round::node_text. */
struct TranslationNode {
    uint8_t type;               /* enum uptrace_node_type. */
    uint8_t pad = 0;
    uint16_t depth;
    uint32_t text_size;
};

/* One round of a trace: what one upcall captured.  Immutable once committed,
 * so that readers and every trace that holds it (one per matching session)
 * may share it without locking. */
struct Round {
    uint64_t seq = 0;           /* Orders the rounds of a trace. */
    std::string bridge;
    std::string upcall_type;
    uint32_t recirc_id = 0;
    uint32_t in_port = 0;
    std::string in_port_name;   /* Empty if unknown. */
    std::string datapath;
    uint32_t pmd_id = UINT32_MAX;
    int64_t monotonic_ms = 0;   /* When captured, for retention. */
    int64_t wall_ms = 0;        /* When captured, for display. */

    /* The blobs, one after the other in 'blob_data' (one allocation for
     * all of them). */
    std::string blob_data;
    std::array<uint32_t, UPTRACE_N_BLOBS> blob_offset{};
    std::array<uint32_t, UPTRACE_N_BLOBS> blob_size{};

    bool blob_cut(enum uptrace_blob which) const
    {
        return blobs_cut & (1u << which);
    }

    std::string_view blob(enum uptrace_blob which) const
    {
        return std::string_view(blob_data).substr(blob_offset[which],
                                                  blob_size[which]);
    }

    /* The translation: a tree, rendered when read, followed by text (all of
     * it for a round filled by uptrace_round_set_translation(), the
     * truncation marker for a truncated tree). */
    std::vector<TranslationNode> nodes;
    std::string node_text;
    std::string translation;
    std::string path;           /* Unused if 'nodes' is nonempty. */
    bool has_xlate_error = false;
    std::string xlate_error;
    bool has_ufid = false;
    std::array<uint8_t, 16> ufid{};
    bool has_install = false;
    bool installed = false;
    std::string install_reason;
    std::string slow_path;      /* ofproto/trace's explanation, or empty. */
    std::string execute_error;  /* Why the datapath failed to execute the
                                 * actions, or empty. */
    /* Cut by max-trace-size: its translation and packet maybe, and the
     * blobs whose bit (1 << enum uptrace_blob) is in 'blobs_cut'. */
    bool truncated = false;
    uint8_t blobs_cut = 0;
    std::string packet;         /* Its first bytes, if a session keeps them. */
    uint64_t packet_len = 0;    /* The packet's length, if 'packet' is kept. */

    /* Bytes this round accounts for: its variable parts plus a fixed
     * overhead for the object itself. */
    uint64_t stored_size() const;
};

using RoundPtr = std::shared_ptr<const Round>;

/* The translation of 'round' as ofproto/trace prints it, and its path for
 * upcall/trace/summary (upcall-trace-translation.cc). */
std::string translation_text(const Round &);
std::string path_text(const Round &);

/* A copy of one stored trace, for reading. */
struct TraceView {
    uint64_t id = 0;
    std::string session;
    std::string bridge;         /* The session's bridge when read. */
    bool partial = false;
    bool truncated = false;
    uint64_t n_rounds_lost = 0; /* Not stored: not even their header fit. */
    std::vector<RoundPtr> rounds;   /* Ordered by 'seq'; never empty. */
};

/* A copy of one session's configuration and status, for reading. */
struct SessionView {
    std::string name;
    std::string bridge;
    bool has_port = false;
    std::string port;
    std::string filter;
    enum uptrace_state state = UPTRACE_STATE_WAITING;
    std::string error;          /* Why 'state' is error or waiting. */

    uint32_t max_traces = 0;
    enum uptrace_mode mode = UPTRACE_MODE_CIRCULAR;
    int64_t retention_ms = 0;
    uint32_t max_rate = 0;
    uint64_t max_trace_size = 0;
    int64_t duration_ms = 0;
    bool enabled = false;

    uint64_t n_matched = 0;
    uint64_t n_traces = 0;
    uint64_t n_traces_total = 0;
    uint64_t n_evicted = 0;
    uint64_t n_expired = 0;
    uint64_t n_rate_limited = 0;
    uint64_t n_truncated = 0;
    uint64_t n_dropped_full = 0;
    uint64_t last_trace_id = 0;
    int64_t last_trace_time = 0;
    uint64_t bytes = 0;
};

/* The blob formatter of the engine's options. */
struct BlobFormatter {
    uptrace_blob_formatter *function = nullptr;
    void *aux = nullptr;

    /* Formats blob 'which' of 'round': through 'function' if there is one
     * and it succeeds, in hexadecimal otherwise. */
    std::string format(enum uptrace_blob which, const Round &round) const;
};

std::string render_show(const std::vector<SessionView> &,
                        enum uptrace_format);
std::string render_list(const std::vector<TraceView> &,
                        const BlobFormatter &, enum uptrace_format);
std::string render_trace(const TraceView &, const BlobFormatter &,
                         enum uptrace_format);
std::string render_summary(const std::vector<TraceView> &,
                           const BlobFormatter &, enum uptrace_format);

/* sprintf() into a std::string. */
std::string string_printf(const char *format, ...) OVS_PRINTF_FORMAT(1, 2);

/* Exposed for tests. */
std::string json_escape(const std::string &);
std::string format_ufid(const std::array<uint8_t, 16> &);

/* Returns datapath 'actions' with every recirculation id replaced by "*",
 * so that paths that differ only by the frozen state they allocated, such
 * as the same pipeline before and after the datapath flows were purged,
 * are one path in upcall/trace/summary. */
std::string without_recirc_ids(const std::string &actions);
std::string format_time_iso8601(int64_t wall_ms);

} /* namespace uptrace */

#endif /* ofproto/upcall-trace-engine.hh */
