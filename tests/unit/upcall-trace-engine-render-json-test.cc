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

/* Tests of the JSON rendering of the upcall trace engine
 * (upcall-trace-engine-render-json.cc): JSON that a strict parser accepts,
 * with the expected structure. */

#include <config.h>

#include "upcall-trace-engine-render-test.hh"

namespace {

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

} /* anonymous namespace */
