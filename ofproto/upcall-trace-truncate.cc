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

#include "upcall-trace-session.hh"

#include <inttypes.h>

#include <algorithm>

/* Truncation: what a round keeps of itself when it does not fit whole in
 * what options:max-trace-size leaves of its trace. */

namespace uptrace {
namespace {

/* A string or vector of 'n' bytes takes at most 'n + TRUNCATE_SLACK'
 * bytes. */
constexpr uint64_t TRUNCATE_SLACK = 24;

/* Cuts into 'copy' the translation of 'round' so that it takes at most
 * 'room' bytes: the longest prefix of whole nodes, or of whole lines for a
 * round captured as text, followed by 'marker'. */
void
cut_translation(const Round &round, uint64_t room, const std::string &marker,
                Round *copy)
{
    if (!round.nodes.empty()) {
        /* The nodes come before the text when rendered. */
        size_t n = 0, text_size = 0;
        for (const TranslationNode &node : round.nodes) {
            uint64_t need = ((n + 1) * sizeof(TranslationNode) + text_size
                             + node.text_size + 2 * TRUNCATE_SLACK);
            if (need > room) {
                break;
            }
            n++;
            text_size += node.text_size;
        }
        copy->nodes.assign(round.nodes.begin(), round.nodes.begin() + n);
        copy->node_text.assign(round.node_text, 0, text_size);
        copy->translation = marker;
    } else {
        size_t keep = 0;
        if (room > 0 && !round.translation.empty()) {
            size_t limit = std::min<uint64_t>(room,
                                              round.translation.size());
            size_t newline = round.translation.rfind('\n', limit - 1);
            keep = newline == std::string::npos ? 0 : newline + 1;
        }
        copy->translation = round.translation.substr(0, keep) + marker;
        copy->translation.shrink_to_fit();
    }
}

/* Keeps in 'copy' only the blobs of 'round' that fit in 'budget', most
 * useful first, and marks the others cut. */
void
cut_blobs(const Round &round, uint64_t budget, Round *copy)
{
    static const enum uptrace_blob order[] = {
        UPTRACE_BLOB_INITIAL_FLOW, UPTRACE_BLOB_ODP_ACTIONS,
        UPTRACE_BLOB_MEGAFLOW, UPTRACE_BLOB_FINAL_FLOW,
    };

    std::string().swap(copy->blob_data);
    copy->blob_offset.fill(0);
    copy->blob_size.fill(0);
    const uint64_t base = copy->stored_size();
    std::string data;
    for (enum uptrace_blob which : order) {
        std::string_view blob = round.blob(which);
        if (blob.empty()) {
            continue;
        }
        uint64_t n = data.size() + blob.size();
        if (base + malloc_size(n + 1) + TRUNCATE_SLACK <= budget) {
            copy->blob_offset[which] = data.size();
            copy->blob_size[which] = blob.size();
            data.append(blob);
        } else {
            copy->blobs_cut |= 1u << which;
        }
    }
    copy->blob_data = std::move(data);
    copy->blob_data.shrink_to_fit();
}

} /* anonymous namespace */

RoundPtr
truncate_round(const Round &round, uint64_t budget, uint64_t max_trace_size,
               bool first, const std::shared_ptr<EngineShared> &shared)
{
    const std::string marker = string_printf(
        "[trace truncated: max-trace-size %" PRIu64 " bytes reached]\n",
        max_trace_size);

    /* What the round costs without its translation and packet. */
    Round copy(round);
    copy.truncated = true;
    std::vector<TranslationNode>().swap(copy.nodes);
    std::string().swap(copy.node_text);
    std::string().swap(copy.translation);
    std::string().swap(copy.packet);
    const uint64_t fixed = copy.stored_size();

    if (budget >= fixed + marker.size() + TRUNCATE_SLACK) {
        uint64_t room = budget - fixed - marker.size() - TRUNCATE_SLACK;
        cut_translation(round, room, marker, &copy);

        /* What is left goes to the packet's first bytes: what the pipeline
         * did matters more than the bytes it did it to. */
        uint64_t used = copy.stored_size();
        if (!round.packet.empty() && used + 2 * TRUNCATE_SLACK < budget) {
            size_t n = std::min<uint64_t>(round.packet.size(),
                                          budget - used
                                          - 2 * TRUNCATE_SLACK);
            copy.packet.assign(round.packet, 0, n);
            copy.packet.shrink_to_fit();
        }
        if (copy.stored_size() <= budget) {
            return make_stored_round(std::move(copy), shared);
        }
    }

    /* Not even the flows fit, or the allocator rounded more than the
     * slack: the marker and the blobs that fit. */
    std::vector<TranslationNode>().swap(copy.nodes);
    std::string().swap(copy.node_text);
    std::string().swap(copy.packet);
    copy.translation = marker;
    copy.translation.shrink_to_fit();
    cut_blobs(round, budget, &copy);
    if (copy.stored_size() > budget && !first) {
        return nullptr;
    }
    return make_stored_round(std::move(copy), shared);
}

} /* namespace uptrace */
