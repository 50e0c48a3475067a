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

/* Tests of the datapath flows of traced rounds (upcall-trace-flows.cc):
 * their lives, lookup by UFID, and their place in upcall/trace/get. */

#include <config.h>

#include "upcall-trace-engine-test.hh"
#include "upcall-trace-flows.hh"
#include "upcall-trace-registry.hh"

using namespace uptrace_test;

namespace {

const uint8_t kUfid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                           15, 16};
const uint8_t kOtherUfid[16] = {9};

class UpcallTraceFlowsTest : public UpcallTraceEngineTest {
protected:
    /* Stores a one-round trace of 's' whose round installed 'ufid'. */
    uint64_t store_installed(uptrace_session *s, const uint8_t ufid[16],
                             bool installed = true)
    {
        uptrace_round *capture = begin({s});
        EXPECT_TRUE(capture);
        fill(capture);
        uptrace_round_set_ufid(capture, ufid);
        uptrace_round_set_install(capture, installed,
                                  installed ? nullptr : "not a miss");
        uptrace_round_commit(capture);
        return status_of(s).last_trace_id;
    }

    uint64_t find(const uint8_t ufid[16])
    {
        uint64_t id;
        char *error = nullptr;
        int retval = uptrace_engine_find_ufid(engine(), ufid, &id, &error);
        free(error);
        return retval ? 0 : id;
    }

    std::string flow_part(uint64_t id)
    {
        std::string text = get(id);
        size_t pos = text.find("--- Datapath flow");
        return pos == std::string::npos ? "" : text.substr(pos);
    }
};

TEST_F(UpcallTraceFlowsTest, NothingFollowedUntilARoundInstallsAFlow)
{
    uptrace_session *s = create_session("s");
    EXPECT_FALSE(uptrace_engine_follows_flows(engine()));

    /* A round that installed nothing has no flow to follow. */
    uint64_t id = store_installed(s, kUfid, false);
    EXPECT_FALSE(uptrace_engine_follows_flows(engine()));
    EXPECT_EQ("", flow_part(id));
    EXPECT_EQ(0u, find(kUfid));
    EXPECT_FALSE(uptrace_engine_flow_changed(engine(), kUfid,
                                             UPTRACE_FLOW_STATS, nullptr,
                                             1, 2));

    id = store_installed(s, kUfid);
    EXPECT_TRUE(uptrace_engine_follows_flows(engine()));
    EXPECT_EQ(id, find(kUfid));
    EXPECT_EQ(0u, find(kOtherUfid));
    /* Flows no round installed are not followed. */
    EXPECT_FALSE(uptrace_engine_flow_changed(engine(), kOtherUfid,
                                             UPTRACE_FLOW_STATS, nullptr,
                                             1, 2));
}

TEST_F(UpcallTraceFlowsTest, LifeFromInstallationToDeletion)
{
    uptrace_session *s = create_session("s");
    uint64_t id = store_installed(s, kUfid);

    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_STATS, nullptr,
                                            3, 300));
    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_MODIFIED,
                                            "actions 2 -> 3", 4, 400));
    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_DELETED, "idle",
                                            5, 500));
    /* Gone: later reports concern no life of this trace. */
    EXPECT_FALSE(uptrace_engine_flow_changed(engine(), kUfid,
                                             UPTRACE_FLOW_STATS, nullptr,
                                             9, 900));

    std::string expected =
        "--- Datapath flow of round 1:"
        " ufid:04030201-0807-0605-0c0b-0a09100f0e0d ---\n"
        "Installed: 2026-11-26T12:00:00.123Z\n"
        "Since: 5 packets, 500 bytes\n"
        "2026-11-26T12:00:00.123Z modified: actions 2 -> 3\n"
        "2026-11-26T12:00:00.123Z deleted: idle\n"
        "State: left the datapath\n";
    EXPECT_EQ(expected, flow_part(id));

    /* Still found by UFID once the flow is gone. */
    EXPECT_EQ(id, find(kUfid));

    std::string json = get(id, UPTRACE_FORMAT_JSON);
    EXPECT_NE(std::string::npos, json.find(
        "\"datapath_flows\":[{\"round\":1,"
        "\"ufid\":\"ufid:04030201-0807-0605-0c0b-0a09100f0e0d\""));
    EXPECT_NE(std::string::npos, json.find(
        "\"n_packets\":5,\"n_bytes\":500,\"in_datapath\":false"));
    EXPECT_NE(std::string::npos, json.find(
        "{\"time\":\"2026-11-26T12:00:00.123Z\",\"time_ms\":"));
    EXPECT_NE(std::string::npos, json.find(
        "\"change\":\"deleted\",\"detail\":\"idle\"}]}]}"));
}

TEST_F(UpcallTraceFlowsTest, ReinstalledFlowIsAnotherLife)
{
    uptrace_session *s = create_session("s");
    uint64_t first = store_installed(s, kUfid);
    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_DELETED, "purge",
                                            1, 100));
    uint64_t second = store_installed(s, kUfid);
    ASSERT_NE(first, second);
    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_STATS, nullptr,
                                            7, 700));

    EXPECT_NE(std::string::npos, flow_part(first).find("deleted: purge"));
    EXPECT_NE(std::string::npos, flow_part(first).find("1 packets, 100"));
    EXPECT_NE(std::string::npos, flow_part(second).find("7 packets, 700"));
    EXPECT_NE(std::string::npos,
              flow_part(second).find("State: in the datapath"));
    /* The UFID leads to the newest trace. */
    EXPECT_EQ(second, find(kUfid));

    /* A live flow installed again was replaced. */
    uint64_t third = store_installed(s, kUfid);
    EXPECT_NE(std::string::npos,
              flow_part(second).find("deleted: replaced by a new"));
    EXPECT_EQ(third, find(kUfid));
}

TEST_F(UpcallTraceFlowsTest, RoundOfSeveralSessionsSharesOneLife)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    uptrace_round *capture = begin({a, b});
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_set_ufid(capture, kUfid);
    uptrace_round_set_install(capture, true, nullptr);
    uptrace_round_commit(capture);
    uint64_t id_a = status_of(a).last_trace_id;
    uint64_t id_b = status_of(b).last_trace_id;
    ASSERT_NE(id_a, id_b);

    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_STATS, nullptr,
                                            2, 20));
    EXPECT_NE(std::string::npos, flow_part(id_a).find("2 packets, 20"));
    EXPECT_NE(std::string::npos, flow_part(id_b).find("2 packets, 20"));
}

TEST_F(UpcallTraceFlowsTest, EventsAndLivesAreBounded)
{
    uptrace::FlowLog log;
    uptrace::Ufid ufid{};
    log.installed(ufid, {1}, {nullptr}, 0);
    for (size_t i = 0; i < uptrace::FlowLog::kMaxEvents + 3; i++) {
        EXPECT_TRUE(log.changed(ufid, UPTRACE_FLOW_MODIFIED, "x", i, i, 0));
    }
    uptrace::FlowLife life;
    ASSERT_TRUE(log.find(ufid, 1, &life));
    EXPECT_EQ(uptrace::FlowLog::kMaxEvents, life.events.size());
    EXPECT_EQ(3u, life.n_events_dropped);
    uint64_t one_life = log.bytes();
    EXPECT_GT(one_life, 0u);

    for (uint32_t i = 1; i <= uptrace::FlowLog::kMaxLives; i++) {
        uptrace::Ufid other{};
        memcpy(other.data(), &i, sizeof i);
        log.installed(other, {i + 1}, {nullptr}, 0);
    }
    EXPECT_EQ(uptrace::FlowLog::kMaxLives, log.n_lives());
    /* The oldest life went first. */
    EXPECT_FALSE(log.find(ufid, 1, &life));
    EXPECT_TRUE(log.traces_of(ufid).empty());
}

TEST_F(UpcallTraceFlowsTest, LivesGoWithTheirSessionOrTraces)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    uint64_t id_a = store_installed(a, kUfid);
    uint64_t id_b = store_installed(b, kOtherUfid);
    EXPECT_EQ(id_a, find(kUfid));

    /* Clearing a session's traces forgets their flows. */
    char *error = nullptr;
    EXPECT_EQ(0, uptrace_engine_clear(engine(), "a", &error));
    free(error);
    EXPECT_EQ(0u, find(kUfid));
    EXPECT_FALSE(uptrace_engine_flow_changed(engine(), kUfid,
                                             UPTRACE_FLOW_STATS, nullptr,
                                             1, 1));
    EXPECT_EQ(id_b, find(kOtherUfid));
    EXPECT_GT(usage().bytes, 0u);

    /* A session that goes takes its flows along: nothing is left. */
    uptrace_session_destroy(b);
    EXPECT_FALSE(uptrace_engine_follows_flows(engine()));
    EXPECT_EQ(0u, find(kOtherUfid));
    uptrace_session_destroy(a);
    EXPECT_EQ(0u, usage().bytes);
}

/* A session that evicts a trace (circular, max_traces) stops following
 * the flows it installed, so that the log holds what the sessions hold;
 * a flow that another stored trace installed stays followed. */
TEST_F(UpcallTraceFlowsTest, EvictedTracesTakeTheirFlowsAlong)
{
    uptrace_session *a = create_session("a", [](uptrace_session_config &c) {
        c.max_traces = 2;
    });
    uint64_t first = store_installed(a, kUfid);
    EXPECT_EQ(first, find(kUfid));
    store_installed(a, kOtherUfid);
    EXPECT_EQ(2u, engine()->flows().n_lives());

    /* A third trace evicts the first: its flow is no longer followed,
     * and a revalidator's report on it is refused without the lock. */
    uint8_t third_ufid[16] = {3};
    store_installed(a, third_ufid);
    EXPECT_EQ(0u, find(kUfid));
    EXPECT_FALSE(uptrace_engine_flow_changed(engine(), kUfid,
                                             UPTRACE_FLOW_STATS, nullptr,
                                             1, 1));
    EXPECT_EQ(2u, engine()->flows().n_lives());

    /* The same flow installed again by a new trace is a new life, which
     * the stale entry of the forgotten one does not take along. */
    uint64_t again = store_installed(a, kUfid);
    EXPECT_EQ(again, find(kUfid));
    EXPECT_TRUE(uptrace_engine_flow_changed(engine(), kUfid,
                                            UPTRACE_FLOW_STATS, nullptr,
                                            1, 1));
    EXPECT_EQ(2u, engine()->flows().n_lives());
}

} /* anonymous namespace */
