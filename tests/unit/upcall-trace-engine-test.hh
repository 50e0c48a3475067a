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

#ifndef TESTS_UPCALL_TRACE_ENGINE_TEST_HH
#define TESTS_UPCALL_TRACE_ENGINE_TEST_HH 1

/* The fixture and helpers shared by the tests of the store of the upcall
 * trace engine, which drive it through its C interface (upcall-trace.h):
 * one test file per source file (upcall-trace-engine-test.cc for
 * upcall-trace-engine.cc, upcall-trace-session-test.cc for
 * upcall-trace-session.cc, ...).  The layout of the output is tested in
 * upcall-trace-engine-render-test.cc. */

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

namespace uptrace_test {

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

inline int64_t
fake_monotonic(void *aux)
{
    return static_cast<FakeClock *>(aux)->monotonic.load();
}

inline int64_t
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
inline std::string
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

inline Status
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

inline struct uptrace_round_info
round_info(uint32_t recirc_id = 0)
{
    struct uptrace_round_info info = {};
    info.upcall_type = "miss";
    info.recirc_id = recirc_id;
    info.in_port = 1;
    info.in_port_name = "p1";
    info.datapath = "system@ovs-system";
    info.pmd_id = UINT32_MAX;
    return info;
}

inline struct uptrace_fingerprint
fingerprint(uint64_t invariant, uint64_t tuple, bool nat = false)
{
    struct uptrace_fingerprint fp;
    fp.invariant = invariant;
    fp.tuple = tuple;
    fp.nat = nat;
    return fp;
}

inline void
expect_recirc(uptrace_round *capture, uint32_t recirc_id,
              const struct uptrace_fingerprint &fp)
{
    uptrace_round_expect_recirc(capture, recirc_id, &fp);
}

inline void
fill(uptrace_round *capture, const std::string &flow = "in_port=1",
     const std::string &actions = "2",
     const std::string &translation = "\nbridge(\"br0\")\n")
{
    uptrace_round_set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW, flow.data(),
                           flow.size());
    uptrace_round_set_blob(capture, UPTRACE_BLOB_FINAL_FLOW, flow.data(),
                           flow.size());
    uptrace_round_set_blob(capture, UPTRACE_BLOB_MEGAFLOW, flow.data(),
                           flow.size());
    uptrace_round_set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS,
                           actions.data(), actions.size());
    uptrace_round_set_translation(capture, translation.c_str());
    uptrace_round_set_path(capture, "table 0: priority 0, NORMAL");
}

inline size_t
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

    uptrace_round *begin(std::vector<uptrace_session *> sessions,
                         bool partial = false, uint32_t recirc_id = 0)
    {
        struct uptrace_round_info info = round_info(recirc_id);
        return uptrace_round_begin(engine(), sessions.data(),
                                   sessions.size(), &info, partial);
    }

    uptrace_round *resume(uint32_t recirc_id,
                          const struct uptrace_fingerprint &fp)
    {
        struct uptrace_round_info info = round_info(recirc_id);
        info.upcall_type = "miss";
        return uptrace_round_continue(engine(), recirc_id, &fp, &info);
    }

    /* Begins and commits a one-round trace.  Returns its id in 'session',
     * or 0 if not admitted. */
    uint64_t trace_one(uptrace_session *session)
    {
        uptrace_round *capture = begin({session});
        if (!capture) {
            return 0;
        }
        fill(capture);
        uptrace_round_commit(capture);
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

} /* namespace uptrace_test */

#endif /* tests/upcall-trace-engine-test.hh */
