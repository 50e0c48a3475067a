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

/* Tests of the text rendering of the upcall trace engine
 * (upcall-trace-engine-render.cc): exact text layouts, and the helpers the
 * text and JSON renderings share. */

#include <config.h>

#include "upcall-trace-engine-render-test.hh"

namespace {

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
