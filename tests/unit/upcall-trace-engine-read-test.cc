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
 * errors and clearing. */

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

} /* anonymous namespace */
