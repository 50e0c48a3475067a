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

#ifndef TESTS_UPCALL_TRACE_ENGINE_RENDER_TEST_HH
#define TESTS_UPCALL_TRACE_ENGINE_RENDER_TEST_HH 1

/* What the tests of the text (upcall-trace-engine-render-test.cc) and JSON
 * (upcall-trace-engine-render-json-test.cc) renderings share: a strict JSON
 * parser, a fake clock and formatter, and a fixture that stores traces. */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "upcall-trace.h"
#include "upcall-trace-engine.hh"

namespace {

/* A strict RFC 8259 parser, just enough to check the engine's output. */
struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };

    Type type = Type::Null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<JsonValue> array;
    std::vector<std::pair<std::string, JsonValue>> object;

    bool has(const std::string &key) const
    {
        for (const auto &member : object) {
            if (member.first == key) {
                return true;
            }
        }
        return false;
    }

    const JsonValue &operator[](const std::string &key) const
    {
        static const JsonValue missing;
        EXPECT_EQ(Type::Object, type) << "looking up " << key;
        for (const auto &member : object) {
            if (member.first == key) {
                return member.second;
            }
        }
        ADD_FAILURE() << "no member " << key;
        return missing;
    }

    const JsonValue &operator[](size_t index) const
    {
        static const JsonValue missing;
        EXPECT_EQ(Type::Array, type);
        if (index < array.size()) {
            return array[index];
        }
        ADD_FAILURE() << "no element " << index;
        return missing;
    }

    bool is_null() const { return type == Type::Null; }
};

class JsonParser {
public:
    explicit JsonParser(const std::string &text) : s_(text) {}

    bool parse(JsonValue *value, std::string *error)
    {
        skip_whitespace();
        bool ok = parse_value(value, 0);
        if (ok) {
            skip_whitespace();
            if (pos_ != s_.size()) {
                ok = fail("trailing characters");
            }
        }
        if (!ok) {
            *error = error_ + " at offset " + std::to_string(pos_);
        }
        return ok;
    }

private:
    bool fail(const std::string &message)
    {
        if (error_.empty()) {
            error_ = message;
        }
        return false;
    }

    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    void skip_whitespace()
    {
        while (!at_end() && strchr(" \t\n\r", s_[pos_])) {
            pos_++;
        }
    }

    bool expect(char c)
    {
        if (peek() != c) {
            return fail(std::string("expected '") + c + "'");
        }
        pos_++;
        return true;
    }

    bool parse_value(JsonValue *v, int depth)
    {
        if (depth > 64) {
            return fail("too deep");
        }
        switch (peek()) {
        case '{': return parse_object(v, depth);
        case '[': return parse_array(v, depth);
        case '"':
            v->type = JsonValue::Type::String;
            return parse_string(&v->string);
        case 't': v->type = JsonValue::Type::Bool; v->boolean = true;
            return literal("true");
        case 'f': v->type = JsonValue::Type::Bool; v->boolean = false;
            return literal("false");
        case 'n': v->type = JsonValue::Type::Null;
            return literal("null");
        default:
            v->type = JsonValue::Type::Number;
            return parse_number(&v->number);
        }
    }

    bool literal(const char *word)
    {
        size_t n = strlen(word);
        if (s_.compare(pos_, n, word)) {
            return fail(std::string("expected ") + word);
        }
        pos_ += n;
        return true;
    }

    bool parse_object(JsonValue *v, int depth)
    {
        v->type = JsonValue::Type::Object;
        pos_++;
        skip_whitespace();
        if (peek() == '}') {
            pos_++;
            return true;
        }
        for (;;) {
            skip_whitespace();
            std::string key;
            if (peek() != '"' || !parse_string(&key)) {
                return fail("expected a key");
            }
            if (v->has(key)) {
                return fail("duplicate key " + key);
            }
            skip_whitespace();
            if (!expect(':')) {
                return false;
            }
            skip_whitespace();
            JsonValue member;
            if (!parse_value(&member, depth + 1)) {
                return false;
            }
            v->object.emplace_back(key, std::move(member));
            skip_whitespace();
            if (peek() == ',') {
                pos_++;
            } else {
                return expect('}');
            }
        }
    }

    bool parse_array(JsonValue *v, int depth)
    {
        v->type = JsonValue::Type::Array;
        pos_++;
        skip_whitespace();
        if (peek() == ']') {
            pos_++;
            return true;
        }
        for (;;) {
            skip_whitespace();
            JsonValue element;
            if (!parse_value(&element, depth + 1)) {
                return false;
            }
            v->array.push_back(std::move(element));
            skip_whitespace();
            if (peek() == ',') {
                pos_++;
            } else {
                return expect(']');
            }
        }
    }

    bool parse_number(double *n)
    {
        size_t start = pos_;
        if (peek() == '-') {
            pos_++;
        }
        if (peek() == '0') {
            pos_++;
        } else if (peek() >= '1' && peek() <= '9') {
            while (isdigit(static_cast<unsigned char>(peek()))) {
                pos_++;
            }
        } else {
            return fail("bad value");
        }
        if (peek() == '.') {
            pos_++;
            if (!isdigit(static_cast<unsigned char>(peek()))) {
                return fail("bad fraction");
            }
            while (isdigit(static_cast<unsigned char>(peek()))) {
                pos_++;
            }
        }
        if (peek() == 'e' || peek() == 'E') {
            pos_++;
            if (peek() == '+' || peek() == '-') {
                pos_++;
            }
            if (!isdigit(static_cast<unsigned char>(peek()))) {
                return fail("bad exponent");
            }
            while (isdigit(static_cast<unsigned char>(peek()))) {
                pos_++;
            }
        }
        *n = strtod(s_.substr(start, pos_ - start).c_str(), nullptr);
        return true;
    }

    bool parse_hex4(uint32_t *u)
    {
        if (pos_ + 4 > s_.size()) {
            return fail("short \\u escape");
        }
        *u = 0;
        for (int i = 0; i < 4; i++) {
            char c = s_[pos_++];
            *u <<= 4;
            if (c >= '0' && c <= '9') {
                *u |= c - '0';
            } else if (c >= 'a' && c <= 'f') {
                *u |= c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                *u |= c - 'A' + 10;
            } else {
                return fail("bad \\u escape");
            }
        }
        return true;
    }

    static void append_utf8(std::string *s, uint32_t u)
    {
        if (u < 0x80) {
            *s += static_cast<char>(u);
        } else if (u < 0x800) {
            *s += static_cast<char>(0xc0 | (u >> 6));
            *s += static_cast<char>(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
            *s += static_cast<char>(0xe0 | (u >> 12));
            *s += static_cast<char>(0x80 | ((u >> 6) & 0x3f));
            *s += static_cast<char>(0x80 | (u & 0x3f));
        } else {
            *s += static_cast<char>(0xf0 | (u >> 18));
            *s += static_cast<char>(0x80 | ((u >> 12) & 0x3f));
            *s += static_cast<char>(0x80 | ((u >> 6) & 0x3f));
            *s += static_cast<char>(0x80 | (u & 0x3f));
        }
    }

    /* Checks one raw UTF-8 sequence starting at a byte >= 0x80. */
    bool copy_utf8(std::string *out)
    {
        unsigned char c = s_[pos_];
        int len = (c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4 : 0);
        if (!len || pos_ + len > s_.size()) {
            return fail("invalid UTF-8");
        }
        uint32_t u = c & (0xff >> (len + 1));
        for (int i = 1; i < len; i++) {
            unsigned char cc = s_[pos_ + i];
            if ((cc & 0xc0) != 0x80) {
                return fail("invalid UTF-8 continuation");
            }
            u = (u << 6) | (cc & 0x3f);
        }
        if ((len == 3 && u < 0x800) || (len == 4 && u < 0x10000)
            || (u >= 0xd800 && u <= 0xdfff) || u > 0x10ffff) {
            return fail("invalid UTF-8 code point");
        }
        out->append(s_, pos_, len);
        pos_ += len;
        return true;
    }

    bool parse_string(std::string *out)
    {
        pos_++;
        for (;;) {
            if (at_end()) {
                return fail("unterminated string");
            }
            unsigned char c = s_[pos_];
            if (c == '"') {
                pos_++;
                return true;
            } else if (c < 0x20) {
                return fail("raw control character in string");
            } else if (c >= 0x80) {
                if (!copy_utf8(out)) {
                    return false;
                }
                continue;
            } else if (c != '\\') {
                *out += static_cast<char>(c);
                pos_++;
                continue;
            }

            pos_++;
            char e = peek();
            pos_++;
            switch (e) {
            case '"': *out += '"'; break;
            case '\\': *out += '\\'; break;
            case '/': *out += '/'; break;
            case 'b': *out += '\b'; break;
            case 'f': *out += '\f'; break;
            case 'n': *out += '\n'; break;
            case 'r': *out += '\r'; break;
            case 't': *out += '\t'; break;
            case 'u': {
                uint32_t u;
                if (!parse_hex4(&u)) {
                    return false;
                }
                if (u >= 0xd800 && u <= 0xdbff) {
                    uint32_t low;
                    if (!literal("\\u") || !parse_hex4(&low)
                        || low < 0xdc00 || low > 0xdfff) {
                        return fail("unpaired surrogate");
                    }
                    u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
                } else if (u >= 0xdc00 && u <= 0xdfff) {
                    return fail("unpaired surrogate");
                }
                append_utf8(out, u);
                break;
            }
            default:
                return fail("bad escape");
            }
        }
    }

    const std::string &s_;
    size_t pos_ = 0;
    std::string error_;
};

/* Parses 'text', failing the test if it is not valid JSON. */
inline JsonValue
parse_json(const std::string &text)
{
    JsonValue value;
    std::string error;
    EXPECT_TRUE(JsonParser(text).parse(&value, &error))
        << error << " in:\n" << text;
    return value;
}

inline bool
is_valid_json(const std::string &text)
{
    JsonValue value;
    std::string error;
    return JsonParser(text).parse(&value, &error);
}


/* 2026-11-26T12:00:00.123Z. */
constexpr int64_t WALL_START_MS = INT64_C(1795694400123);

struct FakeClock {
    int64_t monotonic = 1000000;
    int64_t wall = WALL_START_MS;

    void advance(int64_t ms)
    {
        monotonic += ms;
        wall += ms;
    }
};

inline int64_t
fake_monotonic(void *aux)
{
    return static_cast<FakeClock *>(aux)->monotonic;
}

inline int64_t
fake_wall(void *aux)
{
    return static_cast<FakeClock *>(aux)->wall;
}

/* Formats every blob as its bytes, except that "unformattable" fails, and
 * records the bridge it was asked about. */
struct FormatterLog {
    std::vector<std::string> bridges;
};

inline char *
test_formatter(enum uptrace_blob, const void *data, size_t size,
               const char *bridge, void *aux)
{
    static_cast<FormatterLog *>(aux)->bridges.push_back(bridge);
    std::string text(static_cast<const char *>(data), size);
    if (text == "unformattable") {
        return nullptr;
    }
    return strdup(text.c_str());
}

inline std::string
take(char *s)
{
    std::string copy = s ? s : "";
    free(s);
    return copy;
}

struct EngineDeleter {
    void operator()(uptrace_engine *engine) const
    {
        uptrace_engine_destroy(engine);
    }
};

struct RoundSpec {
    uint32_t recirc_id = 0;
    const char *in_port_name = "p1";
    std::string flow = "in_port=1,tcp";
    std::string final_flow = "in_port=1,tcp";
    std::string megaflow = "recirc_id=0,in_port=1,tcp";
    std::string actions = "2";
    std::string translation = "\nbridge(\"br0\")\n-------------\n"
                              " 0. priority 0\n    output:2\n";
    std::string path = "table 0: priority 0, output:2";
    const char *xlate_error = nullptr;
    bool has_ufid = false;
    uint8_t ufid[16] = {0};
    bool has_install = true;
    bool installed = true;
    const char *install_reason = nullptr;
    uint32_t pmd_id = UINT32_MAX;
    const char *bridge = nullptr;       /* The round's, if not br0. */
    const char *slow_path = nullptr;
    const char *execute_error = nullptr;
};

class UpcallTraceRenderTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        make_engine(true);
    }

    void make_engine(bool with_formatter)
    {
        engine_.reset();
        struct uptrace_engine_options options;
        memset(&options, 0, sizeof options);
        if (with_formatter) {
            options.formatter = test_formatter;
            options.formatter_aux = &log_;
        }
        options.monotonic_ms = fake_monotonic;
        options.wall_ms = fake_wall;
        options.clock_aux = &clock_;
        engine_.reset(uptrace_engine_create(&options));
    }

    uptrace_engine *engine() { return engine_.get(); }

    uptrace_session *create_session(const char *name,
                                    uint64_t max_trace_size = 0)
    {
        struct uptrace_session_config config;
        uptrace_session_config_init(&config);
        config.name = name;
        config.bridge = "br0";
        config.max_trace_size = max_trace_size;
        uptrace_session *session = nullptr;
        EXPECT_EQ(0, uptrace_session_create(engine(), &config, &session,
                                            nullptr));
        uptrace_session_set_ready(session, true, nullptr, nullptr);
        return session;
    }

    static void fill(uptrace_round *capture, const RoundSpec &r)
    {
        uptrace_round_set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW,
                               r.flow.data(), r.flow.size());
        uptrace_round_set_blob(capture, UPTRACE_BLOB_FINAL_FLOW,
                               r.final_flow.data(), r.final_flow.size());
        uptrace_round_set_blob(capture, UPTRACE_BLOB_MEGAFLOW,
                               r.megaflow.data(), r.megaflow.size());
        uptrace_round_set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS,
                               r.actions.data(), r.actions.size());
        uptrace_round_set_translation(capture, r.translation.c_str());
        uptrace_round_set_path(capture, r.path.c_str());
        uptrace_round_set_xlate_error(capture, r.xlate_error);
        if (r.has_ufid) {
            uptrace_round_set_ufid(capture, r.ufid);
        }
        if (r.has_install) {
            uptrace_round_set_install(capture, r.installed,
                                      r.install_reason);
        }
        if (r.slow_path) {
            uptrace_round_set_slow_path(capture, r.slow_path);
        }
        if (r.execute_error) {
            uptrace_round_set_execute_error(capture, r.execute_error);
        }
    }

    static struct uptrace_round_info info_of(const RoundSpec &r)
    {
        struct uptrace_round_info info = {};
        info.upcall_type = "miss";
        info.recirc_id = r.recirc_id;
        info.in_port = 1;
        info.in_port_name = r.in_port_name;
        info.datapath = "system@ovs-system";
        info.pmd_id = r.pmd_id;
        info.bridge = r.bridge;
        return info;
    }

    /* Stores a trace made of 'rounds' in 'session'; returns its id. */
    uint64_t store_trace(uptrace_session *session,
                         const std::vector<RoundSpec> &rounds,
                         bool partial = false)
    {
        static uint64_t invariant = 0;
        struct uptrace_fingerprint fp = {++invariant, 0, false};
        uptrace_round *capture = nullptr;
        for (size_t i = 0; i < rounds.size(); i++) {
            struct uptrace_round_info info = info_of(rounds[i]);
            if (!i) {
                capture = uptrace_round_begin(engine(), &session, 1,
                                              &info, partial);
            } else {
                capture = uptrace_round_continue(
                    engine(), rounds[i].recirc_id, &fp, &info);
            }
            EXPECT_TRUE(capture);
            if (!capture) {
                return 0;
            }
            if (i + 1 < rounds.size()) {
                uptrace_round_expect_recirc(capture,
                                            rounds[i + 1].recirc_id, &fp);
            }
            fill(capture, rounds[i]);
            uptrace_round_commit(capture);
            clock_.advance(5);
        }
        struct uptrace_session_status status;
        uptrace_session_get_status(session, &status);
        uint64_t id = status.last_trace_id;
        uptrace_session_status_uninit(&status);
        return id;
    }

    std::string get(uint64_t id,
                    enum uptrace_format format = UPTRACE_FORMAT_TEXT)
    {
        char *out = nullptr;
        char *error = nullptr;
        EXPECT_EQ(0, uptrace_engine_get(engine(), id, format, &out, &error))
            << take(error);
        return take(out);
    }

    std::string list(enum uptrace_format format = UPTRACE_FORMAT_TEXT,
                     const char *session = nullptr)
    {
        char *out = nullptr;
        EXPECT_EQ(0, uptrace_engine_list(engine(), session, format, &out,
                                         nullptr));
        return take(out);
    }

    std::string show(enum uptrace_format format = UPTRACE_FORMAT_TEXT)
    {
        char *out = nullptr;
        EXPECT_EQ(0, uptrace_engine_show(engine(), format, &out, nullptr));
        return take(out);
    }

    std::string summary(enum uptrace_format format = UPTRACE_FORMAT_TEXT)
    {
        char *out = nullptr;
        EXPECT_EQ(0, uptrace_engine_summary(engine(), nullptr, format, &out,
                                            nullptr));
        return take(out);
    }

    /* Two rounds exercising most of the layout. */
    std::vector<RoundSpec> two_rounds()
    {
        RoundSpec first;
        first.actions = "ct(zone=1),recirc(0x5)";
        first.translation = "\nbridge(\"br0\")\n-------------\n"
                            " 0. priority 0\n    ct(zone=1)\n";
        first.path = "table 0: priority 0, ct";
        first.has_ufid = true;
        uint32_t parts[4] = {0x01020304, 0x05060708, 0x090a0b0c,
                             0x0d0e0f10};
        memcpy(first.ufid, parts, sizeof parts);
        first.pmd_id = 3;

        RoundSpec second;
        second.recirc_id = 5;
        second.in_port_name = nullptr;
        second.flow = "in_port=1,tcp,ct_state=+trk";
        second.final_flow = "in_port=1,tcp,ct_state=+trk,reg0=0x1";
        second.megaflow = "recirc_id=0x5,ct_state=+trk,in_port=1";
        second.actions = "";
        second.translation = "\nbridge(\"br0\")\n-------------\n"
                             " 0. ct_state=+trk, priority 10\n"
                             "    resubmit(,0)";     /* No final \n. */
        second.path = "table 0: ct_state=+trk, priority 10\n"
                      "table 0: resubmit";
        second.xlate_error = "Too many resubmits";
        second.installed = false;
        second.install_reason = "translation failed";
        return {first, second};
    }

    FakeClock clock_;
    FormatterLog log_;
    std::unique_ptr<uptrace_engine, EngineDeleter> engine_;
};

inline std::string
hex_id(uint64_t id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "0x%" PRIx64, id);
    return buf;
}

} /* anonymous namespace */

#endif /* upcall-trace-engine-render-test.hh */
