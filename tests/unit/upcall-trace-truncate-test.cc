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

/* Tests of the truncation of rounds by options:max-trace-size
 * (upcall-trace-truncate.cc), through a session. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

class UpcallTraceTruncateTest : public UpcallTraceEngineTest {
protected:
    /* Measures, on a session of its own, what an empty trace and a small
     * round (fill()) cost, to set limits that cut a round where a test
     * wants. */
    void measure(uint64_t *empty_trace, uint64_t *small_round)
    {
        uptrace_session *probe = create_session("probe");
        uptrace_round *capture = begin({probe});
        ASSERT_TRUE(capture);
        *empty_trace = status_of(probe).bytes;
        fill(capture);
        uptrace_round_commit(capture);
        *small_round = status_of(probe).bytes - *empty_trace;
    }
};

TEST_F(UpcallTraceTruncateTest, TruncationCutsAtLineBoundary)
{
    /* Measure what an empty trace and a small round cost, to set a limit
     * that cuts the second round in its middle. */
    uint64_t empty_trace, small_round;
    ASSERT_NO_FATAL_FAILURE(measure(&empty_trace, &small_round));
    uptrace_round *capture;

    std::string big;
    for (int i = 0; i < 100; i++) {
        big += "line " + std::to_string(1000 + i) + " of the translation\n";
    }
    const std::string small_translation = "\nbridge(\"br0\")\n";
    uint64_t max = 2 * small_round + big.size() / 2;

    uptrace_session *s = create_session("s", [max](uptrace_session_config
                                                    &c) {
        c.max_trace_size = max;
    });
    capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 4, fingerprint(1, 1));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;
    EXPECT_EQ(0u, status_of(s).n_truncated);

    capture = resume(4, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(1, 1));
    fill(capture, "in_port=1", "2", big);
    uptrace_round_commit(capture);

    Status st = status_of(s);
    EXPECT_EQ(1u, st.n_truncated);
    EXPECT_LE(st.bytes - empty_trace, max);

    std::string text = get(id);
    EXPECT_NE(std::string::npos, text.find(", 2 rounds, truncated) ==="))
        << text;
    std::string marker = "[trace truncated: max-trace-size "
                         + std::to_string(max) + " bytes reached]\n";
    size_t marker_pos = text.find(marker);
    ASSERT_NE(std::string::npos, marker_pos) << text;

    /* What precedes the marker is whole lines of the original. */
    size_t start = text.find("line 1000");
    ASSERT_NE(std::string::npos, start);
    std::string kept = text.substr(start, marker_pos - start);
    EXPECT_FALSE(kept.empty());
    EXPECT_EQ('\n', kept.back());
    EXPECT_EQ(0u, big.find(kept));
    EXPECT_LT(kept.size(), big.size());

    /* A third round finds no room: dropped, counted once. */
    capture = resume(5, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    fill(capture, "in_port=1", "2", big);
    uptrace_round_commit(capture);
    st = status_of(s);
    EXPECT_EQ(1u, st.n_truncated);
    EXPECT_EQ(2u, n_rounds(id));
    EXPECT_LE(st.bytes - empty_trace, max);

    /* Another trace is truncated on its own. */
    capture = begin({s});
    ASSERT_TRUE(capture);
    fill(capture, "in_port=1", "2", big + big + big);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, status_of(s).n_truncated);
}

/* However small max-trace-size is (ovs-vswitchd refuses less than
 * UPTRACE_MAX_TRACE_SIZE_MIN, the engine takes anything), a trace that is
 * counted can be read: its first round is kept, cut to the round itself,
 * and a later round that does not fit at all is counted as lost. */
TEST_F(UpcallTraceTruncateTest, TruncationNeverLeavesATraceEmpty)
{
    const std::string flow(700, 'f');
    for (enum uptrace_mode mode : {UPTRACE_MODE_CIRCULAR, UPTRACE_MODE_STOP}) {
        std::string name = mode == UPTRACE_MODE_STOP ? "stop" : "circular";
        uptrace_session *s = create_session(name.c_str(), [mode](
                                                uptrace_session_config &c) {
            c.max_trace_size = 100;
            c.mode = mode;
            c.max_traces = 1;
        });
        uptrace_round *capture = begin({s});
        ASSERT_TRUE(capture);
        expect_recirc(capture, 7, fingerprint(7, 7));
        fill(capture, flow, "2");
        uptrace_round_commit(capture);
        capture = resume(7, fingerprint(7, 7));
        ASSERT_TRUE(capture);
        fill(capture, flow, "2");
        uptrace_round_commit(capture);

        Status st = status_of(s);
        EXPECT_EQ(1u, st.n_traces);
        EXPECT_EQ(1u, st.n_truncated);
        EXPECT_EQ(mode == UPTRACE_MODE_STOP ? UPTRACE_STATE_FULL
                  : UPTRACE_STATE_ACTIVE, st.state);
        ASSERT_TRUE(exists(st.last_trace_id));
        std::string text = get(st.last_trace_id);
        EXPECT_NE(std::string::npos,
                  text.find("(session " + name + ", bridge br0, 1 round, "
                            "truncated, 1 round lost) ===\n"))
            << text;
        EXPECT_NE(std::string::npos, text.find(", truncated ---\n")) << text;
        EXPECT_NE(std::string::npos,
                  text.find("[trace truncated: max-trace-size 100 bytes "
                            "reached]\n"))
            << text;
        EXPECT_NE(std::string::npos,
                  text.find("Flow: <not kept: max-trace-size reached>\n"))
            << text;
        EXPECT_NE(std::string::npos, list(name.c_str()).find(
                      " truncated rounds_lost=1 <not kept: max-trace-size "
                      "reached> -> <not kept: max-trace-size reached>\n"))
            << list(name.c_str());

        std::string json = get(st.last_trace_id, UPTRACE_FORMAT_JSON);
        EXPECT_NE(std::string::npos, json.find("\"n_rounds_lost\":1,"))
            << json;
        EXPECT_NE(std::string::npos, json.find("\"flow\":null,")) << json;
        EXPECT_NE(std::string::npos,
                  json.find("\"datapath_actions\":null,")) << json;
    }
}

/* A later round with room for its header and some of its blobs keeps the
 * most useful of them, the flow first, and marks the others. */
TEST_F(UpcallTraceTruncateTest, TruncationKeepsTheBlobsThatFit)
{
    /* What a small round costs. */
    uint64_t empty_trace, small_round;
    ASSERT_NO_FATAL_FAILURE(measure(&empty_trace, &small_round));
    uptrace_round *capture;

    /* Room, after a small first round, for a small round and a bit more
     * than a 1000-byte flow, not for its actions too. */
    const std::string flow(1000, 'f'), actions(1000, 'a');
    uint64_t max = 2 * small_round + 1500;
    uptrace_session *s = create_session("s", [max](uptrace_session_config
                                                    &c) {
        c.max_trace_size = max;
    });
    capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 8, fingerprint(8, 8));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;
    capture = resume(8, fingerprint(8, 8));
    ASSERT_TRUE(capture);
    fill(capture, flow, actions);
    uptrace_round_commit(capture);

    Status st = status_of(s);
    EXPECT_EQ(1u, st.n_truncated);
    EXPECT_LE(st.bytes - empty_trace, max);
    std::string text = get(id);
    EXPECT_NE(std::string::npos, text.find("2 rounds, truncated) ===\n"))
        << text;
    size_t round2 = text.find("--- Round 2: ");
    ASSERT_NE(std::string::npos, round2) << text;
    /* The first round is whole. */
    EXPECT_EQ(std::string::npos,
              text.substr(0, round2).find("truncated ---")) << text;
    std::string second = text.substr(round2);
    EXPECT_NE(std::string::npos, second.find(", truncated ---\n")) << text;
    /* The flow, in hex without a formatter. */
    EXPECT_NE(std::string::npos, second.find("Flow: 666666")) << text;
    EXPECT_NE(std::string::npos,
              second.find("Final flow: <not kept: max-trace-size reached>\n"
                          "Megaflow: <not kept: max-trace-size reached>\n"
                          "Datapath actions: <not kept: max-trace-size "
                          "reached>\n"))
        << text;

    std::string json = get(id, UPTRACE_FORMAT_JSON);
    EXPECT_NE(std::string::npos, json.find("\"megaflow\":null,")) << json;
    EXPECT_NE(std::string::npos, json.find("\"n_rounds_lost\":0,")) << json;
    EXPECT_NE(std::string::npos, json.find("\"truncated\":false,")) << json;
    EXPECT_NE(std::string::npos, json.find("\"truncated\":true,")) << json;
}

/* Ids. */

/* A round captured as a tree keeps the whole nodes that fit, then the
 * marker. */
TEST_F(UpcallTraceTruncateTest, TruncationKeepsWholeNodes)
{
    const uint64_t max = 3000;
    uptrace_session *s = create_session("s", [max](uptrace_session_config
                                                    &c) {
        c.max_trace_size = max;
    });
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    fill(capture, "in_port=1", "2", "");
    uptrace_round_add_node(capture, UPTRACE_NODE_BRIDGE, 0,
                           "bridge(\"br0\")", 13);
    for (int i = 0; i < 100; i++) {
        std::string text = " " + std::to_string(i) + ". priority "
                           + std::to_string(1000 + i);
        uptrace_round_add_node(capture, UPTRACE_NODE_TABLE, 1,
                               text.data(), text.size());
    }
    uptrace_round_commit(capture);

    Status st = status_of(s);
    EXPECT_EQ(1u, st.n_truncated);
    std::string text = get(st.last_trace_id);
    size_t marker = text.find("[trace truncated: max-trace-size 3000 "
                              "bytes reached]\n");
    ASSERT_NE(std::string::npos, marker) << text;
    /* Whole nodes, in order, from the first, then the marker. */
    size_t start = text.find("\nbridge(\"br0\")\n");
    ASSERT_NE(std::string::npos, start) << text;
    size_t n = count_substrings(text.substr(start, marker - start),
                                ". priority ");
    EXPECT_GT(n, 0u);
    EXPECT_LT(n, 100u);
    EXPECT_NE(std::string::npos,
              text.find(" " + std::to_string(n - 1) + ". priority "
                        + std::to_string(1000 + n - 1) + "\n"
                        + "[trace truncated"))
        << text;
}

} /* anonymous namespace */
