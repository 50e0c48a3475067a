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

/* Tests of capturing rounds (upcall-trace-round.cc): one round for many
 * sessions, aborted rounds. */

#include <config.h>

#include "upcall-trace-engine-test.hh"

using namespace uptrace_test;

namespace {

TEST_F(UpcallTraceEngineTest, MultipleSessionsMatchOneUpcall)
{
    uptrace_session *a = create_session("a");
    uptrace_session *b = create_session("b");
    uptrace_session *off = create_session("off",
                                          [](uptrace_session_config &c) {
        c.enabled = false;
    });
    uptrace_round *capture = begin({a, off, b}, true);
    ASSERT_TRUE(capture);
    expect_recirc(capture, 1, fingerprint(1, 1));
    fill(capture);
    uptrace_round_commit(capture);
    capture = resume(1, fingerprint(1, 1));
    ASSERT_TRUE(capture);
    fill(capture);
    uptrace_round_commit(capture);

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
    uptrace_round *capture = begin({s});
    ASSERT_TRUE(capture);
    EXPECT_EQ(1u, status_of(s).n_traces);
    uptrace_round_abort(capture);
    uptrace_round_abort(nullptr);
    EXPECT_EQ(0u, status_of(s).n_traces);
    EXPECT_EQ(0u, usage().bytes);
    EXPECT_EQ("No upcall traces.\n", list());
}

TEST_F(UpcallTraceEngineTest, PacketBytesKeptForTheLargestSession)
{
    uptrace_session *none = create_session("none");
    uptrace_session *small = create_session(
        "small", [](uptrace_session_config &c) { c.packet_bytes = 4; });
    uptrace_session *large = create_session(
        "large", [](uptrace_session_config &c) { c.packet_bytes = 6; });

    /* A session alone keeps nothing unless it asks. */
    uptrace_round *capture = begin({none});
    ASSERT_TRUE(capture);
    EXPECT_EQ(0u, uptrace_round_packet_bytes(capture));
    uptrace_round_abort(capture);

    capture = begin({small, large});
    ASSERT_TRUE(capture);
    EXPECT_EQ(6u, uptrace_round_packet_bytes(capture));
    const char packet[] = "\x01\x02\x03\x04\x05\x06";
    fill(capture);
    uptrace_round_set_packet(capture, packet, 6, 98);
    uint64_t before = usage().bytes;
    uptrace_round_commit(capture);
    EXPECT_GE(usage().bytes, before);

    uint64_t id = status_of(large).last_trace_id;
    EXPECT_NE(std::string::npos, get(id).find("Packet: 6 of 98 bytes kept\n"));
    std::string json = get(id, UPTRACE_FORMAT_JSON);
    EXPECT_NE(std::string::npos,
              json.find("\"packet_len\":98,\"packet\":\"010203040506\""));

    /* A reconfiguration changes it for the next rounds. */
    ASSERT_EQ(0, reconfigure(large, "large", [](uptrace_session_config &c) {
        c.packet_bytes = 2;
    }));
    capture = begin({small, large});
    ASSERT_TRUE(capture);
    EXPECT_EQ(4u, uptrace_round_packet_bytes(capture));
    uptrace_round_abort(capture);

    /* Out of range. */
    struct uptrace_session_config config;
    uptrace_session_config_init(&config);
    config.name = "huge";
    config.bridge = "br0";
    config.packet_bytes = UPTRACE_PACKET_BYTES_MAX + 1;
    uptrace_session *session = nullptr;
    char *error = nullptr;
    EXPECT_EQ(EINVAL, uptrace_session_create(engine(), &config, &session,
                                             &error));
    EXPECT_NE(std::string::npos,
              std::string(error).find("packet_bytes 65536 is out of range"));
    free(error);
}

} /* anonymous namespace */
