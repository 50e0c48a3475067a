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

/* Tests of the recirculation expectations of the upcall trace engine
 * (upcall-trace-expectations.cc): grouping rounds into traces across
 * recirculation. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

/* Grouping across recirculation. */

TEST_F(UpcallTraceEngineTest, ContinueMatchesRecircIdInvariantAndTuple)
{
    uptrace_session *s = create_session("s");
    EXPECT_FALSE(uptrace_engine_expects(engine(), 5));

    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(100, 200));
    /* Effective before the commit. */
    EXPECT_TRUE(uptrace_engine_expects(engine(), 5));
    EXPECT_EQ(1u, usage().n_expectations);
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    EXPECT_EQ(nullptr, resume(6, fingerprint(100, 200)));
    EXPECT_EQ(nullptr, resume(5, fingerprint(101, 200)));
    EXPECT_EQ(nullptr, resume(5, fingerprint(100, 201)));
    EXPECT_TRUE(uptrace_engine_expects(engine(), 5));

    capture = resume(5, fingerprint(100, 200));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
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
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(100, 200));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    /* The invariant still has to match. */
    EXPECT_EQ(nullptr, resume(5, fingerprint(101, 999, true)));
    capture = resume(5, fingerprint(100, 999, true));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, n_rounds(id));
    EXPECT_EQ(nullptr, resume(5, fingerprint(100, 999, true)));
}

TEST_F(UpcallTraceEngineTest, ExpectationWithoutTupleAcceptsAnyTuple)
{
    /* Registered with 'nat': the datapath will NAT the packet, or its
     * header was not known when it was frozen (pop_mpls). */
    uptrace_session *s = create_session("s");
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(100, 200, true));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    uptrace_fingerprint fp = fingerprint(100, 999);
    EXPECT_TRUE(uptrace_engine_expects_tuple(engine(), 5, &fp));
    EXPECT_EQ(nullptr, resume(5, fingerprint(101, 999)));
    capture = resume(5, fingerprint(100, 999));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, n_rounds(id));
}

TEST_F(UpcallTraceEngineTest, RoundThatNeverCameIsReported)
{
    reset_engine(100, 0);
    uptrace_session *s = create_session("s");
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(1, 2));
    expect_recirc(capture, 6, fingerprint(1, 2));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    capture = resume(6, fingerprint(1, 2));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    /* Not overdue yet: nothing to say. */
    EXPECT_EQ(std::string::npos, get(id).find("Missing round"));

    clock_.advance(101);
    /* Reading purges what is overdue: no need to wait for run(). */
    EXPECT_NE(std::string::npos,
              get(id).find("--- Missing round: recirc_id=0x5 not seen: "
                           "handled by an installed datapath flow, or lost "
                           "---\n"));
    EXPECT_EQ(std::string::npos, get(id).find("recirc_id=0x6 not seen"));
    EXPECT_NE(std::string::npos,
              get(id, UPTRACE_FORMAT_JSON).find(
                  "\"missing_rounds\":[{\"recirc_id\":5,\"reason\":"
                  "\"handled by an installed datapath flow, or lost\"}]"));
}

TEST_F(UpcallTraceEngineTest, ExpectationDroppedForRoomIsReported)
{
    reset_engine(0, 1);
    uptrace_session *s = create_session("s");
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 1, fingerprint(1, 1));
    expect_recirc(capture, 2, fingerprint(1, 1));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id = status_of(s).last_trace_id;

    EXPECT_NE(std::string::npos,
              get(id).find("recirc_id=0x1 not seen: too many "
                           "recirculations were expected at once"));
    EXPECT_NE(std::string::npos,
              get(id, UPTRACE_FORMAT_JSON).find("\"missing_rounds\":[{"));
}

TEST_F(UpcallTraceEngineTest, PacketsSharingRecircIdNeverMerge)
{
    uptrace_session *s = create_session("s");

    /* Two packets recirculate with the same recirc_id and even the same
     * invariant hash, but different tuples. */
    std::vector<uint64_t> ids;
    for (uint64_t tuple : {1, 2}) {
        uptrace_round *capture = begin({s});
        ASSERT_TRUE(capture);
        expect_recirc(capture, 7, fingerprint(10, tuple));
        fill(capture, "packet " + std::to_string(tuple));
        uptrace_round_commit(capture);
        ids.push_back(status_of(s).last_trace_id);
    }

    /* The second packet comes back first: it must join its own trace, not
     * the older entry's. */
    uptrace_round *capture = resume(7, fingerprint(10, 2));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(1u, n_rounds(ids[0]));
    EXPECT_EQ(2u, n_rounds(ids[1]));

    capture = resume(7, fingerprint(10, 1));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, n_rounds(ids[0]));
    EXPECT_EQ(2u, n_rounds(ids[1]));
}

TEST_F(UpcallTraceEngineTest, OldestMatchingExpectationIsClaimedFirst)
{
    uptrace_session *s = create_session("s");
    std::vector<uint64_t> ids;
    for (int i = 0; i < 2; i++) {
        uptrace_round *capture = begin({s});
        ASSERT_TRUE(capture);
        expect_recirc(capture, 7, fingerprint(10, 20));
        fill(capture);
        uptrace_round_commit(capture);
        ids.push_back(status_of(s).last_trace_id);
    }
    uptrace_round *capture = resume(7, fingerprint(10, 20));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, n_rounds(ids[0]));
    EXPECT_EQ(1u, n_rounds(ids[1]));
}

TEST_F(UpcallTraceEngineTest, ExpectationsExpireAfterTtl)
{
    reset_engine(100, 0);
    uptrace_session *s = create_session("s");
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 5, fingerprint(1, 2));
    expect_recirc(capture, 6, fingerprint(1, 2));
    fill(capture);
    uptrace_round_commit(capture);

    clock_.advance(100);
    capture = resume(6, fingerprint(1, 2));   /* Still in time. */
    ASSERT_TRUE(capture);
    uptrace_round_abort(capture);

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
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    /* Different recirc_ids land in different shards: the bound is global. */
    for (uint32_t recirc_id = 1; recirc_id <= 3; recirc_id++) {
        expect_recirc(capture, recirc_id, fingerprint(1, 1));
    }
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, usage().n_expectations);

    EXPECT_EQ(nullptr, resume(1, fingerprint(1, 1)));
    for (uint32_t recirc_id = 2; recirc_id <= 3; recirc_id++) {
        capture = resume(recirc_id, fingerprint(1, 1));
        EXPECT_TRUE(capture);
        uptrace_round_abort(capture);
    }
}

TEST_F(UpcallTraceEngineTest, ContinuationCommittedBeforeParentKeepsOrder)
{
    uptrace_session *s = create_session("s");
    uptrace_round *parent = begin({s}, false, 0);
    ASSERT_TRUE(parent);
    expect_recirc(parent, 0x21, fingerprint(3, 4));
    uint64_t id = status_of(s).last_trace_id;

    /* Another thread handles the recirculated packet first. */
    uptrace_round *child = resume(0x21, fingerprint(3, 4));
    ASSERT_TRUE(child);
    fill(child, "child");
    uptrace_round_commit(child);
    fill(parent, "parent");
    uptrace_round_commit(parent);

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
    uptrace_round *capture = begin({a, b});
    ASSERT_TRUE(capture);
    expect_recirc(capture, 8, fingerprint(1, 1));
    expect_recirc(capture, 9, fingerprint(1, 1));
    fill(capture);
    uptrace_round_commit(capture);
    uint64_t id_a = status_of(a).last_trace_id;
    uint64_t id_b = status_of(b).last_trace_id;
    ASSERT_NE(id_a, id_b);

    /* b's trace is evicted: the next round only goes to a. */
    EXPECT_NE(0u, trace_one(b));
    capture = resume(8, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);
    EXPECT_EQ(2u, n_rounds(id_a));
    EXPECT_FALSE(exists(id_b));

    /* a disabled: no target remains. */
    ASSERT_EQ(0, reconfigure(a, "a", [](uptrace_session_config &c) {
        c.enabled = false;
    }));
    EXPECT_EQ(nullptr, resume(9, fingerprint(1, 1)));
    EXPECT_EQ(2u, n_rounds(id_a));
}

} /* anonymous namespace */
