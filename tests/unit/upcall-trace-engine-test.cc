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

/* Tests of the C interface of the upcall trace engine for engines and
 * sessions (upcall-trace-engine.cc): configuration, states, memory
 * accounting, and everything at once from many threads. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

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
    uptrace_round *capture = begin({b});
    ASSERT_TRUE(capture);
    fill(capture, std::string(10000, 'x'));
    uptrace_round_commit(capture);
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

/* A round that several sessions store is one object: the engine counts it
 * once, for as long as one of them holds it. */
TEST_F(UpcallTraceEngineTest, SharedRoundIsCountedOnce)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");

    uptrace_round *capture = begin({a, b});
    ASSERT_TRUE(capture);
    fill(capture, std::string(5000, 'x'));
    uptrace_round_commit(capture);

    struct uptrace_memory_usage u = usage();
    EXPECT_EQ(2u, u.n_traces);
    EXPECT_EQ(2u, u.n_rounds);      /* One in each trace. */
    /* Each session's own figure includes the round... */
    EXPECT_EQ(status_of(a).bytes, status_of(b).bytes);
    EXPECT_GT(status_of(a).bytes, 15000u);
    /* ...the engine's total has it once. */
    EXPECT_LT(u.bytes, status_of(a).bytes + 2000);

    /* Still held by b. */
    ASSERT_EQ(0, uptrace_engine_clear(engine(), "a", nullptr));
    u = usage();
    EXPECT_EQ(1u, u.n_traces);
    EXPECT_EQ(1u, u.n_rounds);
    EXPECT_EQ(status_of(b).bytes, u.bytes);

    ASSERT_EQ(0, uptrace_engine_clear(engine(), "b", nullptr));
    u = usage();
    EXPECT_EQ(0u, u.n_traces);
    EXPECT_EQ(0u, u.n_rounds);
    EXPECT_EQ(0u, u.bytes);
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
            uptrace_round *parent = uptrace_round_begin(
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
            uptrace_round_expect_recirc(parent, recirc_id, &fp);
            fill(parent, "in_port=1,tcp", "ct(zone=1),recirc(0x1)",
                 translation);

            /* Sometimes the continuation is handled before the parent is
             * committed, sometimes the parent is aborted. */
            bool child_first = rng() % 2;
            if (!child_first) {
                if (rng() % 8 == 0) {
                    uptrace_round_abort(parent);
                } else {
                    uptrace_round_commit(parent);
                }
                parent = nullptr;
            }
            if (uptrace_engine_expects(engine.get(), recirc_id)) {
                struct uptrace_round_info info2 = round_info(recirc_id);
                uptrace_round *child = uptrace_round_continue(
                    engine.get(), recirc_id, &fp, &info2);
                if (child) {
                    n_continued++;
                    fill(child, "in_port=1,tcp", "", translation);
                    uptrace_round_commit(child);
                }
            }
            if (parent) {
                uptrace_round_commit(parent);
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
    /* A round stored by several sessions counts in each session's bytes,
     * once in the engine's. */
    EXPECT_LE(u.bytes, bytes);
    EXPECT_EQ(traces > 0, u.bytes > 0);
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
