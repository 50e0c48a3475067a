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

#include "upcall-trace-engine-render.hh"

/* Rendering of the upcall trace engine's reading functions: the text
 * formats here, JSON in upcall-trace-engine-render-json.cc.
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
namespace render {

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

std::string
format_kept(const BlobFormatter &formatter, enum uptrace_blob which,
            const Round &round)
{
    return round.blob_cut(which) ? NOT_KEPT : formatter.format(which, round);
}

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

} /* namespace render */

using namespace render;

namespace {

struct FreeDeleter {
    void operator()(char *p) const { free(p); }
};

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
