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

/* Micro-benchmarks of the upcall trace engine (Google Benchmark).
 *
 * Built in the Open vSwitch tree by "make tests/upcall-trace-engine-bench"
 * (upcall-trace.mk, "Benchmarks") and run by tests/bench/run-bench ("make
 * bench" at the top).  Never part of "make check".
 *
 *   BM_MatchDecision/S/M   The per-upcall decision with S sessions on the
 *                          bridge, M=1 all matching, M=0 none: the shim's
 *                          is-active load and its index lookup
 *                          (ofproto/upcall-trace-index.c), then, for matches,
 *                          uptrace_round_begin() and uptrace_round_abort().
 *   BM_NCapturing          uptrace_engine_n_capturing().
 *   BM_Expects/E           uptrace_engine_expects() for a recirc id nobody
 *                          waits for, with E expectations stored.
 *   BM_CaptureStore        A whole traced upcall: begin, every field, commit,
 *                          with no eviction (max_traces 65536; the session is
 *                          cleared, untimed, when full).
 *   BM_CaptureEvict        The same at max_traces=64: every commit's begin
 *                          evicts the oldest trace.
 *   BM_CaptureRecirc       A traced packet through ct and recirc: two rounds,
 *                          the second linked by uptrace_round_continue().
 *   BM_RenderGet/F         upcall/trace/get of one two-round trace, F=0 text,
 *                          F=1 JSON, with the shim's formatter.
 *   BM_RenderList/F        upcall/trace/list of 64 traces. */

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "upcall-trace.h"
#include "upcall-trace-bench-ovs.h"

namespace {

const char kTranslation1[] =
    "bridge(\"br0\")\n"
    "-------------\n"
    " 0. ip,in_port=1, priority 10\n"
    "    ct(table=1,zone=1)\n"
    "    drop\n"
    "     -> A clone of the packet is forked to recirculate. The forked "
    "pipeline will be resumed at table 1.\n"
    "     -> Sets the packet to an untracked state, and clears all the "
    "conntrack fields.\n";

const char kTranslation2[] =
    "bridge(\"br0\")\n"
    "-------------\n"
    "    thaw\n"
    "        Resuming from table 1\n"
    " 1. ct_state=+new+trk,ip,in_port=1, priority 10\n"
    "    ct(commit,zone=1)\n"
    "    drop\n"
    "     -> Sets the packet to an untracked state, and clears all the "
    "conntrack fields.\n"
    "    output:2\n";

const char kPath1[] = "bridge(\"br0\")\n 0. ip,in_port=1, priority 10\n";
const char kPath2[] = "bridge(\"br0\")\nthaw\n"
                      " 1. ct_state=+new+trk,ip,in_port=1, priority 10\n";

const uint8_t kUfid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                           0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

struct uptrace_round_info
round_info(uint32_t recirc_id)
{
    struct uptrace_round_info info = {};
    info.upcall_type = "miss";
    info.recirc_id = recirc_id;
    info.in_port = 1;
    info.in_port_name = "p1";
    info.datapath = "ovs-dummy@ovs-dummy";
    info.pmd_id = UINT32_MAX;
    return info;
}

struct uptrace_fingerprint
fingerprint()
{
    struct uptrace_fingerprint fp = {};
    fp.invariant = 0x0123456789abcdefULL;
    fp.tuple = 0xfedcba9876543210ULL;
    fp.nat = false;
    return fp;
}

/* An engine with 'n' ready sessions on br0. */
class Fixture {
public:
    explicit Fixture(size_t n, uint32_t max_traces = 64)
    {
        struct uptrace_engine_options options = {};
        options.formatter = bench_blob_formatter();
        engine_ = uptrace_engine_create(&options);
        for (size_t i = 0; i < n; i++) {
            struct uptrace_session_config config;
            uptrace_session_config_init(&config);
            std::string name = "s" + std::to_string(i);
            config.name = name.c_str();
            config.bridge = "br0";
            config.filter = "udp";
            config.max_traces = max_traces;
            struct uptrace_session *session;
            char *error;
            if (uptrace_session_create(engine_, &config, &session, &error)) {
                fprintf(stderr, "session: %s\n", error);
                abort();
            }
            uptrace_session_set_ready(session, true, nullptr, nullptr);
            sessions_.push_back(session);
        }
        bench_blobs_get(&blobs_);
    }

    ~Fixture()
    {
        for (struct uptrace_session *session : sessions_) {
            uptrace_session_destroy(session);
        }
        uptrace_engine_destroy(engine_);
    }

    struct uptrace_engine *engine() { return engine_; }
    std::vector<struct uptrace_session *> &sessions() { return sessions_; }

    /* Fills and commits a capture as the shim does for one round. */
    void fill(struct uptrace_round *capture, const char *translation,
              const char *path)
    {
        uptrace_round_set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW,
                               blobs_.flow, blobs_.flow_size);
        uptrace_round_set_blob(capture, UPTRACE_BLOB_FINAL_FLOW,
                               blobs_.flow, blobs_.flow_size);
        uptrace_round_set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS,
                               blobs_.odp_actions, blobs_.odp_actions_size);
        uptrace_round_set_translation(capture, translation);
        uptrace_round_set_path(capture, path);
        uptrace_round_set_ufid(capture, kUfid);
        uptrace_round_set_install(capture, true, nullptr);
        uptrace_round_set_blob(capture, UPTRACE_BLOB_MEGAFLOW,
                               blobs_.megaflow, blobs_.megaflow_size);
    }

    /* One traced packet through ct and recirc: two rounds. */
    void trace_packet(uint32_t recirc_id)
    {
        struct uptrace_round_info info = round_info(0);
        struct uptrace_round *c = uptrace_round_begin(
            engine_, sessions_.data(), sessions_.size(), &info, false);
        fill(c, kTranslation1, kPath1);
        struct uptrace_fingerprint fp = fingerprint();
        uptrace_round_expect_recirc(c, recirc_id, &fp);
        uptrace_round_commit(c);

        info = round_info(recirc_id);
        if (uptrace_engine_expects(engine_, recirc_id)) {
            c = uptrace_round_continue(engine_, recirc_id, &fp, &info);
            if (c) {
                fill(c, kTranslation2, kPath2);
                uptrace_round_commit(c);
            }
        }
    }

    uint64_t n_traces()
    {
        struct uptrace_memory_usage usage;
        uptrace_engine_get_memory_usage(engine_, &usage);
        return usage.n_traces;
    }

private:
    struct uptrace_engine *engine_;
    std::vector<struct uptrace_session *> sessions_;
    struct bench_blobs blobs_;
};

void
BM_MatchDecision(benchmark::State &state)
{
    size_t n = state.range(0);
    bool matching = state.range(1);
    Fixture fixture(n);
    struct upcall_trace_index *index = bench_index_create(
        fixture.sessions().data(), n, matching);
    /* As upcall_trace_begin(): a stub, and an allocation for more. */
    struct uptrace_session *stub[16];
    struct uptrace_round_info info = round_info(0);
    size_t n_captures = 0;

    bench_set_active(n);
    for (auto _ : state) {
        if (!bench_is_active()) {
            continue;
        }
        struct uptrace_session **matched;
        size_t n_matched = bench_index_match(index, stub,
                                             sizeof stub / sizeof *stub,
                                             &matched);
        if (n_matched) {
            struct uptrace_round *capture = uptrace_round_begin(
                fixture.engine(), matched, n_matched, &info, false);
            benchmark::DoNotOptimize(capture);
            n_captures += capture != nullptr;
            uptrace_round_abort(capture);
        }
        if (matched != stub) {
            free(matched);
        }
    }
    bench_set_active(0);
    if (matching && n && !n_captures) {
        state.SkipWithError("nothing matched");
    }
    bench_index_destroy(index);
}
BENCHMARK(BM_MatchDecision)
    ->ArgNames({"sessions", "matching"})
    ->ArgsProduct({{0, 1, 10, 100, 1000}, {0, 1}});

void
BM_NCapturing(benchmark::State &state)
{
    Fixture fixture(1);
    for (auto _ : state) {
        benchmark::DoNotOptimize(uptrace_engine_n_capturing(fixture.engine()));
    }
}
BENCHMARK(BM_NCapturing);

void
BM_Expects(benchmark::State &state)
{
    Fixture fixture(1);
    struct uptrace_round_info info = round_info(0);
    struct uptrace_fingerprint fp = fingerprint();

    /* Expectations for recirc ids 1..E; the benchmark asks about others. */
    for (int64_t i = 0; i < state.range(0); i++) {
        struct uptrace_round *c = uptrace_round_begin(
            fixture.engine(), fixture.sessions().data(), 1, &info, false);
        uptrace_round_expect_recirc(c, 1 + i, &fp);
        uptrace_round_commit(c);
    }
    uint32_t id = 1000000;
    for (auto _ : state) {
        benchmark::DoNotOptimize(uptrace_engine_expects(fixture.engine(),
                                                        id++));
    }
}
BENCHMARK(BM_Expects)->ArgName("expectations")->Arg(0)->Arg(4096);

void
capture_store(benchmark::State &state, uint32_t max_traces)
{
    Fixture fixture(1, max_traces);
    struct uptrace_round_info info = round_info(0);

    for (auto _ : state) {
        struct uptrace_round *c = uptrace_round_begin(
            fixture.engine(), fixture.sessions().data(), 1, &info, false);
        fixture.fill(c, kTranslation2, kPath2);
        uptrace_round_commit(c);
        if (max_traces == UPTRACE_MAX_TRACES_MAX
            && fixture.n_traces() >= max_traces) {
            state.PauseTiming();
            uptrace_engine_clear(fixture.engine(), nullptr, nullptr);
            state.ResumeTiming();
        }
    }
    struct uptrace_memory_usage usage;
    uptrace_engine_get_memory_usage(fixture.engine(), &usage);
    state.counters["bytes_per_trace"] = usage.n_traces
        ? static_cast<double>(usage.bytes) / usage.n_traces : 0;
}

void
BM_CaptureStore(benchmark::State &state)
{
    capture_store(state, UPTRACE_MAX_TRACES_MAX);
}
BENCHMARK(BM_CaptureStore);

void
BM_CaptureEvict(benchmark::State &state)
{
    capture_store(state, 64);
}
BENCHMARK(BM_CaptureEvict);

void
BM_CaptureRecirc(benchmark::State &state)
{
    Fixture fixture(1, 64);
    uint32_t recirc_id = 1;
    for (auto _ : state) {
        fixture.trace_packet(recirc_id);
        recirc_id = recirc_id % 1000 + 1;
    }
}
BENCHMARK(BM_CaptureRecirc);

void
render(benchmark::State &state, bool list)
{
    enum uptrace_format format = (state.range(0) ? UPTRACE_FORMAT_JSON
                                  : UPTRACE_FORMAT_TEXT);
    Fixture fixture(1, 64);
    for (int i = 0; i < 64; i++) {
        fixture.trace_packet(1 + i);
    }
    char *out = nullptr, *error = nullptr;
    if (uptrace_engine_list(fixture.engine(), nullptr, UPTRACE_FORMAT_TEXT,
                            &out, &error)) {
        state.SkipWithError(error);
        free(error);
        return;
    }
    uint64_t id = strtoull(out, nullptr, 0);  /* First column: the id. */
    free(out);

    size_t bytes = 0;
    for (auto _ : state) {
        int retval = (list
                      ? uptrace_engine_list(fixture.engine(), nullptr, format,
                                            &out, &error)
                      : uptrace_engine_get(fixture.engine(), id, format,
                                           &out, &error));
        if (retval) {
            state.SkipWithError(error);
            free(error);
            break;
        }
        bytes = strlen(out);
        free(out);
    }
    state.counters["output_bytes"] = bytes;
}

void
BM_RenderGet(benchmark::State &state)
{
    render(state, false);
}
BENCHMARK(BM_RenderGet)->ArgName("json")->Arg(0)->Arg(1);

void
BM_RenderList(benchmark::State &state)
{
    render(state, true);
}
BENCHMARK(BM_RenderList)->ArgName("json")->Arg(0)->Arg(1);

} /* anonymous namespace */

BENCHMARK_MAIN();
