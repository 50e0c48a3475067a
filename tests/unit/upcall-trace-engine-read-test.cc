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
 * errors, clearing, strict trace ids, listing with a cursor, and readers
 * that never hold up capture threads. */

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

/* Strict trace ids: 0x and hexadecimal, or decimal, nothing else. */
TEST(UpcallTraceParseId, Strict)
{
    uint64_t id;

    EXPECT_EQ(0, uptrace_parse_trace_id("0x1f", &id));
    EXPECT_EQ(0x1fu, id);
    EXPECT_EQ(0, uptrace_parse_trace_id("0X1F", &id));
    EXPECT_EQ(0x1fu, id);
    EXPECT_EQ(0, uptrace_parse_trace_id("31", &id));
    EXPECT_EQ(31u, id);
    /* Decimal even with a leading zero: no octal. */
    EXPECT_EQ(0, uptrace_parse_trace_id("010", &id));
    EXPECT_EQ(10u, id);
    EXPECT_EQ(0, uptrace_parse_trace_id("08", &id));
    EXPECT_EQ(8u, id);
    EXPECT_EQ(0, uptrace_parse_trace_id("0xffffffffffffffff", &id));
    EXPECT_EQ(UINT64_MAX, id);
    EXPECT_EQ(0, uptrace_parse_trace_id("18446744073709551615", &id));
    EXPECT_EQ(UINT64_MAX, id);

    for (const char *bad : {"", "0", "0x", "0x0", "-1", " -1", " 1", "1 ",
                            "+1", "1f", "0x1g", "0x10000000000000000",
                            "18446744073709551616", "99999999999999999999",
                            "0b1", "1e3", "0x-1", "1.0"}) {
        id = 42;
        EXPECT_EQ(EINVAL, uptrace_parse_trace_id(bad, &id)) << bad;
        EXPECT_EQ(0u, id) << bad;
    }
    EXPECT_EQ(EINVAL, uptrace_parse_trace_id(nullptr, &id));
}

/* Lists only the traces after a cursor, with how many were dropped before
 * they could be read. */
std::string
list_since(uptrace_engine *engine, const char *session, uint64_t since,
           uint64_t *missed, uint64_t *next)
{
    char *out = nullptr;
    char *error = nullptr;
    EXPECT_EQ(0, uptrace_engine_list_since(engine, session, since,
                                           UPTRACE_FORMAT_TEXT, missed, next,
                                           &out, &error))
        << take(error);
    return take(out);
}

TEST_F(UpcallTraceEngineTest, ListSinceCountsMissedTraces)
{
    uptrace_session *s = create_session("s", [](uptrace_session_config &c) {
        c.max_traces = 4;
    });
    uptrace_session *other = create_session("other");
    uint64_t missed, next;

    /* Nothing yet. */
    EXPECT_EQ("No upcall traces.\n", list_since(engine(), "s", 0, &missed,
                                                 &next));
    EXPECT_EQ(0u, missed);
    EXPECT_EQ(0u, next);

    /* Ten traces into a session of four: six dropped. */
    std::vector<uint64_t> ids;
    for (int i = 0; i < 10; i++) {
        ids.push_back(trace_one(s));
        trace_one(other);           /* Interleaved ids of another session. */
    }
    std::string text = list_since(engine(), "s", 0, &missed, &next);
    EXPECT_EQ(4u, count_substrings(text, "session=s "));
    EXPECT_EQ(6u, missed);
    EXPECT_EQ(ids.back(), next);

    /* From a cursor in the middle: only what came after it. */
    text = list_since(engine(), "s", ids[7], &missed, &next);
    EXPECT_EQ(2u, count_substrings(text, "session=s "));
    EXPECT_EQ(0u, missed);

    /* The cursor of the previous call: nothing new, nothing missed. */
    list_since(engine(), "s", next, &missed, &next);
    EXPECT_EQ(0u, missed);
    EXPECT_EQ(ids.back(), next);

    /* Five more: one of them, and the four read before, are dropped; the
     * four read before do not count, being before the cursor. */
    uint64_t cursor = next;
    for (int i = 0; i < 5; i++) {
        ids.push_back(trace_one(s));
    }
    text = list_since(engine(), "s", cursor, &missed, &next);
    EXPECT_EQ(4u, count_substrings(text, "session=s "));
    EXPECT_EQ(1u, missed);
    EXPECT_EQ(ids.back(), next);

    /* A clear drops all four, unread. */
    cursor = ids[ids.size() - 3];
    ASSERT_EQ(0, uptrace_engine_clear(engine(), "s", nullptr));
    list_since(engine(), "s", cursor, &missed, &next);
    EXPECT_EQ(2u, missed);
    EXPECT_EQ(ids.back(), next);

    /* Every session: both counted. */
    list_since(engine(), nullptr, 0, &missed, &next);
    EXPECT_EQ(15u, missed);
}

TEST_F(UpcallTraceEngineTest, ListSinceStopsBeforeATraceBeingCaptured)
{
    uptrace_session *s = create_session("s");
    uint64_t done = trace_one(s);
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    uint64_t pending = status_of(s).last_trace_id;
    uint64_t after = trace_one(s);
    ASSERT_LT(done, pending);
    ASSERT_LT(pending, after);

    /* The cursor must not pass the trace whose round is not stored yet,
     * or a reader would never see it. */
    uint64_t missed, next;
    std::string text = list_since(engine(), "s", 0, &missed, &next);
    EXPECT_EQ(2u, count_substrings(text, "session=s "));
    EXPECT_EQ(pending - 1, next);

    fill(capture);
    uptrace_round_commit(capture);
    text = list_since(engine(), "s", next, &missed, &next);
    EXPECT_EQ(2u, count_substrings(text, "session=s "));
    EXPECT_EQ(after, next);
    EXPECT_EQ(0u, missed);
}

/* Trace ids start where the engine's options say, and stay unique in the
 * process. */
TEST(UpcallTraceFirstId, RaisesTheNextId)
{
    struct uptrace_engine_options options;
    memset(&options, 0, sizeof options);
    options.first_trace_id = (uint64_t{12345} << 32) | 1;
    uptrace_engine *engine = uptrace_engine_create(&options);
    struct uptrace_session_config config;
    uptrace_session_config_init(&config);
    config.name = "s";
    config.bridge = "br0";
    uptrace_session *session = nullptr;
    ASSERT_EQ(0, uptrace_session_create(engine, &config, &session,
                                        nullptr));
    uptrace_session_set_ready(session, true, nullptr, nullptr);
    struct uptrace_round_info info = round_info(0);
    uptrace_round *capture = uptrace_round_begin(engine, &session, 1,
                                                 &info, false);
    ASSERT_TRUE(capture);
    uptrace_round_abort(capture);
    struct uptrace_session_status status;
    uptrace_session_get_status(session, &status);
    EXPECT_GE(status.last_trace_id, options.first_trace_id);
    EXPECT_EQ(12345u, status.last_trace_id >> 32);
    uptrace_session_status_uninit(&status);
    uptrace_session_destroy(session);
    uptrace_engine_destroy(engine);
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
        uptrace_round *capture = uptrace_round_begin(engine(), &s, 1,
                                                     &info, false);
        ASSERT_TRUE(capture);
        fill(capture);
        uptrace_round_commit(capture);
        total++;
        during += listing;
    }
    reader.join();

    EXPECT_GE(during, 1000u) << total << " captures in all";
}

} /* anonymous namespace */
