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

#ifndef OFPROTO_UPCALL_TRACE_ENGINE_RENDER_HH
#define OFPROTO_UPCALL_TRACE_ENGINE_RENDER_HH 1

/* What the text (upcall-trace-engine-render.cc) and JSON
 * (upcall-trace-engine-render-json.cc) renderings of the reading functions
 * share.  Private to those two files. */

#include <string>
#include <utility>
#include <vector>

#include "upcall-trace-engine.hh"

namespace uptrace {
namespace render {

/* What a round cut by max-trace-size shows instead of a blob it could not
 * keep (null in JSON). */
extern const char NOT_KEPT[];

/* 'data' in hexadecimal: how a blob shows without a formatter. */
std::string hex(const std::string &data);

/* "HH:MM:SS.mmm", UTC. */
std::string format_time_of_day(int64_t wall_ms);

/* "NAME(N)", or "N" if the port had no name. */
std::string format_in_port(const Round &round);

/* Blob 'which' of 'round' formatted, or NOT_KEPT if max-trace-size cut it. */
std::string format_kept(const BlobFormatter &formatter,
                        enum uptrace_blob which, const Round &round);

/* A round's datapath actions as shown ("drop" if none), and whether they
 * drop: all that upcall/trace/list and summary show of a round besides its
 * first flow, so that they format nothing else. */
struct FormattedActions {
    FormattedActions(const Round &round, const BlobFormatter &formatter)
        : cut(round.blob_cut(UPTRACE_BLOB_ODP_ACTIONS))
    {
        if (cut) {
            actions = NOT_KEPT;
            drop = false;
            return;
        } else if (round.blob(UPTRACE_BLOB_ODP_ACTIONS).empty()) {
            actions = "drop";
        } else {
            actions = formatter.format(UPTRACE_BLOB_ODP_ACTIONS, round);
        }
        drop = actions.empty() || actions == "drop";
        if (drop) {
            actions = "drop";
        }
    }

    bool cut;                   /* Not kept, for max-trace-size. */
    std::string actions;
    bool drop;
};

/* What a round's formatted blobs look like, computed once per round. */
struct FormattedRound : FormattedActions {
    FormattedRound(const Round &round, const BlobFormatter &formatter)
        : FormattedActions(round, formatter),
          flow(format_kept(formatter, UPTRACE_BLOB_INITIAL_FLOW, round)),
          final_flow(format_kept(formatter, UPTRACE_BLOB_FINAL_FLOW, round)),
          final_flow_unchanged(!round.blobs_cut
                               && (round.blob(UPTRACE_BLOB_FINAL_FLOW)
                                   == round.blob(UPTRACE_BLOB_INITIAL_FLOW))),
          megaflow(format_kept(formatter, UPTRACE_BLOB_MEGAFLOW, round))
    {
    }

    std::string flow;
    std::string final_flow;
    bool final_flow_unchanged;
    std::string megaflow;
};

/* A group of traces that took the same path. */
struct PathGroup {
    uint64_t count = 0;
    uint64_t first_id = 0;      /* Oldest, for a stable order. */
    uint64_t example_id = 0;    /* Newest: the least likely to be evicted. */
    bool drop = false;
    std::vector<std::pair<std::string, std::string>> rounds;  /* Path,
                                                               * actions. */
};

/* The paths that 'traces' took (the tables and rules of their rounds, and
 * their datapath actions without recirculation ids), most frequent
 * first. */
std::vector<PathGroup> group_paths(const std::vector<TraceView> &traces,
                                   const BlobFormatter &formatter);

/* The JSON renderings (upcall-trace-engine-render-json.cc). */
std::string show_json(const std::vector<SessionView> &sessions);
std::string list_json(const std::vector<TraceView> &traces,
                      const BlobFormatter &formatter);
std::string trace_json(const TraceView &trace,
                       const BlobFormatter &formatter);
std::string summary_json(const std::vector<TraceView> &traces,
                         const BlobFormatter &formatter);

} /* namespace render */
} /* namespace uptrace */

#endif /* upcall-trace-engine-render.hh */
