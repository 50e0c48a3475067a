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

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "upcall-trace-engine-render.hh"

/* The JSON rendering of the upcall trace engine's reading functions.  The
 * formats are described in upcall-trace-engine-render.cc. */

namespace uptrace {
namespace {

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

namespace render {
namespace {

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

} /* anonymous namespace */

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

} /* namespace render */
} /* namespace uptrace */
