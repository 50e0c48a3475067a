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

/* Tests of the registry of sessions of the upcall trace engine
 * (upcall-trace-registry.cc): names and lifetimes. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

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
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 2, fingerprint(1, 1));

    engine_.reset();
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(0u, status_of(s).n_traces);
    uptrace_session_unref(s);
}

} /* anonymous namespace */
