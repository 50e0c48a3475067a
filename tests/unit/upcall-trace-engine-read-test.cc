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

/* Tests of reading the upcall trace engine (upcall-trace-engine-read.cc):
 * errors, clearing, and readers that never hold up capture threads. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

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

/* A reader that lists 65,536 traces in a loop copies them under the
 * session's lock only as pointers and formats them after: capture threads
 * go on while it lists.  Were the list formatted under the lock, no
 * capture would complete while a list is in progress, bar the one waiting
 * when it ends. */
TEST_F(UpcallTraceEngineTest, ListingManyTracesDoesNotStallCaptures)
{
    const uint32_t max = UPTRACE_MAX_TRACES_MAX;
    uptrace_session *s = create_session("s", [max](uptrace_session_config
                                                    &c) {
        c.max_traces = max;
    });
    for (uint32_t i = 0; i < max; i++) {
        ASSERT_NE(0u, trace_one(s));
    }
    ASSERT_EQ(max, status_of(s).n_traces);

    std::atomic<bool> listing{false};
    std::atomic<int> n_lists{0};
    std::thread reader([&] {
        for (int i = 0; i < 2; i++) {
            char *out = nullptr;
            char *error = nullptr;
            listing = true;
            int retval = uptrace_engine_list(engine(), nullptr,
                                             UPTRACE_FORMAT_TEXT, &out,
                                             &error);
            listing = false;
            EXPECT_EQ(0, retval);
            /* A trace being captured has no round yet: not listed. */
            EXPECT_LE(max - 1, count_substrings(out ? out : "", "\n"));
            free(out);
            free(error);
            n_lists++;
        }
    });

    /* Capture (evicting the oldest) until the reader is done, counting the
     * captures that complete while it lists. */
    struct uptrace_round_info info = round_info();
    uint64_t during = 0, total = 0;
    while (n_lists < 2) {
        uptrace_capture *capture = uptrace_capture_begin(engine(), &s, 1,
                                                         &info, false);
        ASSERT_TRUE(capture);
        fill(capture);
        uptrace_capture_commit(capture);
        total++;
        during += listing;
    }
    reader.join();

    EXPECT_GE(during, 1000u) << total << " captures in all";
}

} /* anonymous namespace */
