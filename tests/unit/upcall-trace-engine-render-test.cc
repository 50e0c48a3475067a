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

/* Tests of the rendering of the upcall trace engine
 * (upcall-trace-engine-render.cc): exact text layouts and JSON that a
 * strict parser accepts, with the expected structure. */

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
JsonValue
parse_json(const std::string &text)
{
    JsonValue value;
    std::string error;
    EXPECT_TRUE(JsonParser(text).parse(&value, &error))
        << error << " in:\n" << text;
    return value;
}

bool
is_valid_json(const std::string &text)
{
    JsonValue value;
    std::string error;
    return JsonParser(text).parse(&value, &error);
}

/* The parser itself must reject what is not JSON, or the tests below prove
 * nothing. */
TEST(UpcallTraceJsonParserTest, RejectsInvalidJson)
{
    EXPECT_TRUE(is_valid_json("{\"a\":[1,-2.5e3,true,false,null,\"x\"]}"));
    EXPECT_TRUE(is_valid_json("\"\\ud83d\\ude00 \\u00e9\""));
    for (const char *bad : {"", "{", "{\"a\":1,}", "[1,]", "{'a':1}",
                            "\"\x01\"", "\"\\x\"", "01", "1.", "{\"a\" 1}",
                            "{\"a\":1,\"a\":2}", "[1] 2", "\"\xff\"",
                            "\"\\ud800\"", "nul", "\"\xc0\xaf\""}) {
        EXPECT_FALSE(is_valid_json(bad)) << bad;
    }
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

int64_t
fake_monotonic(void *aux)
{
    return static_cast<FakeClock *>(aux)->monotonic;
}

int64_t
fake_wall(void *aux)
{
    return static_cast<FakeClock *>(aux)->wall;
}

/* Formats every blob as its bytes, except that "unformattable" fails, and
 * records the bridge it was asked about. */
struct FormatterLog {
    std::vector<std::string> bridges;
};

char *
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

std::string
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

    static void fill(uptrace_capture *capture, const RoundSpec &r)
    {
        uptrace_capture_set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW,
                                 r.flow.data(), r.flow.size());
        uptrace_capture_set_blob(capture, UPTRACE_BLOB_FINAL_FLOW,
                                 r.final_flow.data(), r.final_flow.size());
        uptrace_capture_set_blob(capture, UPTRACE_BLOB_MEGAFLOW,
                                 r.megaflow.data(), r.megaflow.size());
        uptrace_capture_set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS,
                                 r.actions.data(), r.actions.size());
        uptrace_capture_set_translation(capture, r.translation.c_str());
        uptrace_capture_set_path(capture, r.path.c_str());
        uptrace_capture_set_xlate_error(capture, r.xlate_error);
        if (r.has_ufid) {
            uptrace_capture_set_ufid(capture, r.ufid);
        }
        if (r.has_install) {
            uptrace_capture_set_install(capture, r.installed,
                                        r.install_reason);
        }
        if (r.slow_path) {
            uptrace_capture_set_slow_path(capture, r.slow_path);
        }
        if (r.execute_error) {
            uptrace_capture_set_execute_error(capture, r.execute_error);
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
        uptrace_capture *capture = nullptr;
        for (size_t i = 0; i < rounds.size(); i++) {
            struct uptrace_round_info info = info_of(rounds[i]);
            if (!i) {
                capture = uptrace_capture_begin(engine(), &session, 1,
                                                &info, partial);
            } else {
                capture = uptrace_capture_continue(
                    engine(), rounds[i].recirc_id, &fp, &info);
            }
            EXPECT_TRUE(capture);
            if (!capture) {
                return 0;
            }
            if (i + 1 < rounds.size()) {
                uptrace_capture_expect_recirc(capture,
                                              rounds[i + 1].recirc_id, &fp);
            }
            fill(capture, rounds[i]);
            uptrace_capture_commit(capture);
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

std::string
hex_id(uint64_t id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "0x%" PRIx64, id);
    return buf;
}

TEST_F(UpcallTraceRenderTest, GetTextKeepsOfprotoTraceLayout)
{
    uptrace_session *s = create_session("web");
    uint64_t id = store_trace(s, two_rounds(), true);

    const std::string expected =
        "=== Trace " + hex_id(id) + " (session web, bridge br0, 2 rounds,"
        " partial) ===\n"
        "--- Round 1: recirc_id=0x0, upcall=miss, in_port=p1(1),"
        " 2026-11-26T12:00:00.123Z ---\n"
        "Flow: in_port=1,tcp\n"
        "\n"
        "bridge(\"br0\")\n"
        "-------------\n"
        " 0. priority 0\n"
        "    ct(zone=1)\n"
        "\n"
        "Final flow: unchanged\n"
        "Megaflow: recirc_id=0,in_port=1,tcp\n"
        "Datapath actions: ct(zone=1),recirc(0x5)\n"
        "UFID: ufid:01020304-0506-0708-090a-0b0c0d0e0f10 (installed)\n"
        "\n"
        "--- Round 2: recirc_id=0x5, upcall=miss, in_port=1,"
        " 2026-11-26T12:00:00.128Z ---\n"
        "Flow: in_port=1,tcp,ct_state=+trk\n"
        "\n"
        "bridge(\"br0\")\n"
        "-------------\n"
        " 0. ct_state=+trk, priority 10\n"
        "    resubmit(,0)\n"
        "\n"
        "Final flow: in_port=1,tcp,ct_state=+trk,reg0=0x1\n"
        "Megaflow: recirc_id=0x5,ct_state=+trk,in_port=1\n"
        "Datapath actions: drop\n"
        "Translation failed (Too many resubmits), packet is dropped.\n"
        "UFID: none (not installed: translation failed)\n"
        /* Round 1 installed a flow: its life follows the rounds. */
        "--- Datapath flow of round 1:"
        " ufid:01020304-0506-0708-090a-0b0c0d0e0f10 ---\n"
        "Installed: 2026-11-26T12:00:00.123Z\n"
        "Since: 0 packets, 0 bytes\n"
        "State: in the datapath\n";
    EXPECT_EQ(expected, get(id));

    /* The formatter is called at read time, with the round's bridge. */
    ASSERT_FALSE(log_.bridges.empty());
    for (const std::string &bridge : log_.bridges) {
        EXPECT_EQ("br0", bridge);
    }
}

TEST_F(UpcallTraceRenderTest, RoundOnAnotherBridgeAndSlowPathExplained)
{
    uptrace_session *s = create_session("patch");
    std::vector<RoundSpec> rounds = two_rounds();
    rounds[0].bridge = "br0";
    rounds[1].bridge = "br1";       /* Resumed after a patch port. */
    rounds[1].xlate_error = nullptr;
    rounds[1].actions = "userspace(pid=0,slow_path(controller))";
    rounds[1].slow_path = "This flow is handled by the userspace slow path"
                          " because it:\n  - Sends \"packet-in\" messages"
                          " to the OpenFlow controller.";
    rounds[1].installed = true;
    rounds[1].install_reason = nullptr;
    log_.bridges.clear();
    uint64_t id = store_trace(s, rounds);

    std::string text = get(id);
    EXPECT_NE(std::string::npos,
              text.find("(session patch, bridge br0, 2 rounds)"));
    EXPECT_NE(std::string::npos,
              text.find("--- Round 1: recirc_id=0x0, upcall=miss,"
                        " in_port=p1(1),"));
    EXPECT_NE(std::string::npos,
              text.find("--- Round 2: recirc_id=0x5, upcall=miss,"
                        " bridge=br1, in_port=1,"));
    EXPECT_NE(std::string::npos,
              text.find("Datapath actions: userspace(pid=0,"
                        "slow_path(controller))\n"
                        "This flow is handled by the userspace slow path"
                        " because it:\n"
                        "  - Sends \"packet-in\" messages to the OpenFlow"
                        " controller.\n"
                        "UFID: none (installed)\n"));
    /* The formatter names each round's ports with its own bridge. */
    EXPECT_NE(log_.bridges.end(),
              std::find(log_.bridges.begin(), log_.bridges.end(), "br1"));

    JsonValue json = parse_json(get(id, UPTRACE_FORMAT_JSON));
    EXPECT_EQ("br0", json["bridge"].string);
    EXPECT_EQ("br0", json["rounds"][0]["bridge"].string);
    EXPECT_EQ("br1", json["rounds"][1]["bridge"].string);
    EXPECT_TRUE(json["rounds"][0]["slow_path"].is_null());
    EXPECT_EQ(std::string(rounds[1].slow_path),
              json["rounds"][1]["slow_path"].string);
}

TEST_F(UpcallTraceRenderTest, GetTextSingleRoundAndTruncatedMarks)
{
    uptrace_session *s = create_session("one");
    RoundSpec r;
    r.has_install = false;
    uint64_t id = store_trace(s, {r});
    std::string text = get(id);
    EXPECT_EQ(0u, text.find("=== Trace " + hex_id(id)
                            + " (session one, bridge br0, 1 round) ===\n"))
        << text;
    /* No install outcome: no parenthesis. */
    EXPECT_NE(std::string::npos, text.find("\nUFID: none\n")) << text;

    /* oftrace_node_print_details() output has no blank lines around it:
     * ofproto/trace's are added, never doubled. */
    for (const char *translation : {"bridge(\"br0\")\n",
                                    "\nbridge(\"br0\")\n\n"}) {
        r.translation = translation;
        id = store_trace(s, {r});
        EXPECT_NE(std::string::npos, get(id).find(
                      "\nFlow: in_port=1,tcp\n"
                      "\n"
                      "bridge(\"br0\")\n"
                      "\n"
                      "Final flow: unchanged\n"))
            << get(id);
    }

    /* A trace cut by max-trace-size says so. */
    uptrace_session *small = create_session("small", 2048);
    r.translation.clear();
    for (int i = 0; i < 100; i++) {
        r.translation += " 0. priority 0, a line long enough to matter\n";
    }
    id = store_trace(small, {r});
    text = get(id);
    EXPECT_EQ(0u, text.find("=== Trace " + hex_id(id)));
    EXPECT_NE(std::string::npos, text.find(
                  "(session small, bridge br0, 1 round, truncated) ==="))
        << text;
}

TEST_F(UpcallTraceRenderTest, BlobsInHexWithoutFormatter)
{
    make_engine(false);
    uptrace_session *s = create_session("hex");
    RoundSpec r;
    r.flow = std::string("\x01\xab\x00\xff", 4);
    r.final_flow = "x";
    r.megaflow = "";
    r.actions = "\x10";
    uint64_t id = store_trace(s, {r});
    std::string text = get(id);
    EXPECT_NE(std::string::npos, text.find("\nFlow: 01ab00ff\n")) << text;
    EXPECT_NE(std::string::npos, text.find("\nFinal flow: 78\n")) << text;
    EXPECT_NE(std::string::npos, text.find("\nMegaflow: \n")) << text;
    EXPECT_NE(std::string::npos, text.find("\nDatapath actions: 10\n"))
        << text;

    /* A formatter that fails falls back to hex too. */
    make_engine(true);
    s = create_session("fallback");
    r = RoundSpec();
    r.flow = "unformattable";
    id = store_trace(s, {r});
    EXPECT_NE(std::string::npos,
              get(id).find("\nFlow: 756e666f726d61747461626c65\n"));
}

TEST_F(UpcallTraceRenderTest, ListText)
{
    EXPECT_EQ("No upcall traces.\n", list());

    uptrace_session *s = create_session("web");
    uint64_t a = store_trace(s, two_rounds(), true);
    RoundSpec r;
    r.flow = std::string(150, 'f');
    uint64_t b = store_trace(s, {r});

    const std::string expected =
        hex_id(a) + " 12:00:00.123 session=web bridge=br0 in_port=p1(1)"
        " rounds=2 partial in_port=1,tcp -> DROP\n"
        + hex_id(b) + " 12:00:00.133 session=web bridge=br0 in_port=p1(1)"
        " rounds=1 " + std::string(97, 'f') + "... -> 2\n";
    EXPECT_EQ(expected, list());
}

TEST_F(UpcallTraceRenderTest, SummaryGroupsByPathMostFrequentFirst)
{
    EXPECT_EQ("No upcall traces.\n", summary());

    uptrace_session *s = create_session("web");
    RoundSpec forward;
    RoundSpec other_flow = forward;
    other_flow.flow = "in_port=1,udp";      /* Same path and actions. */
    uint64_t drop_id = store_trace(s, two_rounds());
    store_trace(s, {forward});
    store_trace(s, {other_flow});
    uint64_t newest = store_trace(s, {forward});

    const std::string expected =
        "4 traces, 2 distinct paths, most frequent first:\n"
        "\n"
        "Path 1: 3 traces, e.g. " + hex_id(newest) + "\n"
        "  Round 1:\n"
        "    table 0: priority 0, output:2\n"
        "    Datapath actions: 2\n"
        "\n"
        "Path 2: 1 trace, e.g. " + hex_id(drop_id) + " *** DROP ***\n"
        "  Round 1:\n"
        "    table 0: priority 0, ct\n"
        "    Datapath actions: ct(zone=1),recirc(0x5)\n"
        "  Round 2:\n"
        "    table 0: ct_state=+trk, priority 10\n"
        "    table 0: resubmit\n"
        "    Datapath actions: DROP\n";
    EXPECT_EQ(expected, summary());

    JsonValue json = parse_json(summary(UPTRACE_FORMAT_JSON));
    EXPECT_EQ(4, json["n_traces"].number);
    const JsonValue &paths = json["paths"];
    ASSERT_EQ(2u, paths.array.size());
    EXPECT_EQ(3, paths[0]["count"].number);
    EXPECT_EQ(static_cast<double>(newest),
              paths[0]["example_trace_id"].number);
    EXPECT_FALSE(paths[0]["drop"].boolean);
    EXPECT_EQ(1u, paths[0]["rounds"].array.size());
    EXPECT_EQ("table 0: priority 0, output:2",
              paths[0]["rounds"][0]["path"].string);
    EXPECT_EQ("2", paths[0]["rounds"][0]["datapath_actions"].string);
    EXPECT_TRUE(paths[1]["drop"].boolean);
    EXPECT_EQ(2u, paths[1]["rounds"].array.size());
    EXPECT_EQ("drop", paths[1]["rounds"][1]["datapath_actions"].string);
}

TEST_F(UpcallTraceRenderTest, SummaryIgnoresRecircIds)
{
    /* The same pipeline before and after its datapath flows were purged
     * allocates another recirculation id: still one path. */
    uptrace_session *s = create_session("web");
    std::vector<RoundSpec> again = two_rounds();
    again[0].actions = "ct(zone=1),recirc(0x9)";
    again[1].recirc_id = 9;
    store_trace(s, two_rounds());
    uint64_t newest = store_trace(s, again);

    JsonValue json = parse_json(summary(UPTRACE_FORMAT_JSON));
    const JsonValue &paths = json["paths"];
    ASSERT_EQ(1u, paths.array.size());
    EXPECT_EQ(2, paths[0]["count"].number);
    /* Shown as the first trace of the path has them. */
    EXPECT_EQ("ct(zone=1),recirc(0x5)",
              paths[0]["rounds"][0]["datapath_actions"].string);
    EXPECT_NE(std::string::npos,
              summary().find("Path 1: 2 traces, e.g. " + hex_id(newest)));
}

TEST_F(UpcallTraceRenderTest, ShowText)
{
    EXPECT_EQ("No upcall trace sessions.\n", show());

    struct uptrace_session_config config;
    uptrace_session_config_init(&config);
    config.name = "web";
    config.bridge = "br0";
    config.port = "p1";
    config.filter = "tcp,tp_dst=80";
    config.max_traces = 10;
    config.mode = UPTRACE_MODE_STOP;
    config.retention_ms = 60000;
    config.max_rate = 5;
    config.max_trace_size = 65536;
    config.duration_ms = 3600000;
    uptrace_session *web = nullptr;
    ASSERT_EQ(0, uptrace_session_create(engine(), &config, &web, nullptr));
    uptrace_session_set_ready(web, false, "no port named p1", nullptr);
    uptrace_session *bad = create_session("bad");
    uptrace_session_set_ready(bad, false, nullptr, "bad filter: foo=1");
    uptrace_session *ok = create_session("ok");
    uint64_t id = store_trace(ok, {RoundSpec()});

    std::string text = show();
    /* Sessions in name order. */
    EXPECT_LT(text.find("Session bad:"), text.find("Session ok:"));
    EXPECT_LT(text.find("Session ok:"), text.find("Session web:"));
    EXPECT_NE(std::string::npos, text.find(
                  "Session web:\n"
                  "  bridge: br0, port: p1\n"
                  "  filter: tcp,tp_dst=80\n"
                  "  state: waiting (no port named p1)\n"
                  "  config: enabled=true max-traces=10 mode=stop"
                  " retention=60000ms max-rate=5/s max-trace-size=65536B"
                  " duration=3600000ms\n"
                  "  counters: n_matched=0 n_traces=0 n_traces_total=0"
                  " n_evicted=0 n_expired=0 n_rate_limited=0"
                  " n_truncated=0 n_dropped_full=0\n"
                  "  last trace: none\n"
                  "  memory: 0 bytes\n")) << text;
    EXPECT_NE(std::string::npos,
              text.find("  state: error (bad filter: foo=1)\n")) << text;
    EXPECT_NE(std::string::npos, text.find(
                  "Session ok:\n"
                  "  bridge: br0, port: any\n"
                  "  filter: (none)\n"
                  "  state: active\n"
                  "  config: enabled=true max-traces=64 mode=circular"
                  " retention=none max-rate=unlimited"
                  " max-trace-size=unlimited duration=none\n"
                  "  counters: n_matched=1 n_traces=1 n_traces_total=1"
                  " n_evicted=0 n_expired=0 n_rate_limited=0"
                  " n_truncated=0 n_dropped_full=0\n"
                  "  last trace: " + hex_id(id)
                  + " at 2026-11-26T12:00:00.123Z\n")) << text;
}

TEST_F(UpcallTraceRenderTest, ShowJson)
{
    JsonValue empty = parse_json(show(UPTRACE_FORMAT_JSON));
    EXPECT_EQ(JsonValue::Type::Array, empty["sessions"].type);
    EXPECT_TRUE(empty["sessions"].array.empty());

    uptrace_session *web = create_session("web");
    uptrace_session_set_ready(web, false, "no bridge named br0", nullptr);
    uptrace_session *ok = create_session("ok");
    uint64_t id = store_trace(ok, {RoundSpec()});

    JsonValue json = parse_json(show(UPTRACE_FORMAT_JSON));
    const JsonValue &sessions = json["sessions"];
    ASSERT_EQ(2u, sessions.array.size());
    const JsonValue &o = sessions[0];
    EXPECT_EQ("ok", o["name"].string);
    EXPECT_EQ("br0", o["bridge"].string);
    EXPECT_TRUE(o["port"].is_null());
    EXPECT_EQ("", o["filter"].string);
    EXPECT_EQ("active", o["state"].string);
    EXPECT_TRUE(o["error"].is_null());
    EXPECT_TRUE(o["config"]["enabled"].boolean);
    EXPECT_EQ(64, o["config"]["max_traces"].number);
    EXPECT_EQ("circular", o["config"]["mode"].string);
    EXPECT_EQ(0, o["config"]["retention_ms"].number);
    EXPECT_EQ(0, o["config"]["max_rate"].number);
    EXPECT_EQ(0, o["config"]["max_trace_size"].number);
    EXPECT_EQ(0, o["config"]["duration_ms"].number);
    for (const char *counter : {"n_matched", "n_traces", "n_traces_total"}) {
        EXPECT_EQ(1, o["counters"][counter].number) << counter;
    }
    for (const char *counter : {"n_evicted", "n_expired", "n_rate_limited",
                                "n_truncated", "n_dropped_full"}) {
        EXPECT_EQ(0, o["counters"][counter].number) << counter;
    }
    EXPECT_EQ(static_cast<double>(id), o["last_trace_id"].number);
    EXPECT_EQ(static_cast<double>(WALL_START_MS),
              o["last_trace_time_ms"].number);
    EXPECT_GT(o["bytes"].number, 0);

    const JsonValue &w = sessions[1];
    EXPECT_EQ("waiting", w["state"].string);
    EXPECT_EQ("no bridge named br0", w["error"].string);
    EXPECT_TRUE(w["last_trace_id"].is_null());
}

TEST_F(UpcallTraceRenderTest, ListJson)
{
    JsonValue empty = parse_json(list(UPTRACE_FORMAT_JSON));
    EXPECT_TRUE(empty["traces"].array.empty());

    uptrace_session *s = create_session("web");
    uint64_t id = store_trace(s, two_rounds(), true);
    JsonValue json = parse_json(list(UPTRACE_FORMAT_JSON));
    ASSERT_EQ(1u, json["traces"].array.size());
    const JsonValue &t = json["traces"][0];
    EXPECT_EQ(static_cast<double>(id), t["id"].number);
    EXPECT_EQ("web", t["session"].string);
    EXPECT_EQ("br0", t["bridge"].string);
    EXPECT_EQ(static_cast<double>(WALL_START_MS), t["time_ms"].number);
    EXPECT_EQ("2026-11-26T12:00:00.123Z", t["time"].string);
    EXPECT_EQ(1, t["in_port"].number);
    EXPECT_EQ("p1", t["in_port_name"].string);
    EXPECT_EQ(2, t["n_rounds"].number);
    EXPECT_TRUE(t["partial"].boolean);
    EXPECT_FALSE(t["truncated"].boolean);
    EXPECT_EQ("in_port=1,tcp", t["flow"].string);
    EXPECT_EQ("drop", t["actions"].string);
    EXPECT_TRUE(t["drop"].boolean);
}

/* A round whose actions the datapath failed to execute says so after its
 * UFID, as the install outcome says why a flow was refused. */
TEST_F(UpcallTraceRenderTest, FailedExecuteRecorded)
{
    uptrace_session *s = create_session("exec");
    std::vector<RoundSpec> rounds = two_rounds();
    rounds[1].xlate_error = nullptr;
    rounds[1].actions = "ct(commit,zone=1,helper=tftp),2";
    rounds[1].installed = false;
    rounds[1].install_reason = "the datapath refused the flow "
                               "(Invalid argument)";
    rounds[1].execute_error = "the datapath failed to execute the actions "
                              "(Invalid argument)";
    uint64_t id = store_trace(s, rounds);

    std::string text = get(id);
    EXPECT_NE(std::string::npos,
              text.find("UFID: none (not installed: the datapath refused "
                        "the flow (Invalid argument))\n"
                        "Execute: the datapath failed to execute the "
                        "actions (Invalid argument)\n"))
        << text;
    EXPECT_EQ(text.find("Execute: "), text.rfind("Execute: ")) << text;

    JsonValue json = parse_json(get(id, UPTRACE_FORMAT_JSON));
    EXPECT_TRUE(json["rounds"][0]["execute_error"].is_null());
    EXPECT_EQ(std::string(rounds[1].execute_error),
              json["rounds"][1]["execute_error"].string);
}

TEST_F(UpcallTraceRenderTest, GetJson)
{
    uptrace_session *s = create_session("web");
    uint64_t id = store_trace(s, two_rounds(), true);
    JsonValue json = parse_json(get(id, UPTRACE_FORMAT_JSON));

    EXPECT_EQ(static_cast<double>(id), json["id"].number);
    EXPECT_EQ("web", json["session"].string);
    EXPECT_EQ("br0", json["bridge"].string);
    EXPECT_TRUE(json["partial"].boolean);
    EXPECT_FALSE(json["truncated"].boolean);
    EXPECT_EQ(0, json["n_rounds_lost"].number);
    EXPECT_EQ(2, json["n_rounds"].number);
    ASSERT_EQ(2u, json["rounds"].array.size());

    const JsonValue &r1 = json["rounds"][0];
    EXPECT_EQ(1, r1["index"].number);
    EXPECT_EQ(0, r1["recirc_id"].number);
    EXPECT_EQ("miss", r1["upcall_type"].string);
    EXPECT_EQ(1, r1["in_port"].number);
    EXPECT_EQ("p1", r1["in_port_name"].string);
    EXPECT_EQ("system@ovs-system", r1["datapath"].string);
    EXPECT_EQ(3, r1["pmd_id"].number);
    EXPECT_EQ(static_cast<double>(WALL_START_MS), r1["time_ms"].number);
    EXPECT_EQ("2026-11-26T12:00:00.123Z", r1["time"].string);
    EXPECT_EQ("in_port=1,tcp", r1["flow"].string);
    EXPECT_EQ(two_rounds()[0].translation, r1["translation"].string);
    EXPECT_EQ("in_port=1,tcp", r1["final_flow"].string);
    EXPECT_TRUE(r1["final_flow_unchanged"].boolean);
    EXPECT_EQ("recirc_id=0,in_port=1,tcp", r1["megaflow"].string);
    EXPECT_EQ("ct(zone=1),recirc(0x5)", r1["datapath_actions"].string);
    EXPECT_FALSE(r1["drop"].boolean);
    EXPECT_TRUE(r1["xlate_error"].is_null());
    EXPECT_EQ("ufid:01020304-0506-0708-090a-0b0c0d0e0f10",
              r1["ufid"].string);
    EXPECT_TRUE(r1["installed"].boolean);
    EXPECT_TRUE(r1["install_reason"].is_null());
    EXPECT_TRUE(r1["execute_error"].is_null());
    EXPECT_FALSE(r1["truncated"].boolean);

    const JsonValue &r2 = json["rounds"][1];
    EXPECT_EQ(2, r2["index"].number);
    EXPECT_EQ(5, r2["recirc_id"].number);
    EXPECT_TRUE(r2["in_port_name"].is_null());
    EXPECT_TRUE(r2["pmd_id"].is_null());
    EXPECT_FALSE(r2["final_flow_unchanged"].boolean);
    EXPECT_EQ("drop", r2["datapath_actions"].string);
    EXPECT_TRUE(r2["drop"].boolean);
    EXPECT_EQ("Too many resubmits", r2["xlate_error"].string);
    EXPECT_TRUE(r2["ufid"].is_null());
    EXPECT_FALSE(r2["installed"].boolean);
    EXPECT_EQ("translation failed", r2["install_reason"].string);
}

TEST_F(UpcallTraceRenderTest, JsonEscapesEverything)
{
    /* Names and texts with quotes, backslashes, control characters, valid
     * and invalid UTF-8 survive a round trip through a strict parser. */
    const char *name = "we\"b\\\x01\t";
    struct uptrace_session_config config;
    uptrace_session_config_init(&config);
    config.name = name;
    config.bridge = "br\xc3\xa9";           /* "bré". */
    config.filter = "a\nb\x7f";
    uptrace_session *s = nullptr;
    ASSERT_EQ(0, uptrace_session_create(engine(), &config, &s, nullptr));
    uptrace_session_set_ready(s, true, nullptr, nullptr);

    RoundSpec r;
    r.translation = "quote\" backslash\\ nl\n cr\r bs\b ff\f nul-ish\x1f"
                    " emoji\xf0\x9f\x98\x80 bad\xff\xfe surrogate\xed\xa0\x80"
                    " overlong\xc0\xaf end";
    r.in_port_name = "p\"1";
    uint64_t id = store_trace(s, {r});

    JsonValue get_json = parse_json(get(id, UPTRACE_FORMAT_JSON));
    EXPECT_EQ(name, get_json["session"].string);
    const std::string replacement = "\xef\xbf\xbd";
    EXPECT_EQ("quote\" backslash\\ nl\n cr\r bs\b ff\f nul-ish\x1f"
              " emoji\xf0\x9f\x98\x80 bad" + replacement + replacement
              + " surrogate" + replacement + replacement + replacement
              + " overlong" + replacement + replacement + " end",
              get_json["rounds"][0]["translation"].string);
    EXPECT_EQ("p\"1", get_json["rounds"][0]["in_port_name"].string);

    JsonValue show_json = parse_json(show(UPTRACE_FORMAT_JSON));
    EXPECT_EQ(name, show_json["sessions"][0]["name"].string);
    EXPECT_EQ("br\xc3\xa9", show_json["sessions"][0]["bridge"].string);
    EXPECT_EQ("a\nb\x7f", show_json["sessions"][0]["filter"].string);

    parse_json(list(UPTRACE_FORMAT_JSON));
    parse_json(summary(UPTRACE_FORMAT_JSON));
}

TEST(UpcallTraceRenderHelpersTest, JsonEscape)
{
    EXPECT_EQ("plain", uptrace::json_escape("plain"));
    EXPECT_EQ("\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f",
              uptrace::json_escape("\"\\\n\r\t\b\f\x01\x1f"));
    EXPECT_EQ("/\x7f", uptrace::json_escape("/\x7f"));
    EXPECT_EQ("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
              uptrace::json_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    EXPECT_EQ("\\ufffd", uptrace::json_escape("\xff"));
    EXPECT_EQ("\\ufffd", uptrace::json_escape("\xc3"));   /* Cut short. */
    EXPECT_EQ("\\ufffd\\ufffdA", uptrace::json_escape("\xe2\x82" "A"));
    EXPECT_EQ("\\ufffd\\ufffd\\ufffd\\ufffd",
              uptrace::json_escape("\xf4\x90\x80\x80"));   /* > U+10FFFF. */
    EXPECT_EQ(std::string("\\u0000", 6),
              uptrace::json_escape(std::string(1, '\0')));
}

TEST(UpcallTraceRenderHelpersTest, WithoutRecircIds)
{
    EXPECT_EQ("ct(zone=1),recirc(*)",
              uptrace::without_recirc_ids("ct(zone=1),recirc(0x1f)"));
    EXPECT_EQ("clone(recirc(*)),recirc(*),2",
              uptrace::without_recirc_ids("clone(recirc(0x2)),recirc(0x3),2"));
    EXPECT_EQ("2,3", uptrace::without_recirc_ids("2,3"));
    EXPECT_EQ("recirc(0x1", uptrace::without_recirc_ids("recirc(0x1"));
}

TEST(UpcallTraceRenderHelpersTest, FormatTime)
{
    EXPECT_EQ("2026-11-26T12:00:00.123Z",
              uptrace::format_time_iso8601(WALL_START_MS));
    EXPECT_EQ("1970-01-01T00:00:00.000Z", uptrace::format_time_iso8601(0));
    EXPECT_EQ("1969-12-31T23:59:59.999Z", uptrace::format_time_iso8601(-1));
}

TEST(UpcallTraceRenderHelpersTest, FormatUfidLikeOvs)
{
    /* OVS prints an ovs_u128 ufid from its 32-bit words, in host order. */
    uint32_t parts[4] = {0xdeadbeef, 0x01234567, 0x89abcdef, 0x00000001};
    std::array<uint8_t, 16> ufid;
    memcpy(ufid.data(), parts, sizeof parts);
    EXPECT_EQ("ufid:deadbeef-0123-4567-89ab-cdef00000001",
              uptrace::format_ufid(ufid));
}

} /* anonymous namespace */
