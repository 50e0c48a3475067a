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

/* Tests of the store of the upcall trace engine (upcall-trace-engine.cc),
 * through its C interface: sessions, bounds, states, grouping across
 * recirculation, errors, memory accounting and concurrency.  The layout of
 * the output is tested in upcall-trace-engine-render-test.cc. */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "upcall-trace.h"

namespace {

/* 2026-11-26T12:00:00.123Z. */
constexpr int64_t WALL_START_MS = INT64_C(1795694400123);

struct FakeClock {
    std::atomic<int64_t> monotonic{1000000};
    std::atomic<int64_t> wall{WALL_START_MS};

    void advance(int64_t ms)
    {
        monotonic += ms;
        wall += ms;
    }
};

int64_t
fake_monotonic(void *aux)
{
    return static_cast<FakeClock *>(aux)->monotonic.load();
}

int64_t
fake_wall(void *aux)
{
    return static_cast<FakeClock *>(aux)->wall.load();
}

struct EngineDeleter {
    void operator()(uptrace_engine *engine) const
    {
        uptrace_engine_destroy(engine);
    }
};
using EnginePtr = std::unique_ptr<uptrace_engine, EngineDeleter>;

/* Takes ownership of a malloc()'d string from the engine. */
std::string
take(char *s)
{
    std::string copy = s ? s : "";
    free(s);
    return copy;
}

struct Status {
    enum uptrace_state state;
    std::string error;
    uint64_t n_matched, n_traces, n_traces_total, n_evicted, n_expired;
    uint64_t n_rate_limited, n_truncated, n_dropped_full;
    uint64_t last_trace_id;
    int64_t last_trace_time;
    uint64_t bytes;
};

Status
status_of(uptrace_session *session)
{
    struct uptrace_session_status s;
    uptrace_session_get_status(session, &s);
    Status status = {s.state, s.error ? s.error : "", s.n_matched,
                     s.n_traces, s.n_traces_total, s.n_evicted, s.n_expired,
                     s.n_rate_limited, s.n_truncated, s.n_dropped_full,
                     s.last_trace_id, s.last_trace_time, s.bytes};
    uptrace_session_status_uninit(&s);
    return status;
}

struct uptrace_round_info
round_info(uint32_t recirc_id = 0)
{
    struct uptrace_round_info info;
    info.upcall_type = "miss";
    info.recirc_id = recirc_id;
    info.in_port = 1;
    info.in_port_name = "p1";
    info.datapath = "system@ovs-system";
    info.pmd_id = UINT32_MAX;
    return info;
}

struct uptrace_fingerprint
fingerprint(uint64_t invariant, uint64_t tuple, bool nat = false)
{
    struct uptrace_fingerprint fp;
    fp.invariant = invariant;
    fp.tuple = tuple;
    fp.nat = nat;
    return fp;
}

void
expect_recirc(uptrace_capture *capture, uint32_t recirc_id,
              const struct uptrace_fingerprint &fp)
{
    uptrace_capture_expect_recirc(capture, recirc_id, &fp);
}

void
fill(uptrace_capture *capture, const std::string &flow = "in_port=1",
     const std::string &actions = "2",
     const std::string &translation = "\nbridge(\"br0\")\n")
{
    uptrace_capture_set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW, flow.data(),
                             flow.size());
    uptrace_capture_set_blob(capture, UPTRACE_BLOB_FINAL_FLOW, flow.data(),
                             flow.size());
    uptrace_capture_set_blob(capture, UPTRACE_BLOB_MEGAFLOW, flow.data(),
                             flow.size());
    uptrace_capture_set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS,
                             actions.data(), actions.size());
    uptrace_capture_set_translation(capture, translation.c_str());
    uptrace_capture_set_path(capture, "table 0: priority 0, NORMAL");
}

size_t
count_substrings(const std::string &s, const std::string &what)
{
    size_t n = 0;
    for (size_t pos = s.find(what); pos != std::string::npos;
         pos = s.find(what, pos + what.size())) {
        n++;
    }
    return n;
}

class UpcallTraceEngineTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        reset_engine();
    }

    void reset_engine(int64_t ttl_ms = 0, uint32_t max_expectations = 0)
    {
        engine_.reset();
        struct uptrace_engine_options options;
        memset(&options, 0, sizeof options);
        options.monotonic_ms = fake_monotonic;
        options.wall_ms = fake_wall;
        options.clock_aux = &clock_;
        options.expectation_ttl_ms = ttl_ms;
        options.max_expectations = max_expectations;
        engine_.reset(uptrace_engine_create(&options));
        ASSERT_TRUE(engine_);
    }

    uptrace_engine *engine()
    {
        return engine_.get();
    }

    /* Creates a ready session on br0; 'tweak' may change the config.  The
     * engine destroys it, unless the test does. */
    uptrace_session *
    create_session(const char *name,
                   const std::function<void(uptrace_session_config &)>
                   &tweak = nullptr, bool ready = true)
    {
        struct uptrace_session_config config;
        uptrace_session_config_init(&config);
        config.name = name;
        config.bridge = "br0";
        if (tweak) {
            tweak(config);
        }
        uptrace_session *session = nullptr;
        char *error = nullptr;
        EXPECT_EQ(0, uptrace_session_create(engine(), &config, &session,
                                            &error))
            << take(error);
        EXPECT_EQ(nullptr, error);
        if (session && ready) {
            uptrace_session_set_ready(session, true, nullptr, nullptr);
        }
        return session;
    }

    int reconfigure(uptrace_session *session, const char *name,
                    const std::function<void(uptrace_session_config &)>
                    &tweak, std::string *error = nullptr)
    {
        struct uptrace_session_config config;
        uptrace_session_config_init(&config);
        config.name = name;
        config.bridge = "br0";
        tweak(config);
        char *err = nullptr;
        int retval = uptrace_session_reconfigure(session, &config, &err);
        std::string message = take(err);
        if (error) {
            *error = message;
        }
        return retval;
    }

    uptrace_capture *begin(std::vector<uptrace_session *> sessions,
                           bool partial = false, uint32_t recirc_id = 0)
    {
        struct uptrace_round_info info = round_info(recirc_id);
        return uptrace_capture_begin(engine(), sessions.data(),
                                     sessions.size(), &info, partial);
    }

    uptrace_capture *resume(uint32_t recirc_id,
                            const struct uptrace_fingerprint &fp)
    {
        struct uptrace_round_info info = round_info(recirc_id);
        info.upcall_type = "miss";
        return uptrace_capture_continue(engine(), recirc_id, &fp, &info);
    }

    /* Begins and commits a one-round trace.  Returns its id in 'session',
     * or 0 if not admitted. */
    uint64_t trace_one(uptrace_session *session)
    {
        uptrace_capture *capture = begin({session});
        if (!capture) {
            return 0;
        }
        fill(capture);
        uptrace_capture_commit(capture);
        return status_of(session).last_trace_id;
    }

    std::string get(uint64_t id, enum uptrace_format format
                    = UPTRACE_FORMAT_TEXT)
    {
        char *out = nullptr;
        char *error = nullptr;
        int retval = uptrace_engine_get(engine(), id, format, &out, &error);
        EXPECT_EQ(0, retval) << take(error);
        return take(out);
    }

    bool exists(uint64_t id)
    {
        char *out = nullptr;
        char *error = nullptr;
        int retval = uptrace_engine_get(engine(), id, UPTRACE_FORMAT_TEXT,
                                        &out, &error);
        free(out);
        free(error);
        return retval == 0;
    }

    size_t n_rounds(uint64_t id)
    {
        return count_substrings(get(id), "--- Round ");
    }

    std::string list(const char *session = nullptr)
    {
        char *out = nullptr;
        char *error = nullptr;
        EXPECT_EQ(0, uptrace_engine_list(engine(), session,
                                         UPTRACE_FORMAT_TEXT, &out, &error))
            << take(error);
        return take(out);
    }

    struct uptrace_memory_usage usage()
    {
        struct uptrace_memory_usage u;
        uptrace_engine_get_memory_usage(engine(), &u);
        return u;
    }

    FakeClock clock_;
    EnginePtr engine_;          /* After 'clock_': destroyed first. */
};

/* Configuration. */

TEST_F(UpcallTraceEngineTest, ConfigDefaults)
{
    struct uptrace_session_config config;
    uptrace_session_config_init(&config);
    EXPECT_EQ(nullptr, config.name);
    EXPECT_EQ(nullptr, config.bridge);
    EXPECT_EQ(UPTRACE_MAX_TRACES_DEFAULT, config.max_traces);
    EXPECT_EQ(UPTRACE_MODE_CIRCULAR, config.mode);
    EXPECT_EQ(0, config.retention_ms);
    EXPECT_EQ(0u, config.max_rate);
    EXPECT_EQ(0u, config.max_trace_size);
    EXPECT_EQ(0, config.duration_ms);
    EXPECT_TRUE(config.enabled);
}

TEST_F(UpcallTraceEngineTest, CreateRejectsInvalidConfig)
{
    struct Case {
        std::function<void(uptrace_session_config &)> tweak;
        const char *message_part;
    };
    const std::vector<Case> cases = {
        {[](uptrace_session_config &c) { c.name = nullptr; }, "name"},
        {[](uptrace_session_config &c) { c.name = ""; }, "name"},
        {[](uptrace_session_config &c) { c.bridge = nullptr; }, "bridge"},
        {[](uptrace_session_config &c) { c.max_traces = 0; }, "max_traces"},
        {[](uptrace_session_config &c) { c.max_traces = 65537; },
         "max_traces"},
        {[](uptrace_session_config &c) { c.retention_ms = -1; },
         "retention"},
        {[](uptrace_session_config &c) { c.duration_ms = -5; }, "duration"},
    };
    for (const Case &c : cases) {
        struct uptrace_session_config config;
        uptrace_session_config_init(&config);
        config.name = "s";
        config.bridge = "br0";
        c.tweak(config);
        uptrace_session *session = nullptr;
        char *error = nullptr;
        EXPECT_EQ(EINVAL, uptrace_session_create(engine(), &config,
                                                 &session, &error));
        EXPECT_EQ(nullptr, session);
        std::string message = take(error);
        EXPECT_NE(std::string::npos, message.find(c.message_part))
            << message;
    }
    EXPECT_EQ(0u, usage().n_sessions);
}

TEST_F(UpcallTraceEngineTest, DuplicateNamesAreRejected)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    ASSERT_TRUE(a && b);

    struct uptrace_session_config config;
    uptrace_session_config_init(&config);
    config.name = "a";
    config.bridge = "br1";
    uptrace_session *dup = nullptr;
    char *error = nullptr;
    EXPECT_EQ(EEXIST, uptrace_session_create(engine(), &config, &dup,
                                             &error));
    EXPECT_EQ("an upcall trace session named a already exists",
              take(error));

    /* Renaming onto a taken name fails, to a free one works. */
    std::string message;
    EXPECT_EQ(EEXIST, reconfigure(b, "a", [](uptrace_session_config &) {},
                                  &message));
    EXPECT_EQ("an upcall trace session named a already exists", message);
    EXPECT_EQ(0, reconfigure(b, "c", [](uptrace_session_config &) {}));
    EXPECT_EQ(b, uptrace_engine_find_session(engine(), "c"));
    EXPECT_EQ(nullptr, uptrace_engine_find_session(engine(), "b"));
    EXPECT_EQ(a, uptrace_engine_find_session(engine(), "a"));
    EXPECT_EQ(2u, usage().n_sessions);
}

/* States. */

TEST_F(UpcallTraceEngineTest, StateTransitions)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.mode = UPTRACE_MODE_STOP;
        c.max_traces = 1;
        c.duration_ms = 10000;
    }, false);
    ASSERT_TRUE(s);

    /* New sessions wait for the configuration layer. */
    EXPECT_EQ(UPTRACE_STATE_WAITING, status_of(s).state);
    EXPECT_EQ(0u, uptrace_engine_n_capturing(engine()));
    EXPECT_EQ(nullptr, begin({s}));

    uptrace_session_set_ready(s, false, "no bridge named br0", nullptr);
    Status st = status_of(s);
    EXPECT_EQ(UPTRACE_STATE_WAITING, st.state);
    EXPECT_EQ("no bridge named br0", st.error);

    uptrace_session_set_ready(s, false, nullptr, "bad filter: foo");
    st = status_of(s);
    EXPECT_EQ(UPTRACE_STATE_ERROR, st.state);
    EXPECT_EQ("bad filter: foo", st.error);
    EXPECT_EQ(nullptr, begin({s}));
    EXPECT_EQ(0u, uptrace_engine_n_capturing(engine()));

    uptrace_session_set_ready(s, true, nullptr, nullptr);
    st = status_of(s);
    EXPECT_EQ(UPTRACE_STATE_ACTIVE, st.state);
    EXPECT_EQ("", st.error);
    EXPECT_EQ(1u, uptrace_engine_n_capturing(engine()));

    /* Disabled: captures nothing and is not counted as a match. */
    auto disabled = [](uptrace_session_config &c) {
        c.mode = UPTRACE_MODE_STOP;
        c.max_traces = 1;
        c.duration_ms = 10000;
        c.enabled = false;
    };
    ASSERT_EQ(0, reconfigure(s, "s", disabled));
    EXPECT_EQ(UPTRACE_STATE_DISABLED, status_of(s).state);
    EXPECT_EQ(0u, uptrace_engine_n_capturing(engine()));
    EXPECT_EQ(nullptr, begin({s}));
    EXPECT_EQ(0u, status_of(s).n_matched);

    auto enabled = [](uptrace_session_config &c) {
        c.mode = UPTRACE_MODE_STOP;
        c.max_traces = 1;
        c.duration_ms = 10000;
    };
    ASSERT_EQ(0, reconfigure(s, "s", enabled));
    EXPECT_EQ(UPTRACE_STATE_ACTIVE, status_of(s).state);
    EXPECT_EQ(1u, uptrace_engine_n_capturing(engine()));

    /* Full in stop mode. */
    EXPECT_NE(0u, trace_one(s));
    EXPECT_EQ(UPTRACE_STATE_FULL, status_of(s).state);

    /* Expired after the duration; the same duration does not restart. */
    clock_.advance(10000);
    EXPECT_TRUE(uptrace_engine_run(engine()));
    EXPECT_EQ(UPTRACE_STATE_EXPIRED, status_of(s).state);
    EXPECT_EQ(0u, uptrace_engine_n_capturing(engine()));
    ASSERT_EQ(0, reconfigure(s, "s", enabled));
    EXPECT_EQ(UPTRACE_STATE_EXPIRED, status_of(s).state);
    EXPECT_EQ(1u, status_of(s).n_traces);     /* Traces are kept. */

    /* A new duration value restarts the clock. */
    ASSERT_EQ(0, reconfigure(s, "s", [](uptrace_session_config &c) {
        c.duration_ms = 20000;
    }));
    EXPECT_EQ(UPTRACE_STATE_ACTIVE, status_of(s).state);
    EXPECT_EQ(1u, uptrace_engine_n_capturing(engine()));
    clock_.advance(19999);
    EXPECT_EQ(UPTRACE_STATE_ACTIVE, status_of(s).state);
    clock_.advance(1);
    EXPECT_EQ(UPTRACE_STATE_EXPIRED, status_of(s).state);
    EXPECT_EQ(nullptr, begin({s}));
}

TEST_F(UpcallTraceEngineTest, RunReportsChanges)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.retention_ms = 1000;
    });
    EXPECT_TRUE(uptrace_engine_run(engine()));    /* Became active. */
    EXPECT_FALSE(uptrace_engine_run(engine()));

    EXPECT_NE(0u, trace_one(s));
    EXPECT_TRUE(uptrace_engine_run(engine()));
    EXPECT_FALSE(uptrace_engine_run(engine()));

    clock_.advance(1001);
    EXPECT_TRUE(uptrace_engine_run(engine()));    /* Retention. */
    EXPECT_EQ(1u, status_of(s).n_expired);
    EXPECT_FALSE(uptrace_engine_run(engine()));
}

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

    uptrace_capture *first = begin({s});
    ASSERT_TRUE(first);
    expect_recirc(first, 7, fingerprint(1, 1));
    fill(first);
    uptrace_capture_commit(first);
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
    uptrace_capture *next = resume(7, fingerprint(1, 1));
    ASSERT_TRUE(next);
    fill(next);
    uptrace_capture_commit(next);
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
    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 3, fingerprint(5, 5));
    fill(capture);
    uptrace_capture_commit(capture);
    uint64_t a = status_of(s).last_trace_id;
    uint64_t b = trace_one(s);

    clock_.advance(600);
    capture = resume(3, fingerprint(5, 5));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
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

    uptrace_capture *first = begin({s});
    ASSERT_TRUE(first);
    expect_recirc(first, 9, fingerprint(1, 2));
    fill(first);
    uptrace_capture_commit(first);
    uint64_t first_id = status_of(s).last_trace_id;

    EXPECT_NE(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));
    EXPECT_EQ(0u, trace_one(s));
    Status st = status_of(s);
    EXPECT_EQ(4u, st.n_matched);
    EXPECT_EQ(2u, st.n_traces_total);
    EXPECT_EQ(2u, st.n_rate_limited);

    /* Continuations are never rate limited. */
    uptrace_capture *next = resume(9, fingerprint(1, 2));
    ASSERT_TRUE(next);
    fill(next);
    uptrace_capture_commit(next);
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
    uptrace_capture *capture = begin({probe});
    ASSERT_TRUE(capture);
    uint64_t empty_trace = status_of(probe).bytes;
    fill(capture);
    uptrace_capture_commit(capture);
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
    uptrace_capture_commit(capture);
    uint64_t id = status_of(s).last_trace_id;
    EXPECT_EQ(0u, status_of(s).n_truncated);

    capture = resume(4, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(1, 1));
    fill(capture, "in_port=1", "2", big);
    uptrace_capture_commit(capture);

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
    uptrace_capture_commit(capture);
    st = status_of(s);
    EXPECT_EQ(1u, st.n_truncated);
    EXPECT_EQ(2u, n_rounds(id));
    EXPECT_LE(st.bytes - empty_trace, max);

    /* Another trace is truncated on its own. */
    capture = begin({s});
    ASSERT_TRUE(capture);
    fill(capture, "in_port=1", "2", big + big + big);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, status_of(s).n_truncated);
}

/* Ids. */

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

TEST_F(UpcallTraceEngineTest, ClearOneSession)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    trace_one(a);
    uint64_t kept = trace_one(b);
    ASSERT_EQ(0, uptrace_engine_clear(engine(), "a", nullptr));
    EXPECT_EQ(0u, status_of(a).n_traces);
    EXPECT_EQ(1u, status_of(b).n_traces);
    EXPECT_TRUE(exists(kept));
}

/* Grouping across recirculation. */

TEST_F(UpcallTraceEngineTest, ContinueMatchesRecircIdInvariantAndTuple)
{
    uptrace_session *s = create_session("s");
    EXPECT_FALSE(uptrace_engine_expects(engine(), 5));

    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(100, 200));
    /* Effective before the commit. */
    EXPECT_TRUE(uptrace_engine_expects(engine(), 5));
    EXPECT_EQ(1u, usage().n_expectations);
    fill(capture);
    uptrace_capture_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    EXPECT_EQ(nullptr, resume(6, fingerprint(100, 200)));
    EXPECT_EQ(nullptr, resume(5, fingerprint(101, 200)));
    EXPECT_EQ(nullptr, resume(5, fingerprint(100, 201)));
    EXPECT_TRUE(uptrace_engine_expects(engine(), 5));

    capture = resume(5, fingerprint(100, 200));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, n_rounds(id));
    EXPECT_NE(std::string::npos, get(id).find("recirc_id=0x5"));

    /* Claimed once. */
    EXPECT_FALSE(uptrace_engine_expects(engine(), 5));
    EXPECT_EQ(0u, usage().n_expectations);
    EXPECT_EQ(nullptr, resume(5, fingerprint(100, 200)));
    EXPECT_EQ(1u, status_of(s).n_traces_total);
}

TEST_F(UpcallTraceEngineTest, NatSkipsTupleComparison)
{
    uptrace_session *s = create_session("s");
    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(100, 200));
    fill(capture);
    uptrace_capture_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    /* The invariant still has to match. */
    EXPECT_EQ(nullptr, resume(5, fingerprint(101, 999, true)));
    capture = resume(5, fingerprint(100, 999, true));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, n_rounds(id));
    EXPECT_EQ(nullptr, resume(5, fingerprint(100, 999, true)));
}

TEST_F(UpcallTraceEngineTest, PacketsSharingRecircIdNeverMerge)
{
    uptrace_session *s = create_session("s");

    /* Two packets recirculate with the same recirc_id and even the same
     * invariant hash, but different tuples. */
    std::vector<uint64_t> ids;
    for (uint64_t tuple : {1, 2}) {
        uptrace_capture *capture = begin({s});
        ASSERT_TRUE(capture);
        expect_recirc(capture, 7, fingerprint(10, tuple));
        fill(capture, "packet " + std::to_string(tuple));
        uptrace_capture_commit(capture);
        ids.push_back(status_of(s).last_trace_id);
    }

    /* The second packet comes back first: it must join its own trace, not
     * the older entry's. */
    uptrace_capture *capture = resume(7, fingerprint(10, 2));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(1u, n_rounds(ids[0]));
    EXPECT_EQ(2u, n_rounds(ids[1]));

    capture = resume(7, fingerprint(10, 1));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, n_rounds(ids[0]));
    EXPECT_EQ(2u, n_rounds(ids[1]));
}

TEST_F(UpcallTraceEngineTest, OldestMatchingExpectationIsClaimedFirst)
{
    uptrace_session *s = create_session("s");
    std::vector<uint64_t> ids;
    for (int i = 0; i < 2; i++) {
        uptrace_capture *capture = begin({s});
        ASSERT_TRUE(capture);
        expect_recirc(capture, 7, fingerprint(10, 20));
        fill(capture);
        uptrace_capture_commit(capture);
        ids.push_back(status_of(s).last_trace_id);
    }
    uptrace_capture *capture = resume(7, fingerprint(10, 20));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, n_rounds(ids[0]));
    EXPECT_EQ(1u, n_rounds(ids[1]));
}

TEST_F(UpcallTraceEngineTest, ExpectationsExpireAfterTtl)
{
    reset_engine(100, 0);
    uptrace_session *s = create_session("s");
    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(1, 2));
    expect_recirc(capture, 6, fingerprint(1, 2));
    fill(capture);
    uptrace_capture_commit(capture);

    clock_.advance(100);
    capture = resume(6, fingerprint(1, 2));   /* Still in time. */
    ASSERT_TRUE(capture);
    uptrace_capture_abort(capture);

    clock_.advance(1);
    EXPECT_EQ(nullptr, resume(5, fingerprint(1, 2)));
    /* Purged lazily, at the latest by run(). */
    uptrace_engine_run(engine());
    EXPECT_EQ(0u, usage().n_expectations);
    EXPECT_FALSE(uptrace_engine_expects(engine(), 5));
}

TEST_F(UpcallTraceEngineTest, MaxExpectationsDropsOldest)
{
    reset_engine(0, 2);
    uptrace_session *s = create_session("s");
    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    /* Different recirc_ids land in different shards: the bound is global. */
    for (uint32_t recirc_id = 1; recirc_id <= 3; recirc_id++) {
        expect_recirc(capture, recirc_id, fingerprint(1, 1));
    }
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, usage().n_expectations);

    EXPECT_EQ(nullptr, resume(1, fingerprint(1, 1)));
    for (uint32_t recirc_id = 2; recirc_id <= 3; recirc_id++) {
        capture = resume(recirc_id, fingerprint(1, 1));
        EXPECT_TRUE(capture);
        uptrace_capture_abort(capture);
    }
}

TEST_F(UpcallTraceEngineTest, ContinuationCommittedBeforeParentKeepsOrder)
{
    uptrace_session *s = create_session("s");
    uptrace_capture *parent = begin({s}, false, 0);
    ASSERT_TRUE(parent);
    expect_recirc(parent, 0x21, fingerprint(3, 4));
    uint64_t id = status_of(s).last_trace_id;

    /* Another thread handles the recirculated packet first. */
    uptrace_capture *child = resume(0x21, fingerprint(3, 4));
    ASSERT_TRUE(child);
    fill(child, "child");
    uptrace_capture_commit(child);
    fill(parent, "parent");
    uptrace_capture_commit(parent);

    std::string text = get(id);
    size_t round1 = text.find("--- Round 1: recirc_id=0x0,");
    size_t round2 = text.find("--- Round 2: recirc_id=0x21,");
    ASSERT_NE(std::string::npos, round1) << text;
    ASSERT_NE(std::string::npos, round2) << text;
    EXPECT_LT(round1, round2);
    EXPECT_LT(text.find("Flow: " + std::string("706172656e74")), round2)
        << text;                      /* "parent" in hex. */
}

TEST_F(UpcallTraceEngineTest, ContinuationSkipsSessionsThatStopped)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b", [](uptrace_session_config &c) {
        c.max_traces = 1;
    });
    uptrace_capture *capture = begin({a, b});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 8, fingerprint(1, 1));
    expect_recirc(capture, 9, fingerprint(1, 1));
    fill(capture);
    uptrace_capture_commit(capture);
    uint64_t id_a = status_of(a).last_trace_id;
    uint64_t id_b = status_of(b).last_trace_id;
    ASSERT_NE(id_a, id_b);

    /* b's trace is evicted: the next round only goes to a. */
    EXPECT_NE(0u, trace_one(b));
    capture = resume(8, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(2u, n_rounds(id_a));
    EXPECT_FALSE(exists(id_b));

    /* a disabled: no target remains. */
    ASSERT_EQ(0, reconfigure(a, "a", [](uptrace_session_config &c) {
        c.enabled = false;
    }));
    EXPECT_EQ(nullptr, resume(9, fingerprint(1, 1)));
    EXPECT_EQ(2u, n_rounds(id_a));
}

TEST_F(UpcallTraceEngineTest, MultipleSessionsMatchOneUpcall)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    uptrace_session *off = create_session("off",
                                          [](uptrace_session_config &c) {
        c.enabled = false;
    });
    uptrace_capture *capture = begin({a, off, b}, true);
    ASSERT_TRUE(capture);
    expect_recirc(capture, 1, fingerprint(1, 1));
    fill(capture);
    uptrace_capture_commit(capture);
    capture = resume(1, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_capture_commit(capture);

    uint64_t id_a = status_of(a).last_trace_id;
    uint64_t id_b = status_of(b).last_trace_id;
    EXPECT_NE(id_a, id_b);
    EXPECT_EQ(0u, status_of(off).n_matched);
    EXPECT_EQ(1u, status_of(a).n_matched);
    EXPECT_EQ(1u, status_of(b).n_matched);

    std::string text_a = get(id_a);
    std::string text_b = get(id_b);
    EXPECT_NE(std::string::npos,
              text_a.find("(session a, bridge br0, 2 rounds, partial)"))
        << text_a;
    EXPECT_NE(std::string::npos,
              text_b.find("(session b, bridge br0, 2 rounds, partial)"))
        << text_b;
    /* Same rounds in both. */
    EXPECT_EQ(text_a.substr(text_a.find('\n')),
              text_b.substr(text_b.find('\n')));

    EXPECT_EQ(2u, count_substrings(list(), "\n"));
    EXPECT_EQ(1u, count_substrings(list("a"), "\n"));
    struct uptrace_memory_usage u = usage();
    EXPECT_EQ(2u, u.n_traces);
    EXPECT_EQ(4u, u.n_rounds);
}

TEST_F(UpcallTraceEngineTest, AbortForgetsTheEmptyTrace)
{
    uptrace_session *s = create_session("s");
    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    EXPECT_EQ(1u, status_of(s).n_traces);
    uptrace_capture_abort(capture);
    uptrace_capture_abort(nullptr);
    EXPECT_EQ(0u, status_of(s).n_traces);
    EXPECT_EQ(0u, usage().bytes);
    EXPECT_EQ("No upcall traces.\n", list());
}

/* Reading errors. */

TEST_F(UpcallTraceEngineTest, ReadingErrors)
{
    create_session("s");
    char *out = nullptr;
    char *error = nullptr;

    EXPECT_EQ(ENOENT, uptrace_engine_list(engine(), "nope",
                                          UPTRACE_FORMAT_TEXT, &out,
                                          &error));
    EXPECT_EQ(nullptr, out);
    EXPECT_EQ("no upcall trace session named nope", take(error));

    EXPECT_EQ(ENOENT, uptrace_engine_summary(engine(), "nope",
                                             UPTRACE_FORMAT_JSON, &out,
                                             &error));
    EXPECT_EQ("no upcall trace session named nope", take(error));

    EXPECT_EQ(ENOENT, uptrace_engine_clear(engine(), "nope", &error));
    EXPECT_EQ("no upcall trace session named nope", take(error));

    EXPECT_EQ(ENOENT, uptrace_engine_get(engine(), 0x999,
                                         UPTRACE_FORMAT_TEXT, &out, &error));
    EXPECT_EQ(nullptr, out);
    EXPECT_EQ("no upcall trace with id 0x999", take(error));

    /* 'errp' may be null; success clears it. */
    EXPECT_EQ(ENOENT, uptrace_engine_get(engine(), 0x999,
                                         UPTRACE_FORMAT_JSON, &out,
                                         nullptr));
    char sentinel;
    error = &sentinel;
    EXPECT_EQ(0, uptrace_engine_list(engine(), "s", UPTRACE_FORMAT_TEXT,
                                     &out, &error));
    EXPECT_EQ(nullptr, error);
    free(out);
}

/* Memory accounting. */

TEST_F(UpcallTraceEngineTest, MemoryAccountingGrowsAndShrinks)
{
    struct uptrace_memory_usage u = usage();
    EXPECT_EQ(0u, u.n_sessions);
    EXPECT_EQ(0u, u.bytes);

    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b", [](uptrace_session_config &c) {
        c.max_traces = 2;
    });
    EXPECT_EQ(2u, usage().n_sessions);

    uint64_t previous = 0;
    for (int i = 0; i < 3; i++) {
        trace_one(a);
        uint64_t bytes = usage().bytes;
        EXPECT_GT(bytes, previous);
        previous = bytes;
    }
    EXPECT_EQ(status_of(a).bytes, usage().bytes);

    /* Bigger rounds cost more. */
    uint64_t before = usage().bytes;
    uptrace_capture *capture = begin({b});
    ASSERT_TRUE(capture);
    fill(capture, std::string(10000, 'x'));
    uptrace_capture_commit(capture);
    uint64_t big = usage().bytes - before;
    EXPECT_GT(big, 30000u);         /* Three blobs of 10000 bytes. */
    EXPECT_LT(big, 40000u);
    EXPECT_EQ(status_of(a).bytes + status_of(b).bytes, usage().bytes);

    u = usage();
    EXPECT_EQ(4u, u.n_traces);
    EXPECT_EQ(4u, u.n_rounds);

    /* Eviction gives it back. */
    trace_one(b);
    trace_one(b);
    EXPECT_EQ(before + 2 * (before / 3), usage().bytes);   /* 5 small. */
    EXPECT_EQ(status_of(a).bytes + status_of(b).bytes, usage().bytes);

    ASSERT_EQ(0, uptrace_engine_clear(engine(), "a", nullptr));
    EXPECT_EQ(0u, status_of(a).bytes);
    EXPECT_EQ(status_of(b).bytes, usage().bytes);

    uptrace_session_destroy(b);
    u = usage();
    EXPECT_EQ(1u, u.n_sessions);
    EXPECT_EQ(0u, u.n_traces);
    EXPECT_EQ(0u, u.n_rounds);
    EXPECT_EQ(0u, u.bytes);
}

/* Lifetimes. */

TEST_F(UpcallTraceEngineTest, ReferencedSessionOutlivesDestroy)
{
    uptrace_session *s = create_session("s");
    EXPECT_EQ(s, uptrace_session_ref(s));
    trace_one(s);
    uptrace_session_destroy(s);

    /* Still usable, but detached. */
    EXPECT_EQ(nullptr, uptrace_engine_find_session(engine(), "s"));
    EXPECT_EQ(nullptr, begin({s}));
    EXPECT_EQ(0u, status_of(s).n_traces);
    EXPECT_EQ(0u, uptrace_engine_n_capturing(engine()));
    EXPECT_EQ(0u, usage().bytes);
    uptrace_session_unref(s);

    /* The name is free again. */
    EXPECT_TRUE(create_session("s"));
}

TEST_F(UpcallTraceEngineTest, CaptureAndSessionOutliveEngine)
{
    uptrace_session *s = create_session("s");
    uptrace_session_ref(s);
    uptrace_capture *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 2, fingerprint(1, 1));

    engine_.reset();
    fill(capture);
    uptrace_capture_commit(capture);
    EXPECT_EQ(0u, status_of(s).n_traces);
    uptrace_session_unref(s);
}

/* Concurrency. */

TEST(UpcallTraceEngineStressTest, ConcurrentCaptureConfigureAndRead)
{
    struct uptrace_engine_options options;
    memset(&options, 0, sizeof options);
    options.max_expectations = 64;
    EnginePtr engine(uptrace_engine_create(&options));   /* Real clocks. */

    /* Sessions published to capture threads the way the shim would: a
     * referenced handle taken under a lock. */
    std::mutex published_mutex;
    std::vector<uptrace_session *> published;

    auto make_config = [](const char *name, uint32_t max_traces,
                          enum uptrace_mode mode, uint32_t max_rate,
                          uint64_t max_trace_size, bool enabled) {
        struct uptrace_session_config c;
        uptrace_session_config_init(&c);
        c.name = name;
        c.bridge = "br0";
        c.max_traces = max_traces;
        c.mode = mode;
        c.max_rate = max_rate;
        c.max_trace_size = max_trace_size;
        c.enabled = enabled;
        return c;
    };

    static const char *const stable_names[] = {"s0", "s1", "s2"};
    std::vector<uptrace_session *> stable;
    for (const char *name : stable_names) {
        struct uptrace_session_config c
            = make_config(name, 16, UPTRACE_MODE_CIRCULAR, 0, 0, true);
        uptrace_session *s = nullptr;
        ASSERT_EQ(0, uptrace_session_create(engine.get(), &c, &s, nullptr));
        uptrace_session_set_ready(s, true, nullptr, nullptr);
        stable.push_back(s);
        published.push_back(uptrace_session_ref(s));
    }

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> n_begun{0}, n_continued{0}, n_reads{0};
    std::atomic<uint64_t> n_configs{0};

    auto capture_thread = [&](unsigned seed) {
        std::mt19937 rng(seed);
        std::string translation = "\nbridge(\"br0\")\n";
        for (int i = 0; i < 40; i++) {
            translation += " 0. priority 0, NORMAL, line "
                           + std::to_string(i) + "\n";
        }
        while (!stop.load()) {
            std::vector<uptrace_session *> sessions;
            {
                std::lock_guard<std::mutex> guard(published_mutex);
                for (uptrace_session *s : published) {
                    if (rng() % 2) {
                        sessions.push_back(uptrace_session_ref(s));
                    }
                }
            }

            struct uptrace_round_info info = round_info();
            uptrace_capture *parent = uptrace_capture_begin(
                engine.get(), sessions.data(), sessions.size(), &info,
                rng() % 4 == 0);
            for (uptrace_session *s : sessions) {
                uptrace_session_unref(s);
            }
            if (!parent) {
                continue;
            }
            n_begun++;

            uint32_t recirc_id = 1 + rng() % 8;
            struct uptrace_fingerprint fp = fingerprint(rng(), rng(),
                                                        rng() % 3 == 0);
            uptrace_capture_expect_recirc(parent, recirc_id, &fp);
            fill(parent, "in_port=1,tcp", "ct(zone=1),recirc(0x1)",
                 translation);

            /* Sometimes the continuation is handled before the parent is
             * committed, sometimes the parent is aborted. */
            bool child_first = rng() % 2;
            if (!child_first) {
                if (rng() % 8 == 0) {
                    uptrace_capture_abort(parent);
                } else {
                    uptrace_capture_commit(parent);
                }
                parent = nullptr;
            }
            if (uptrace_engine_expects(engine.get(), recirc_id)) {
                struct uptrace_round_info info2 = round_info(recirc_id);
                uptrace_capture *child = uptrace_capture_continue(
                    engine.get(), recirc_id, &fp, &info2);
                if (child) {
                    n_continued++;
                    fill(child, "in_port=1,tcp", "", translation);
                    uptrace_capture_commit(child);
                }
            }
            if (parent) {
                uptrace_capture_commit(parent);
            }
        }
    };

    auto config_thread = [&] {
        std::mt19937 rng(42);
        while (!stop.load()) {
            size_t index = rng() % stable.size();
            uptrace_session *s = stable[index];
            const char *name = stable_names[index];
            struct uptrace_session_config c = make_config(
                name, 1 + rng() % 20,
                rng() % 2 ? UPTRACE_MODE_CIRCULAR : UPTRACE_MODE_STOP,
                rng() % 3 ? 0 : 1000, rng() % 3 ? 0 : 4096,
                rng() % 5 != 0);
            c.retention_ms = rng() % 4 ? 0 : 5;
            EXPECT_EQ(0, uptrace_session_reconfigure(s, &c, nullptr));
            if (rng() % 10 == 0) {
                uptrace_session_set_ready(s, rng() % 2, "no port",
                                          nullptr);
            } else {
                uptrace_session_set_ready(s, true, nullptr, nullptr);
            }
            if (rng() % 20 == 0) {
                uptrace_engine_clear(engine.get(), name, nullptr);
            }

            /* A short-lived session. */
            struct uptrace_session_config tc = make_config(
                "temp", 4, UPTRACE_MODE_CIRCULAR, 0, 0, true);
            uptrace_session *temp = nullptr;
            EXPECT_EQ(0, uptrace_session_create(engine.get(), &tc, &temp,
                                                nullptr));
            uptrace_session_set_ready(temp, true, nullptr, nullptr);
            {
                std::lock_guard<std::mutex> guard(published_mutex);
                published.push_back(uptrace_session_ref(temp));
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            {
                std::lock_guard<std::mutex> guard(published_mutex);
                published.pop_back();
            }
            uptrace_session_destroy(temp);
            uptrace_session_unref(temp);

            uptrace_engine_run(engine.get());
            n_configs++;
        }
    };

    auto reader_thread = [&] {
        while (!stop.load()) {
            char *out = nullptr;
            for (enum uptrace_format f : {UPTRACE_FORMAT_TEXT,
                                          UPTRACE_FORMAT_JSON}) {
                EXPECT_EQ(0, uptrace_engine_show(engine.get(), f, &out,
                                                 nullptr));
                free(out);
                EXPECT_EQ(0, uptrace_engine_list(engine.get(), nullptr, f,
                                                 &out, nullptr));
                free(out);
                EXPECT_EQ(0, uptrace_engine_summary(engine.get(), nullptr,
                                                    f, &out, nullptr));
                free(out);
                for (uptrace_session *s : stable) {
                    Status st = status_of(s);
                    if (st.last_trace_id) {
                        int error = uptrace_engine_get(
                            engine.get(), st.last_trace_id, f, &out,
                            nullptr);
                        EXPECT_TRUE(error == 0 || error == ENOENT);
                        free(out);
                        out = nullptr;
                    }
                }
            }
            struct uptrace_memory_usage u;
            uptrace_engine_get_memory_usage(engine.get(), &u);
            n_reads++;
        }
    };

    std::vector<std::thread> threads;
    for (unsigned i = 0; i < 4; i++) {
        threads.emplace_back(capture_thread, i + 1);
    }
    threads.emplace_back(config_thread);
    threads.emplace_back(reader_thread);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
    for (std::thread &t : threads) {
        t.join();
    }

    EXPECT_GT(n_begun.load(), 0u);
    EXPECT_GT(n_continued.load(), 0u);
    EXPECT_GT(n_reads.load(), 0u);
    EXPECT_GT(n_configs.load(), 0u);

    /* Counters are consistent. */
    uint64_t bytes = 0, traces = 0;
    for (uptrace_session *s : stable) {
        Status st = status_of(s);
        EXPECT_EQ(st.n_matched,
                  st.n_traces_total + st.n_rate_limited + st.n_dropped_full);
        EXPECT_LE(st.n_traces, 20u);
        bytes += st.bytes;
        traces += st.n_traces;
    }
    struct uptrace_memory_usage u;
    uptrace_engine_get_memory_usage(engine.get(), &u);
    EXPECT_EQ(3u, u.n_sessions);
    EXPECT_EQ(bytes, u.bytes);
    EXPECT_EQ(traces, u.n_traces);
    EXPECT_LE(u.n_expectations, 64u);

    for (uptrace_session *s : published) {
        uptrace_session_unref(s);
    }
    for (uptrace_session *s : stable) {
        uptrace_session_destroy(s);
    }
    uptrace_engine_get_memory_usage(engine.get(), &u);
    EXPECT_EQ(0u, u.n_sessions);
    EXPECT_EQ(0u, u.n_traces);
    EXPECT_EQ(0u, u.n_rounds);
    EXPECT_EQ(0u, u.bytes);
    EXPECT_EQ(0u, uptrace_engine_n_capturing(engine.get()));
}

} /* anonymous namespace */
