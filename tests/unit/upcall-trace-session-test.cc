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
 * (upcall-trace-session.cc): bounds, retention, rate, ids.  Truncation is
 * in upcall-trace-truncate-test.cc. */

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
