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

#ifndef OFPROTO_UPCALL_TRACE_FLOWS_HH
#define OFPROTO_UPCALL_TRACE_FLOWS_HH 1

/* The datapath flows that traced rounds installed, followed for as long as
 * they live.
 *
 * A round that installed a datapath flow knows its UFID.  The revalidators
 * report, by UFID, what happens to the flows afterwards: the packets and
 * bytes each carried, each revalidation that modified it, its deletion and
 * why.  FlowLog keeps that for the flows of stored rounds, so that
 * upcall/trace/get shows a flow's life beside the translation that created
 * it, and so that a UFID leads back to its trace, even after the flow left
 * the datapath.
 *
 * The revalidators report on every flow they look at while FlowLog follows
 * any: following() is the one relaxed load they pay to know. */

#include <array>
#include <cstring>
#include <atomic>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "openvswitch/thread.h"
#include "upcall-trace.h"
#include "upcall-trace-engine-util.hh"

namespace uptrace {

using Ufid = std::array<uint8_t, 16>;

struct UfidHash {
    size_t operator()(const Ufid &ufid) const noexcept
    {
        uint64_t a, b;
        memcpy(&a, ufid.data(), 8);
        memcpy(&b, ufid.data() + 8, 8);
        return a ^ (b * 0x9e3779b97f4a7c15ULL);
    }
};

/* Something that happened to a followed flow. */
struct FlowEvent {
    int64_t wall_ms = 0;
    enum uptrace_flow_change change = UPTRACE_FLOW_MODIFIED;
    std::string detail;         /* New actions, or why it was deleted. */
};

/* A trace whose round installed a flow, and its session, which only
 * identifies it. */
struct FlowTrace {
    uint64_t trace_id;
    const void *session;
};

/* The traces that installed one life of a flow, in the order given.  Nearly
 * always one (one session traces the packet): it is held inline, so that
 * following a flow allocates nothing for it, on the capture path. */
class FlowTraces {
public:
    FlowTraces() = default;
    FlowTraces(const FlowTraces &other) { append(other); }
    FlowTraces(FlowTraces &&other) noexcept { take(other); }
    FlowTraces &operator=(const FlowTraces &other)
    {
        if (this != &other) {
            size_ = 0;
            append(other);
        }
        return *this;
    }
    FlowTraces &operator=(FlowTraces &&other) noexcept
    {
        if (this != &other) {
            delete[] heap_;
            take(other);
        }
        return *this;
    }
    ~FlowTraces() { delete[] heap_; }

    size_t size() const { return size_; }
    bool empty() const { return !size_; }
    const FlowTrace *begin() const { return data(); }
    const FlowTrace *end() const { return data() + size_; }
    const FlowTrace &operator[](size_t i) const { return data()[i]; }

    void push_back(const FlowTrace &trace)
    {
        if (size_ == capacity_) {
            grow(2 * capacity_);
        }
        data()[size_++] = trace;
    }
    void erase(size_t i)
    {
        FlowTrace *d = data();
        std::memmove(&d[i], &d[i + 1], (size_ - i - 1) * sizeof *d);
        size_--;
    }
    /* Heap bytes, beyond the object itself. */
    uint64_t heap_size() const
    {
        return heap_ ? capacity_ * sizeof(FlowTrace) : 0;
    }

private:
    FlowTrace *data() { return heap_ ? heap_ : &inline_; }
    const FlowTrace *data() const { return heap_ ? heap_ : &inline_; }
    void grow(size_t capacity)
    {
        FlowTrace *heap = new FlowTrace[capacity];
        std::memcpy(heap, data(), size_ * sizeof *heap);
        delete[] heap_;
        heap_ = heap;
        capacity_ = capacity;
    }
    void append(const FlowTraces &other)
    {
        for (const FlowTrace &trace : other) {
            push_back(trace);
        }
    }
    void take(FlowTraces &other)
    {
        inline_ = other.inline_;
        heap_ = other.heap_;
        size_ = other.size_;
        capacity_ = other.capacity_;
        other.heap_ = nullptr;
        other.size_ = 0;
        other.capacity_ = 1;
    }

    FlowTrace inline_{};
    FlowTrace *heap_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 1;
};

/* One life of a datapath flow: from the round that installed it until it
 * left the datapath.  The same flow (the same key, so the same UFID) may be
 * installed again later, by another trace: that is another life. */
struct FlowLife {
    FlowTraces traces;                  /* Traces whose round installed it. */
    uint64_t seq = 0;                   /* Its entry in FlowLog's order_. */
    int64_t installed_ms = 0;           /* Wall clock. */
    uint64_t n_packets = 0;             /* Since installed. */
    uint64_t n_bytes = 0;
    bool gone = false;                  /* Deleted from the datapath. */
    std::vector<FlowEvent> events;      /* Oldest first, at most kMaxEvents. */
    uint64_t n_events_dropped = 0;      /* Events beyond kMaxEvents. */

    uint64_t stored_size() const;
};

class FlowLog {
public:
    /* Lives kept at once; the oldest are forgotten first. */
    static constexpr size_t kMaxLives = 65536;
    /* Events kept per life; later ones are only counted. */
    static constexpr size_t kMaxEvents = 16;

    FlowLog() { ovs_mutex_init(&mutex_); }
    ~FlowLog() { ovs_mutex_destroy(&mutex_); }
    FlowLog(const FlowLog &) = delete;
    FlowLog &operator=(const FlowLog &) = delete;

    /* True while some flow is followed.  Lock-free. */
    bool following() const
    {
        return n_lives_.load(std::memory_order_relaxed) != 0;
    }

    /* A round of each of 'traces' (one per session it was stored in)
     * installed the flow 'ufid' at 'wall_ms'.  'traces' is taken: this
     * runs for every traced round that installs a flow. */
    void installed(const Ufid &ufid, FlowTraces traces, int64_t wall_ms)
        OVS_EXCLUDED(mutex_);
    /* The same, for a round of each of 'trace_ids', whose sessions are
     * 'sessions'. */
    void installed(const Ufid &ufid, const std::vector<uint64_t> &trace_ids,
                   const std::vector<const void *> &sessions,
                   int64_t wall_ms) OVS_EXCLUDED(mutex_);

    /* Forgets the traces of 'session' (its traces were cleared, or it is
     * gone), and the lives that no trace holds any more. */
    void forget_session(const void *session) OVS_EXCLUDED(mutex_);

    /* Forgets, for each (trace id, UFID) of 'traces', that trace of
     * 'session' installed that flow (the session evicted the trace), and
     * the lives that no trace holds any more: the log follows what the
     * sessions store, not up to kMaxLives flows whatever they hold. */
    void forget_traces(
        const void *session,
        const std::vector<std::pair<uint64_t, Ufid>> &traces)
        OVS_EXCLUDED(mutex_);

    /* A revalidator reports on flow 'ufid': its counters since it was
     * installed and, unless 'change' is UPTRACE_FLOW_STATS, a change.
     * Returns false if the flow is not followed, most often without taking
     * the lock (see 'maybe_followed_'). */
    bool changed(const Ufid &ufid, enum uptrace_flow_change change,
                 const std::string &detail, uint64_t n_packets,
                 uint64_t n_bytes, int64_t wall_ms) OVS_EXCLUDED(mutex_);

    /* A copy of the life of 'ufid' that trace 'trace_id' installed. */
    bool find(const Ufid &ufid, uint64_t trace_id, FlowLife *life) const
        OVS_EXCLUDED(mutex_);

    /* The traces that installed 'ufid', newest life first. */
    std::vector<uint64_t> traces_of(const Ufid &ufid) const
        OVS_EXCLUDED(mutex_);

    uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
    size_t n_lives() const { return n_lives_.load(std::memory_order_relaxed); }

private:
    void forget_oldest() OVS_REQUIRES(mutex_);
    void erase_life(std::vector<FlowLife> *lives, size_t i)
        OVS_REQUIRES(mutex_);
    void compact_order() OVS_REQUIRES(mutex_);
    void account() OVS_REQUIRES(mutex_);
    std::atomic<uint32_t> &maybe_followed(const Ufid &ufid)
    {
        return maybe_followed_[UfidHash()(ufid) % maybe_followed_.size()];
    }

    mutable struct ovs_mutex mutex_;
    /* The lives of each flow, oldest first; only the last one may be live. */
    std::unordered_map<Ufid, std::vector<FlowLife>, UfidHash> flows_
        OVS_GUARDED_BY(mutex_);
    /* Every life, in the order they began, as (UFID, FlowLife::seq); an
     * entry whose life was forgotten early (forget_traces()) stays until it
     * reaches the front or compact_order() drops it. */
    std::deque<std::pair<Ufid, uint64_t>> order_ OVS_GUARDED_BY(mutex_);
    uint64_t next_seq_ OVS_GUARDED_BY(mutex_) = 0;
    size_t n_lives_locked_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t size_ OVS_GUARDED_BY(mutex_) = 0;
    /* For each of 4,096 buckets of UFIDs, how many lives of flows in it the
     * log holds: the revalidators report every flow at every dump, and
     * changed() skips a flow of an empty bucket without the lock that the
     * upcall path takes to log each flow it installs. */
    std::array<std::atomic<uint32_t>, 4096> maybe_followed_{};
    std::atomic<size_t> n_lives_{0};
    std::atomic<uint64_t> bytes_{0};
};

/* A round, for render_flow_lives(): its number in its trace and the UFID
 * of the flow it installed. */
struct InstalledRound {
    uint32_t number;
    Ufid ufid;
};

/* upcall/trace/get's part: the lives of the flows that trace 'trace_id'
 * installed in 'rounds', in 'format': text lines, or a JSON array.  Empty
 * text if no flow is followed. */
std::string render_flow_lives(const FlowLog &, uint64_t trace_id,
                              const std::vector<InstalledRound> &rounds,
                              enum uptrace_format);

} /* namespace uptrace */

#endif /* ofproto/upcall-trace-flows.hh */
