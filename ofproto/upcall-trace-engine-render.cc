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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "upcall-trace-engine.hh"

/* Rendering of the upcall trace engine's reading functions.
 *
 * Everything here works on copies taken by the store
 * (upcall-trace-engine-read.cc) and runs with no lock held.  Blobs are
 * turned into text only here, through the engine's formatter, or in
 * hexadecimal if there is none or it fails.
 *
 * Times are UTC.  Trace ids are shown in hexadecimal in text ("0x1f") and as
 * numbers in JSON.
 *
 * Text formats
 * ------------
 *
 * upcall/trace/get keeps, for each round, the layout of ofproto/trace, so
 * that tools that parse ofproto/trace output can parse each round:
 *
 *   === Trace 0x1f (session S, bridge br0, 2 rounds, partial, truncated) ===
 *   --- Round 1: recirc_id=0x0, upcall=miss, in_port=p1(1), <time> ---
 *   Flow: <initial flow>
 *   <translation, as captured: a blank line, bridge("br0"), ...>
 *
 *   Final flow: <final flow, or "unchanged">
 *   Megaflow: <megaflow>
 *   Datapath actions: <actions, or "drop">
 *   This flow is handled by the userspace slow path because it: (if so)
 *     - <reason>.
 *   Translation failed (<error>), packet is dropped.
 *   UFID: ufid:<uuid> (installed | not installed: <reason>)
 *   Execute: <why the datapath failed to execute the actions> (if it did)
 *
 *   --- Round 2: ...
 *
 * ", partial" and ", truncated" appear only when they apply; "1 round" is
 * singular.  A trace that max-trace-size kept from storing some rounds at
 * all says ", N rounds lost" after ", truncated".  A round cut by
 * max-trace-size ends its header with ", truncated" and its translation
 * with "[trace truncated: ...]"; a flow, megaflow or datapath actions it
 * could not keep show as "<not kept: max-trace-size reached>".  The blank lines after "Flow" and before "Final flow" are
 * ofproto/trace's; they are added unless the translation has them.  The
 * "Translation failed" line appears only after a translation error.  The
 * UFID is printed as Open vSwitch prints ufids; "UFID: none" if the round
 * has none; the parenthesis is omitted if the install outcome is unknown.
 *
 * upcall/trace/list prints one line per trace, oldest first:
 *
 *   0x1f 12:00:00.123 session=NAME bridge=br0 in_port=p1(1) rounds=2 \
 *       [partial] [truncated] [rounds_lost=N] \
 *       <first flow, cut to 100 characters> -> <actions>
 *
 * where <actions> are the last round's datapath actions, or DROP.
 *
 * JSON formats
 * ------------
 *
 * Each reading function returns one JSON value (RFC 8259; strings are
 * escaped and invalid UTF-8 is replaced by U+FFFD).  Absent values are
 * null.  Times are "time_ms" (milliseconds since the epoch) and "time"
 * (ISO 8601, UTC, e.g. "2026-11-26T12:00:00.123Z").
 *
 * upcall/trace/show:
 *   {"sessions": [
 *      {"name": str, "bridge": str, "port": str|null, "filter": str,
 *       "state": "active"|"waiting"|"disabled"|"full"|"expired"|"error",
 *       "error": str|null,           (why waiting or error)
 *       "config": {"enabled": bool, "max_traces": int,
 *                  "mode": "circular"|"stop", "retention_ms": int,
 *                  "max_rate": int, "max_trace_size": int,
 *                  "duration_ms": int},   (0: unlimited/never)
 *       "counters": {"n_matched": int, "n_traces": int,
 *                    "n_traces_total": int, "n_evicted": int,
 *                    "n_expired": int, "n_rate_limited": int,
 *                    "n_truncated": int, "n_dropped_full": int},
 *       "last_trace_id": int|null, "last_trace_time_ms": int|null,
 *       "bytes": int}]}
 *
 * upcall/trace/list (oldest first):
 *   {"traces": [
 *      {"id": int, "session": str, "bridge": str, "time_ms": int,
 *       "time": str, "in_port": int, "in_port_name": str|null,
 *       "n_rounds": int, "partial": bool, "truncated": bool,
 *       "n_rounds_lost": int,
 *       "flow": str|null,            (first round's initial flow)
 *       "actions": str|null,         (last round's datapath actions)
 *       "drop": bool}]}              (last round's actions drop)
 *
 * upcall/trace/get:
 *   {"id": int, "session": str, "bridge": str, "partial": bool,
 *    "truncated": bool, "n_rounds_lost": int, "n_rounds": int,
 *    "rounds": [
 *      {"index": int (from 1), "recirc_id": int, "upcall_type": str,
 *       "in_port": int, "in_port_name": str|null, "datapath": str,
 *       "pmd_id": int|null, "time_ms": int, "time": str,
 *       "truncated": bool,           (cut by max-trace-size)
 *       "flow": str|null, "translation": str, "final_flow": str|null,
 *       "final_flow_unchanged": bool, "megaflow": str|null,
 *       "datapath_actions": str|null ("drop" if none), "drop": bool,
 *                                    (null: not kept, max-trace-size)
 *       "xlate_error": str|null, "ufid": str|null ("ufid:<uuid>"),
 *       "installed": bool|null, "install_reason": str|null,
 *       "bridge": str, "slow_path": str|null,
 *       "execute_error": str|null,   (the datapath failed to execute)
 *       "packet_len": int|null, "packet": str|null (hex, its first
 *       options:packet-bytes bytes)}],
 *    "datapath_flows": [...] (upcall-trace-flows.cc)}
 *
 * upcall/trace/summary (most frequent first):
 *   {"n_traces": int,
 *    "paths": [
 *      {"count": int, "example_trace_id": int (the newest), "drop": bool,
 *       "rounds": [{"path": str, "datapath_actions": str}]}]}
 */

namespace uptrace {
namespace {

struct FreeDeleter {
    void operator()(char *p) const { free(p); }
};

/* What a round cut by max-trace-size shows instead of a blob it could not
 * keep (null in JSON). */
const char NOT_KEPT[] = "<not kept: max-trace-size reached>";

std::string
hex(const std::string &data)
{
    static const char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(data.size() * 2);
    for (unsigned char c : data) {
        s += digits[c >> 4];
        s += digits[c & 15];
    }
    return s;
}

std::string
format_time_of_day(int64_t wall_ms)
{
    std::string iso = format_time_iso8601(wall_ms);
    /* "YYYY-MM-DDT" ... "Z". */
    return iso.size() > 12 ? iso.substr(11, iso.size() - 12) : iso;
}

std::string
format_in_port(const Round &round)
{
    return (round.in_port_name.empty()
            ? std::to_string(round.in_port)
            : round.in_port_name + "(" + std::to_string(round.in_port) + ")");
}

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

/* Blob 'which' of 'round' formatted, or NOT_KEPT if max-trace-size cut it. */
std::string
format_kept(const BlobFormatter &formatter, enum uptrace_blob which,
            const Round &round)
{
    return round.blob_cut(which) ? NOT_KEPT : formatter.format(which, round);
}

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

/* Produces compact JSON, adding separators itself. */
class JsonWriter {
public:
    JsonWriter &begin_object() { open('{'); return *this; }
    JsonWriter &end_object() { close('}'); return *this; }
    JsonWriter &begin_array() { open('['); return *this; }
    JsonWriter &end_array() { close(']'); return *this; }

    JsonWriter &key(const char *name)
    {
        separate();
        out_ += '"';
        out_ += json_escape(name);
        out_ += "\":";
        after_key_ = true;
        return *this;
    }

    JsonWriter &string(const std::string &s)
    {
        separate();
        out_ += '"';
        out_ += json_escape(s);
        out_ += '"';
        return *this;
    }

    /* A string, or null if 'present' is false. */
    JsonWriter &string_or_null(bool present, const std::string &s)
    {
        return present ? string(s) : null();
    }

    JsonWriter &unsigned_number(uint64_t n)
    {
        separate();
        out_ += std::to_string(n);
        return *this;
    }

    JsonWriter &number(int64_t n)
    {
        separate();
        out_ += std::to_string(n);
        return *this;
    }

    JsonWriter &boolean(bool b)
    {
        separate();
        out_ += b ? "true" : "false";
        return *this;
    }

    JsonWriter &null()
    {
        separate();
        out_ += "null";
        return *this;
    }

    std::string finish()
    {
        out_ += '\n';
        return std::move(out_);
    }

private:
    void separate()
    {
        if (after_key_) {
            after_key_ = false;
        } else if (!first_.empty()) {
            if (!first_.back()) {
                out_ += ',';
            }
            first_.back() = false;
        }
    }

    void open(char c)
    {
        separate();
        out_ += c;
        first_.push_back(true);
    }

    void close(char c)
    {
        first_.pop_back();
        out_ += c;
    }

    std::string out_;
    std::vector<bool> first_;   /* Per open container: nothing in it yet. */
    bool after_key_ = false;
};

/* Text. */

std::string
show_text(const std::vector<SessionView> &sessions)
{
    if (sessions.empty()) {
        return "No upcall trace sessions.\n";
    }

    std::string s;
    for (const SessionView &v : sessions) {
        if (!s.empty()) {
            s += '\n';
        }
        s += "Session " + v.name + ":\n";
        s += "  bridge: " + v.bridge + ", port: "
             + (v.has_port ? v.port : "any") + "\n";
        s += "  filter: " + (v.filter.empty() ? "(none)" : v.filter) + "\n";
        s += std::string("  state: ") + uptrace_state_to_string(v.state);
        if (!v.error.empty()) {
            s += " (" + v.error + ")";
        }
        s += '\n';
        s += string_printf(
            "  config: enabled=%s max-traces=%" PRIu32 " mode=%s",
            v.enabled ? "true" : "false", v.max_traces,
            v.mode == UPTRACE_MODE_STOP ? "stop" : "circular");
        s += (v.retention_ms
              ? string_printf(" retention=%" PRId64 "ms", v.retention_ms)
              : " retention=none");
        s += (v.max_rate
              ? string_printf(" max-rate=%" PRIu32 "/s", v.max_rate)
              : " max-rate=unlimited");
        s += (v.max_trace_size
              ? string_printf(" max-trace-size=%" PRIu64 "B",
                              v.max_trace_size)
              : " max-trace-size=unlimited");
        s += (v.duration_ms
              ? string_printf(" duration=%" PRId64 "ms", v.duration_ms)
              : " duration=none");
        s += '\n';
        s += string_printf(
            "  counters: n_matched=%" PRIu64 " n_traces=%" PRIu64
            " n_traces_total=%" PRIu64 " n_evicted=%" PRIu64
            " n_expired=%" PRIu64 " n_rate_limited=%" PRIu64
            " n_truncated=%" PRIu64 " n_dropped_full=%" PRIu64 "\n",
            v.n_matched, v.n_traces, v.n_traces_total, v.n_evicted,
            v.n_expired, v.n_rate_limited, v.n_truncated, v.n_dropped_full);
        if (v.last_trace_id) {
            s += string_printf("  last trace: 0x%" PRIx64 " at ",
                               v.last_trace_id)
                 + format_time_iso8601(v.last_trace_time) + "\n";
        } else {
            s += "  last trace: none\n";
        }
        s += string_printf("  memory: %" PRIu64 " bytes\n", v.bytes);
    }
    return s;
}

std::string
list_text(const std::vector<TraceView> &traces,
          const BlobFormatter &formatter)
{
    if (traces.empty()) {
        return "No upcall traces.\n";
    }

    static const size_t MAX_FLOW_LEN = 100;
    std::string s;
    for (const TraceView &trace : traces) {
        const Round &first = *trace.rounds.front();
        FormattedActions last(*trace.rounds.back(), formatter);
        std::string flow = format_kept(formatter, UPTRACE_BLOB_INITIAL_FLOW,
                                       first);
        if (flow.size() > MAX_FLOW_LEN) {
            flow = flow.substr(0, MAX_FLOW_LEN - 3) + "...";
        }

        s += string_printf("0x%" PRIx64 " ", trace.id);
        s += format_time_of_day(first.wall_ms);
        s += " session=" + trace.session;
        s += " bridge=" + (first.bridge.empty() ? trace.bridge
                                                 : first.bridge);
        s += " in_port=" + format_in_port(first);
        s += " rounds=" + std::to_string(trace.rounds.size());
        if (trace.partial) {
            s += " partial";
        }
        if (trace.truncated) {
            s += " truncated";
        }
        if (trace.n_rounds_lost) {
            s += string_printf(" rounds_lost=%" PRIu64, trace.n_rounds_lost);
        }
        s += " " + flow + " -> " + (last.drop ? "DROP" : last.actions);
        s += '\n';
    }
    return s;
}

std::string
trace_text(const TraceView &trace, const BlobFormatter &formatter)
{
    const Round &first = *trace.rounds.front();
    const std::string &bridge = (first.bridge.empty() ? trace.bridge
                                 : first.bridge);
    size_t n = trace.rounds.size();
    std::string lost;
    if (trace.n_rounds_lost) {
        lost = string_printf(", %" PRIu64 " round%s lost", trace.n_rounds_lost,
                             trace.n_rounds_lost == 1 ? "" : "s");
    }
    std::string s = string_printf(
        "=== Trace 0x%" PRIx64 " (session %s, bridge %s, %zu round%s%s%s%s)"
        " ===\n", trace.id, trace.session.c_str(), bridge.c_str(),
        n, n == 1 ? "" : "s", trace.partial ? ", partial" : "",
        trace.truncated ? ", truncated" : "", lost.c_str());

    for (size_t i = 0; i < n; i++) {
        const Round &round = *trace.rounds[i];
        FormattedRound f(round, formatter);

        if (i) {
            s += '\n';
        }
        /* A round that ran on another bridge (after a patch port) says
         * which. */
        std::string other_bridge;
        if (!round.bridge.empty() && round.bridge != bridge) {
            other_bridge = ", bridge=" + round.bridge;
        }
        s += string_printf("--- Round %zu: recirc_id=0x%" PRIx32
                           ", upcall=%s%s, in_port=%s, %s%s ---\n",
                           i + 1, round.recirc_id,
                           round.upcall_type.c_str(), other_bridge.c_str(),
                           format_in_port(round).c_str(),
                           format_time_iso8601(round.wall_ms).c_str(),
                           round.truncated ? ", truncated" : "");
        s += "Flow: " + f.flow + "\n";
        const std::string translation = translation_text(round);
        if (!translation.empty() && translation[0] != '\n') {
            s += '\n';      /* ofproto/trace's blank line after "Flow:". */
        }
        s += translation;
        if (!translation.empty() && translation.back() != '\n') {
            s += '\n';
        }
        if (s.compare(s.size() - 2, 2, "\n\n")) {
            s += '\n';
        }
        s += "Final flow: "
             + (f.final_flow_unchanged ? "unchanged" : f.final_flow) + "\n";
        s += "Megaflow: " + f.megaflow + "\n";
        s += "Datapath actions: " + f.actions + "\n";
        if (!round.slow_path.empty()) {
            s += round.slow_path + "\n";
        }
        if (round.has_xlate_error) {
            s += "Translation failed (" + round.xlate_error
                 + "), packet is dropped.\n";
        }
        s += "UFID: " + (round.has_ufid ? format_ufid(round.ufid) : "none");
        if (round.has_install) {
            if (round.installed) {
                s += " (installed)";
            } else if (round.install_reason.empty()) {
                s += " (not installed)";
            } else {
                s += " (not installed: " + round.install_reason + ")";
            }
        }
        s += '\n';
        if (!round.execute_error.empty()) {
            s += "Execute: " + round.execute_error + "\n";
        }
        if (!round.packet.empty()) {
            s += string_printf("Packet: %zu of %" PRIu64 " bytes kept\n",
                               round.packet.size(), round.packet_len);
        }
    }
    return s;
}

/* A group of traces that took the same path. */
struct PathGroup {
    uint64_t count = 0;
    uint64_t first_id = 0;      /* Oldest, for a stable order. */
    uint64_t example_id = 0;    /* Newest: the least likely to be evicted. */
    bool drop = false;
    std::vector<std::pair<std::string, std::string>> rounds;  /* Path,
                                                               * actions. */
};

} /* anonymous namespace */

std::string
without_recirc_ids(const std::string &actions)
{
    static const std::string recirc = "recirc(";
    std::string s;
    size_t pos = 0;

    for (;;) {
        size_t found = actions.find(recirc, pos);
        if (found == std::string::npos) {
            return s + actions.substr(pos);
        }
        size_t id = found + recirc.size();
        size_t end = actions.find(')', id);
        if (end == std::string::npos) {
            return s + actions.substr(pos);
        }
        s += actions.substr(pos, id - pos) + "*";
        pos = end;
    }
}

namespace {

std::vector<PathGroup>
group_paths(const std::vector<TraceView> &traces,
            const BlobFormatter &formatter)
{
    std::map<std::string, PathGroup> by_key;
    for (const TraceView &trace : traces) {
        std::vector<std::pair<std::string, std::string>> rounds;
        std::string key;
        bool drop = false;
        for (const RoundPtr &round : trace.rounds) {
            FormattedActions f(*round, formatter);
            std::string path = path_text(*round);
            /* Null bytes cannot occur in either part: unambiguous. */
            key += path;
            key += '\0';
            key += without_recirc_ids(f.actions);
            key += '\0';
            drop = f.drop;
            rounds.emplace_back(std::move(path), f.actions);
        }

        PathGroup &group = by_key[key];
        if (!group.count) {
            group.first_id = trace.id;
            group.drop = drop;
            group.rounds = std::move(rounds);
        }
        group.count++;
        group.example_id = std::max(group.example_id, trace.id);
    }

    std::vector<PathGroup> groups;
    groups.reserve(by_key.size());
    for (auto &entry : by_key) {
        groups.push_back(std::move(entry.second));
    }
    std::sort(groups.begin(), groups.end(),
              [](const PathGroup &a, const PathGroup &b) {
                  return (a.count != b.count ? a.count > b.count
                          : a.first_id < b.first_id);
              });
    return groups;
}

/* Appends 'text' to 's', each line indented by 'indent'. */
void
append_indented(std::string *s, const std::string &text,
                const std::string &indent)
{
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        *s += indent + text.substr(start, end - start) + "\n";
        start = end + 1;
    }
}

std::string
summary_text(const std::vector<TraceView> &traces,
             const BlobFormatter &formatter)
{
    if (traces.empty()) {
        return "No upcall traces.\n";
    }

    std::vector<PathGroup> groups = group_paths(traces, formatter);
    std::string s = string_printf(
        "%zu trace%s, %zu distinct path%s, most frequent first:\n",
        traces.size(), traces.size() == 1 ? "" : "s",
        groups.size(), groups.size() == 1 ? "" : "s");
    for (size_t i = 0; i < groups.size(); i++) {
        const PathGroup &g = groups[i];
        s += string_printf("\nPath %zu: %" PRIu64 " trace%s, e.g. 0x%" PRIx64
                           "%s\n", i + 1, g.count, g.count == 1 ? "" : "s",
                           g.example_id, g.drop ? " *** DROP ***" : "");
        for (size_t j = 0; j < g.rounds.size(); j++) {
            const auto &[path, actions] = g.rounds[j];
            s += string_printf("  Round %zu:\n", j + 1);
            if (path.empty()) {
                s += "    (no path recorded)\n";
            } else {
                append_indented(&s, path, "    ");
            }
            s += "    Datapath actions: "
                 + (actions == "drop" ? std::string("DROP") : actions)
                 + "\n";
        }
    }
    return s;
}

/* JSON. */

std::string
show_json(const std::vector<SessionView> &sessions)
{
    JsonWriter j;
    j.begin_object().key("sessions").begin_array();
    for (const SessionView &v : sessions) {
        j.begin_object();
        j.key("name").string(v.name);
        j.key("bridge").string(v.bridge);
        j.key("port").string_or_null(v.has_port, v.port);
        j.key("filter").string(v.filter);
        j.key("state").string(uptrace_state_to_string(v.state));
        j.key("error").string_or_null(!v.error.empty(), v.error);

        j.key("config").begin_object();
        j.key("enabled").boolean(v.enabled);
        j.key("max_traces").unsigned_number(v.max_traces);
        j.key("mode").string(v.mode == UPTRACE_MODE_STOP ? "stop"
                             : "circular");
        j.key("retention_ms").number(v.retention_ms);
        j.key("max_rate").unsigned_number(v.max_rate);
        j.key("max_trace_size").unsigned_number(v.max_trace_size);
        j.key("duration_ms").number(v.duration_ms);
        j.end_object();

        j.key("counters").begin_object();
        j.key("n_matched").unsigned_number(v.n_matched);
        j.key("n_traces").unsigned_number(v.n_traces);
        j.key("n_traces_total").unsigned_number(v.n_traces_total);
        j.key("n_evicted").unsigned_number(v.n_evicted);
        j.key("n_expired").unsigned_number(v.n_expired);
        j.key("n_rate_limited").unsigned_number(v.n_rate_limited);
        j.key("n_truncated").unsigned_number(v.n_truncated);
        j.key("n_dropped_full").unsigned_number(v.n_dropped_full);
        j.end_object();

        if (v.last_trace_id) {
            j.key("last_trace_id").unsigned_number(v.last_trace_id);
            j.key("last_trace_time_ms").number(v.last_trace_time);
        } else {
            j.key("last_trace_id").null();
            j.key("last_trace_time_ms").null();
        }
        j.key("bytes").unsigned_number(v.bytes);
        j.end_object();
    }
    j.end_array().end_object();
    return j.finish();
}

std::string
list_json(const std::vector<TraceView> &traces,
          const BlobFormatter &formatter)
{
    JsonWriter j;
    j.begin_object().key("traces").begin_array();
    for (const TraceView &trace : traces) {
        const Round &first = *trace.rounds.front();
        FormattedActions last(*trace.rounds.back(), formatter);

        j.begin_object();
        j.key("id").unsigned_number(trace.id);
        j.key("session").string(trace.session);
        j.key("bridge").string(first.bridge.empty() ? trace.bridge
                               : first.bridge);
        j.key("time_ms").number(first.wall_ms);
        j.key("time").string(format_time_iso8601(first.wall_ms));
        j.key("in_port").unsigned_number(first.in_port);
        j.key("in_port_name").string_or_null(!first.in_port_name.empty(),
                                             first.in_port_name);
        j.key("n_rounds").unsigned_number(trace.rounds.size());
        j.key("partial").boolean(trace.partial);
        j.key("truncated").boolean(trace.truncated);
        j.key("n_rounds_lost").unsigned_number(trace.n_rounds_lost);
        j.key("flow").string_or_null(
            !first.blob_cut(UPTRACE_BLOB_INITIAL_FLOW),
            formatter.format(UPTRACE_BLOB_INITIAL_FLOW, first));
        j.key("actions").string_or_null(!last.cut, last.actions);
        j.key("drop").boolean(last.drop);
        j.end_object();
    }
    j.end_array().end_object();
    return j.finish();
}

std::string
trace_json(const TraceView &trace, const BlobFormatter &formatter)
{
    const Round &first = *trace.rounds.front();
    JsonWriter j;
    j.begin_object();
    j.key("id").unsigned_number(trace.id);
    j.key("session").string(trace.session);
    j.key("bridge").string(first.bridge.empty() ? trace.bridge
                           : first.bridge);
    j.key("partial").boolean(trace.partial);
    j.key("truncated").boolean(trace.truncated);
    j.key("n_rounds_lost").unsigned_number(trace.n_rounds_lost);
    j.key("n_rounds").unsigned_number(trace.rounds.size());
    j.key("rounds").begin_array();
    for (size_t i = 0; i < trace.rounds.size(); i++) {
        const Round &round = *trace.rounds[i];
        FormattedRound f(round, formatter);

        j.begin_object();
        j.key("index").unsigned_number(i + 1);
        j.key("recirc_id").unsigned_number(round.recirc_id);
        j.key("upcall_type").string(round.upcall_type);
        j.key("in_port").unsigned_number(round.in_port);
        j.key("in_port_name").string_or_null(!round.in_port_name.empty(),
                                             round.in_port_name);
        j.key("datapath").string(round.datapath);
        if (round.pmd_id != UINT32_MAX) {
            j.key("pmd_id").unsigned_number(round.pmd_id);
        } else {
            j.key("pmd_id").null();
        }
        j.key("time_ms").number(round.wall_ms);
        j.key("time").string(format_time_iso8601(round.wall_ms));
        j.key("truncated").boolean(round.truncated);
        j.key("flow").string_or_null(
            !round.blob_cut(UPTRACE_BLOB_INITIAL_FLOW), f.flow);
        j.key("translation").string(translation_text(round));
        j.key("final_flow").string_or_null(
            !round.blob_cut(UPTRACE_BLOB_FINAL_FLOW), f.final_flow);
        j.key("final_flow_unchanged").boolean(f.final_flow_unchanged);
        j.key("megaflow").string_or_null(
            !round.blob_cut(UPTRACE_BLOB_MEGAFLOW), f.megaflow);
        j.key("datapath_actions").string_or_null(!f.cut, f.actions);
        j.key("drop").boolean(f.drop);
        j.key("xlate_error").string_or_null(round.has_xlate_error,
                                            round.xlate_error);
        j.key("ufid").string_or_null(round.has_ufid,
                                     format_ufid(round.ufid));
        if (round.has_install) {
            j.key("installed").boolean(round.installed);
            j.key("install_reason").string_or_null(
                !round.install_reason.empty(), round.install_reason);
        } else {
            j.key("installed").null();
            j.key("install_reason").null();
        }
        j.key("bridge").string(round.bridge.empty() ? trace.bridge
                               : round.bridge);
        j.key("slow_path").string_or_null(!round.slow_path.empty(),
                                          round.slow_path);
        j.key("execute_error").string_or_null(!round.execute_error.empty(),
                                              round.execute_error);
        if (!round.packet.empty()) {
            j.key("packet_len").unsigned_number(round.packet_len);
            j.key("packet").string(hex(round.packet));
        } else {
            j.key("packet_len").null();
            j.key("packet").null();
        }
        j.end_object();
    }
    j.end_array();
    j.end_object();
    return j.finish();
}

std::string
summary_json(const std::vector<TraceView> &traces,
             const BlobFormatter &formatter)
{
    JsonWriter j;
    j.begin_object();
    j.key("n_traces").unsigned_number(traces.size());
    j.key("paths").begin_array();
    for (const PathGroup &g : group_paths(traces, formatter)) {
        j.begin_object();
        j.key("count").unsigned_number(g.count);
        j.key("example_trace_id").unsigned_number(g.example_id);
        j.key("drop").boolean(g.drop);
        j.key("rounds").begin_array();
        for (const auto &[path, actions] : g.rounds) {
            j.begin_object();
            j.key("path").string(path);
            j.key("datapath_actions").string(actions);
            j.end_object();
        }
        j.end_array();
        j.end_object();
    }
    j.end_array();
    j.end_object();
    return j.finish();
}

/* Returns the length of the valid UTF-8 sequence at the start of 's' (of
 * 'n' bytes, n > 0, s[0] >= 0x80), or 0 if it is not valid (RFC 3629). */
size_t
utf8_sequence_length(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;   /* Range of the second byte. */
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        if (s[0] == 0xe0) {
            lo = 0xa0;          /* No overlong forms. */
        } else if (s[0] == 0xed) {
            hi = 0x9f;          /* No surrogates. */
        }
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        if (s[0] == 0xf0) {
            lo = 0x90;          /* No overlong forms. */
        } else if (s[0] == 0xf4) {
            hi = 0x8f;          /* Nothing above U+10FFFF. */
        }
    } else {
        return 0;
    }

    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

} /* anonymous namespace */

std::string
string_printf(const char *format, ...)
{
    char buf[256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    if (n < 0) {
        return "";
    } else if (static_cast<size_t>(n) < sizeof buf) {
        return std::string(buf, n);
    }

    std::string s(n, '\0');
    va_start(args, format);
    vsnprintf(&s[0], s.size() + 1, format, args);
    va_end(args);
    return s;
}

std::string
BlobFormatter::format(enum uptrace_blob which, const Round &round) const
{
    std::string_view blob = round.blob(which);
    if (function) {
        std::unique_ptr<char, FreeDeleter> text(
            function(which, blob.data(), blob.size(), round.bridge.c_str(),
                     aux));
        if (text) {
            return text.get();
        }
    }
    return hex(std::string(blob));
}

std::string
json_escape(const std::string &s)
{
    std::string out;
    out.reserve(s.size());
    const unsigned char *p = reinterpret_cast<const unsigned char *>(
        s.data());
    size_t n = s.size();
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = utf8_sequence_length(p + i, n - i);
            if (len) {
                out.append(s, i, len);
                i += len;
            } else {
                out += "\\ufffd";
                i++;
            }
            continue;
        }

        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += string_printf("\\u%04x", c);
            } else {
                out += static_cast<char>(c);
            }
            break;
        }
        i++;
    }
    return out;
}

std::string
format_ufid(const std::array<uint8_t, 16> &ufid)
{
    /* The bytes are the memory image of an ovs_u128, which Open vSwitch
     * prints as a UUID made of four host-order 32-bit words (UUID_FMT in
     * lib/uuid.h, used by odp_format_ufid()): match it, so that a ufid can
     * be looked up in "ovs-appctl dpctl/dump-flows" output. */
    uint32_t parts[4];
    memcpy(parts, ufid.data(), sizeof parts);
    return string_printf("ufid:%08x-%04x-%04x-%04x-%04x%08x",
                         parts[0], parts[1] >> 16, parts[1] & 0xffff,
                         parts[2] >> 16, parts[2] & 0xffff, parts[3]);
}

std::string
format_time_iso8601(int64_t wall_ms)
{
    int64_t ms = wall_ms % 1000;
    int64_t seconds = wall_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        seconds--;
    }
    time_t t = static_cast<time_t>(seconds);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        return std::to_string(wall_ms);
    }
    char buf[64];
    size_t len = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return string_printf("%.*s.%03dZ", static_cast<int>(len), buf,
                         static_cast<int>(ms));
}

std::string
render_show(const std::vector<SessionView> &sessions,
            enum uptrace_format format)
{
    return (format == UPTRACE_FORMAT_JSON
            ? show_json(sessions) : show_text(sessions));
}

std::string
render_list(const std::vector<TraceView> &traces,
            const BlobFormatter &formatter, enum uptrace_format format)
{
    return (format == UPTRACE_FORMAT_JSON
            ? list_json(traces, formatter) : list_text(traces, formatter));
}

std::string
render_trace(const TraceView &trace, const BlobFormatter &formatter,
             enum uptrace_format format)
{
    return (format == UPTRACE_FORMAT_JSON
            ? trace_json(trace, formatter) : trace_text(trace, formatter));
}

std::string
render_summary(const std::vector<TraceView> &traces,
               const BlobFormatter &formatter, enum uptrace_format format)
{
    return (format == UPTRACE_FORMAT_JSON
            ? summary_json(traces, formatter)
            : summary_text(traces, formatter));
}

} /* namespace uptrace */
