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

/* Tests of one session of the upcall trace engine
 * (upcall-trace-session.cc): bounds, retention, rate, truncation, ids. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

/* Bounds. */

TEST_F(UpcallTraceEngineTest, CircularModeEvictsOldest)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.max_traces = 3;
    });
    std::vector<uint64_t> ids;
    for (int i = 0; i < 5; i++) {
        ids.push_back(trace_one(s));
        ASSERT_NE(0u, ids.back());
    }

    Status st = status_of(s);
    EXPECT_EQ(UPTRACE_STATE_ACTIVE, st.state);
    EXPECT_EQ(5u, st.n_matched);
    EXPECT_EQ(3u, st.n_traces);
    EXPECT_EQ(5u, st.n_traces_total);
    EXPECT_EQ(2u, st.n_evicted);
    EXPECT_EQ(ids[4], st.last_trace_id);
    EXPECT_EQ(WALL_START_MS, st.last_trace_time);
    EXPECT_FALSE(exists(ids[0]));
    EXPECT_FALSE(exists(ids[1]));
    for (int i = 2; i < 5; i++) {
        EXPECT_TRUE(exists(ids[i]));
    }

    /* Oldest first. */
    std::string text = list();
    char buf[3][32];
    for (int i = 0; i < 3; i++) {
        snprintf(buf[i], sizeof buf[i], "0x%llx ",
                 static_cast<unsigned long long>(ids[i + 2]));
    }
    EXPECT_EQ(0u, text.find(buf[0])) << text;
    EXPECT_LT(text.find(buf[0]), text.find(buf[1]));
    EXPECT_LT(text.find(buf[1]), text.find(buf[2]));
    EXPECT_EQ(3u, count_substrings(text, "\n"));
}

TEST_F(UpcallTraceEngineTest, StopModeRefusesWhenFull)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.max_traces = 2;
        c.mode = UPTRACE_MODE_STOP;
    });

    uptrace_round *first = begin({s});
    ASSERT_TRUE(first);
    expect_recirc(first, 7, fingerprint(1, 1));
    fill(first);
    uptrace_round_commit(first);
    uint64_t first_id = status_of(s).last_trace_id;

    EXPECT_NE(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));

    Status st = status_of(s);
    EXPECT_EQ(UPTRACE_STATE_FULL, st.state);
    EXPECT_EQ(4u, st.n_matched);
    EXPECT_EQ(2u, st.n_traces);
    EXPECT_EQ(2u, st.n_traces_total);
    EXPECT_EQ(2u, st.n_dropped_full);
    EXPECT_EQ(0u, st.n_evicted);
    EXPECT_TRUE(exists(first_id));

    /* Rounds of traces already started are still stored. */
    uptrace_round *next = resume(7, fingerprint(1, 1));
    ASSERT_TRUE(next);
    fill(next);
    uptrace_round_commit(next);
    EXPECT_EQ(2u, n_rounds(first_id));

    /* Clearing makes room. */
    ASSERT_EQ(0, uptrace_engine_clear(engine(), "s", nullptr));
    EXPECT_EQ(UPTRACE_STATE_ACTIVE, status_of(s).state);
    EXPECT_NE(0u, trace_one(s));
}

TEST_F(UpcallTraceEngineTest, ShrinkingMaxTracesEvictsOldest)
{
    auto with_max = [](uint32_t max) {
        return [max](uptrace_session_config &c) { c.max_traces = max; };
    };
    uptrace_session *s = create_session("s", with_max(10));
    std::vector<uint64_t> ids;
    for (int i = 0; i < 5; i++) {
        ids.push_back(trace_one(s));
    }

    ASSERT_EQ(0, reconfigure(s, "s", with_max(20)));
    EXPECT_EQ(5u, status_of(s).n_traces);
    EXPECT_EQ(0u, status_of(s).n_evicted);

    ASSERT_EQ(0, reconfigure(s, "s", with_max(2)));
    Status st = status_of(s);
    EXPECT_EQ(2u, st.n_traces);
    EXPECT_EQ(3u, st.n_evicted);
    EXPECT_EQ(5u, st.n_traces_total);
    for (int i = 0; i < 3; i++) {
        EXPECT_FALSE(exists(ids[i]));
    }
    EXPECT_TRUE(exists(ids[3]));
    EXPECT_TRUE(exists(ids[4]));
}

TEST_F(UpcallTraceEngineTest, RetentionDropsTracesByLastRound)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.retention_ms = 1000;
    });

    /* 'a' gets a second round later, which keeps it. */
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 3, fingerprint(5, 5));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t a = status_of(s).last_trace_id;
    uint64_t b = trace_one(s);

    clock_.advance(600);
    capture = resume(3, fingerprint(5, 5));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t c = trace_one(s);

    clock_.advance(400);              /* b is exactly 1000 ms old: kept. */
    EXPECT_TRUE(exists(b));
    clock_.advance(1);
    EXPECT_FALSE(exists(b));
    EXPECT_TRUE(exists(a));
    EXPECT_TRUE(exists(c));
    EXPECT_EQ(1u, status_of(s).n_expired);

    clock_.advance(600);
    uptrace_engine_run(engine());
    Status st = status_of(s);
    EXPECT_EQ(0u, st.n_traces);
    EXPECT_EQ(3u, st.n_expired);
    EXPECT_EQ(0u, st.n_evicted);
    EXPECT_EQ(0u, usage().bytes);
}

TEST_F(UpcallTraceEngineTest, RateLimitWithTokenBucket)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.max_rate = 2;
    });

    uptrace_round *first = begin({s});
    ASSERT_TRUE(first);
    expect_recirc(first, 9, fingerprint(1, 2));
    fill(first);
    uptrace_round_commit(first);
    uint64_t first_id = status_of(s).last_trace_id;

    EXPECT_NE(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));
    Status st = status_of(s);
    EXPECT_EQ(4u, st.n_matched);
    EXPECT_EQ(2u, st.n_traces_total);
    EXPECT_EQ(2u, st.n_rate_limited);

    /* Continuations are never rate limited. */
    uptrace_round *next = resume(9, fingerprint(1, 2));
    ASSERT_TRUE(next);
    fill(next);
    uptrace_round_commit(next);
    EXPECT_EQ(2u, n_rounds(first_id));

    /* 2 per second: one token per 500 ms. */
    clock_.advance(499);
    EXPECT_EQ(0u, trace_one(s));
    clock_.advance(1);
    EXPECT_NE(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));

    /* A long pause refills at most one second's worth. */
    clock_.advance(60000);
    EXPECT_NE(0u, trace_one(s));
    EXPECT_NE(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));
    st = status_of(s);
    EXPECT_EQ(5u, st.n_traces_total);
    EXPECT_EQ(st.n_matched, st.n_traces_total + st.n_rate_limited);
}

TEST_F(UpcallTraceEngineTest, TruncationCutsAtLineBoundary)
{
    /* Measure what an empty trace and a small round cost, to set a limit
     * that cuts the second round in its middle. */
    uptrace_session *probe = create_session("probe");
    uptrace_round *capture = begin({probe});
    ASSERT_TRUE(capture);
    uint64_t empty_trace = status_of(probe).bytes;
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t small_round = status_of(probe).bytes - empty_trace;

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
TEST_F(UpcallTraceEngineTest, TruncationNeverLeavesATraceEmpty)
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
TEST_F(UpcallTraceEngineTest, TruncationKeepsTheBlobsThatFit)
{
    /* What a small round costs. */
    uptrace_session *probe = create_session("probe");
    uptrace_round *capture = begin({probe});
    ASSERT_TRUE(capture);
    uint64_t empty_trace = status_of(probe).bytes;
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t small_round = status_of(probe).bytes - empty_trace;

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
TEST_F(UpcallTraceEngineTest, TruncationKeepsWholeNodes)
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

TEST_F(UpcallTraceEngineTest, TraceIdsAreUniqueAcrossSessionsAndClears)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    std::set<uint64_t> ids;
    uint64_t last = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t id = trace_one(i % 2 ? a : b);
        EXPECT_GT(id, last);
        last = id;
        ids.insert(id);
    }
    EXPECT_EQ(20u, ids.size());

    ASSERT_EQ(0, uptrace_engine_clear(engine(), nullptr, nullptr));
    EXPECT_EQ(0u, status_of(a).n_traces);
    EXPECT_EQ(0u, status_of(a).n_evicted);
    EXPECT_EQ(0u, status_of(a).n_expired);
    EXPECT_EQ("No upcall traces.\n", list());

    uint64_t after = trace_one(a);
    EXPECT_GT(after, last);

    /* Another engine continues the same sequence. */
    reset_engine();
    uptrace_session *c = create_session("c");
    EXPECT_GT(trace_one(c), after);
}

} /* anonymous namespace */

/* A session that cannot start a trace is dropped from the sessions an upcall
 * matched, without its mutex, its refusal counted; it comes back when it
 * can capture again. */
TEST_F(UpcallTraceEngineTest, ClosedSessionsAreDroppedUntilTheyCanCapture)
{
    uptrace_session *full = create_session("full",
                                           [](uptrace_session_config &c) {
        c.max_traces = 1;
        c.mode = UPTRACE_MODE_STOP;
    });
    uptrace_session *rate = create_session("rate",
                                           [](uptrace_session_config &c) {
        c.max_rate = 2;
    });
    uptrace_session *open = create_session("open", nullptr);
    auto drop_closed = [&](std::vector<uptrace_session *> sessions) {
        size_t n = uptrace_sessions_drop_closed(engine(), sessions.data(),
                                                sessions.size());
        sessions.resize(n);
        return sessions;
    };
    using Sessions = std::vector<uptrace_session *>;

    EXPECT_EQ((Sessions {full, rate, open}), drop_closed({full, rate, open}));

    /* Full once its only trace is taken; 'rate' has a token left. */
    EXPECT_NE(0u, trace_one(full));
    EXPECT_NE(0u, trace_one(rate));
    EXPECT_EQ((Sessions {rate, open}), drop_closed({full, rate, open}));
    EXPECT_NE(0u, trace_one(rate));
    EXPECT_EQ((Sessions {open}), drop_closed({full, rate, open}));
    EXPECT_EQ((Sessions {open}), drop_closed({full, rate, open}));

    /* Refusals while closed count as the engine's own. */
    Status st = status_of(full);
    EXPECT_EQ(UPTRACE_STATE_FULL, st.state);
    EXPECT_EQ(4u, st.n_matched);
    EXPECT_EQ(3u, st.n_dropped_full);
    st = status_of(rate);
    EXPECT_EQ(4u, st.n_matched);
    EXPECT_EQ(2u, st.n_rate_limited);
    EXPECT_EQ(st.n_matched, st.n_traces_total + st.n_rate_limited);

    /* 2 per second: the next token is due 500 ms after the last one. */
    clock_.advance(499);
    EXPECT_EQ((Sessions {open}), drop_closed({full, rate, open}));
    clock_.advance(1);
    EXPECT_EQ((Sessions {rate, open}), drop_closed({full, rate, open}));
    EXPECT_NE(0u, trace_one(rate));
    EXPECT_EQ((Sessions {}), drop_closed({rate}));

    /* Clearing makes room in the full one. */
    ASSERT_EQ(0, uptrace_engine_clear(engine(), "full", nullptr));
    EXPECT_EQ((Sessions {full}), drop_closed({full}));
    EXPECT_NE(0u, trace_one(full));
    EXPECT_EQ((Sessions {}), drop_closed({full}));

    /* So does raising max_traces, and an expired session is closed. */
    struct uptrace_session_config c;
    uptrace_session_config_init(&c);
    c.name = "full";
    c.bridge = "br0";
    c.max_traces = 2;
    c.mode = UPTRACE_MODE_STOP;
    c.duration_ms = 1000;
    ASSERT_EQ(0, uptrace_session_reconfigure(full, &c, nullptr));
    EXPECT_EQ((Sessions {full}), drop_closed({full}));
    clock_.advance(1000);
    uptrace_engine_run(engine());
    EXPECT_EQ((Sessions {}), drop_closed({full}));
    EXPECT_EQ(UPTRACE_STATE_EXPIRED, status_of(full).state);
}

TEST_F(UpcallTraceEngineTest, OnlySessionsThatCanNeverCaptureLeaveTheIndex)
{
    uptrace_session *stop = create_session("stop",
                                           [](uptrace_session_config &c) {
        c.max_traces = 1;
        c.mode = UPTRACE_MODE_STOP;
        c.duration_ms = 1000;
    });
    uptrace_session *rate = create_session("rate",
                                           [](uptrace_session_config &c) {
        c.max_rate = 1;
    });

    EXPECT_TRUE(uptrace_session_wants_upcalls(stop));
    EXPECT_TRUE(uptrace_session_wants_upcalls(rate));

    /* Full in mode=stop: still looked up, to count what it misses. */
    EXPECT_NE(0u, trace_one(stop));
    EXPECT_EQ(UPTRACE_STATE_FULL, status_of(stop).state);
    EXPECT_TRUE(uptrace_session_wants_upcalls(stop));

    /* Waiting for a max-rate token: it will capture again by itself. */
    EXPECT_NE(0u, trace_one(rate));
    EXPECT_EQ(0u, trace_one(rate));
    EXPECT_TRUE(uptrace_session_wants_upcalls(rate));

    /* Expired: nothing but a new configuration lets it capture. */
    clock_.advance(1000);
    uptrace_engine_run(engine());
    EXPECT_EQ(UPTRACE_STATE_EXPIRED, status_of(stop).state);
    EXPECT_FALSE(uptrace_session_wants_upcalls(stop));

    struct uptrace_session_config c;
    uptrace_session_config_init(&c);
    c.name = "stop";
    c.bridge = "br0";
    c.max_traces = 1;
    c.mode = UPTRACE_MODE_STOP;
    c.duration_ms = 5000;
    ASSERT_EQ(0, uptrace_session_reconfigure(stop, &c, nullptr));
    EXPECT_TRUE(uptrace_session_wants_upcalls(stop));

    /* Disabled, or waiting for its bridge: out too. */
    uptrace_session_set_ready(rate, false, "no bridge br0", nullptr);
    EXPECT_FALSE(uptrace_session_wants_upcalls(rate));
    uptrace_session_set_ready(rate, true, nullptr, nullptr);
    EXPECT_TRUE(uptrace_session_wants_upcalls(rate));
}
