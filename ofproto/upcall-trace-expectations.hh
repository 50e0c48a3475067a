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

#ifndef OFPROTO_UPCALL_TRACE_EXPECTATIONS_HH
#define OFPROTO_UPCALL_TRACE_EXPECTATIONS_HH 1

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "openvswitch/thread.h"
#include "upcall-trace.h"
#include "upcall-trace-engine-util.hh"

struct uptrace_session;

namespace uptrace {

/* A reference from an expectation to the trace it continues. */
struct TraceRef {
    std::weak_ptr<struct ::uptrace_session> session;
    uint64_t trace_id;
};

/* A round that a trace expected and that never came. */
struct MissedRound {
    uint32_t recirc_id;
    bool dropped;       /* Dropped for room, rather than expired. */
};

/* Recirculation expectations: (recirc_id, fingerprint.invariant) -> the
 * traces a recirculated packet continues.
 *
 * An expectation registered with 'fp.nat' accepts any tuple: the packet
 * goes through NAT, or its header is not known when it is frozen.  An
 * expectation that expires, or is dropped for room, unclaimed is
 * remembered for each of its traces (missed()), so that reading a trace
 * says that one of its rounds was not seen rather than nothing.
 *
 * uptrace_engine_expects() runs for every recirculated upcall, traced or
 * not, so it only reads atomics: the total number of entries and a count per
 * bucket of recirc_ids.  The entries themselves live in shards, each with
 * its own mutex, so that capture threads registering or claiming
 * expectations for different recirc_ids rarely contend. */
class ExpectationTable {
public:
    ExpectationTable(uint32_t max_entries, int64_t ttl_ms)
        : max_entries_(max_entries), ttl_ms_(ttl_ms)
    {
        for (auto &count : bucket_counts_) {
            count.store(0, std::memory_order_relaxed);
        }
        ovs_mutex_init(&missed_mutex_);
    }

    ~ExpectationTable() { ovs_mutex_destroy(&missed_mutex_); }

    ExpectationTable(const ExpectationTable &) = delete;
    ExpectationTable &operator=(const ExpectationTable &) = delete;

    /* Lock-free: one relaxed load when nothing is expected at all, two
     * otherwise.  Relaxed is enough: the packet whose recirculation is
     * expected goes through the datapath (system calls or PMD queues, full
     * barriers) between registration and this check, and a stale answer only
     * costs one trace its continuation. */
    bool expects(uint32_t recirc_id) const
    {
        return n_entries_.load(std::memory_order_relaxed)
            && bucket_counts_[bucket_of(recirc_id)]
                   .load(std::memory_order_relaxed);
    }

    /* Whether an entry for 'recirc_id' may be claimed by a packet whose
     * fingerprint has 'tuple' (any, if 'nat'): the check before the caller
     * computes the rest of the fingerprint, which costs a hash of the
     * packet's payload.  Expired entries may answer yes. */
    bool expects_tuple(uint32_t recirc_id, uint64_t tuple, bool nat) const;

    void add(uint32_t recirc_id, const struct uptrace_fingerprint &fp,
             std::vector<TraceRef> targets, int64_t now_ms);

    /* Claims the oldest live entry for 'recirc_id' and 'fp' into
     * '*targets'.  Returns false if there is none. */
    bool claim(uint32_t recirc_id, const struct uptrace_fingerprint &fp,
               int64_t now_ms, std::vector<TraceRef> *targets);

    /* Drops every expired entry.  Returns how many. */
    size_t purge_expired(int64_t now_ms);

    /* The rounds trace 'trace_id' expected and never got, oldest first. */
    std::vector<MissedRound> missed(uint64_t trace_id) const;

    /* missed() for trace 'trace_id', rendered after its rounds: text
     * lines, or the value of a JSON "missing_rounds" member (an array). */
    std::string render_missed(uint64_t trace_id, bool json) const;

    uint64_t size() const
    {
        return n_entries_.load(std::memory_order_relaxed);
    }

private:
    using Key = std::pair<uint32_t, uint64_t>;  /* recirc_id, invariant. */

    struct Entry {
        uint32_t recirc_id;
        uint64_t invariant;
        uint64_t tuple;
        bool any_tuple;
        int64_t deadline_ms;
        std::vector<TraceRef> targets;
    };

    struct Shard {
        Shard() { ovs_mutex_init(&mutex); }
        ~Shard() { ovs_mutex_destroy(&mutex); }
        Shard(const Shard &) = delete;
        Shard &operator=(const Shard &) = delete;

        mutable struct ovs_mutex mutex;
        /* Entries by age, oldest first. */
        std::map<uint64_t, Entry> by_seq OVS_GUARDED_BY(mutex);
        /* Index of 'by_seq' by key. */
        std::multimap<Key, uint64_t> by_key OVS_GUARDED_BY(mutex);
    };

    static constexpr size_t N_SHARDS = 16;
    static constexpr size_t N_BUCKETS = 256;

    static size_t bucket_of(uint32_t recirc_id)
    {
        /* Fibonacci hashing: recirc_ids are small consecutive numbers. */
        return (recirc_id * UINT32_C(2654435761)) >> 24;
    }

    static size_t shard_of(size_t bucket)
    {
        return bucket % N_SHARDS;
    }

    static bool is_expired(const Entry &entry, int64_t now_ms)
    {
        return now_ms > entry.deadline_ms;
    }

    void erase_locked(Shard &shard, std::map<uint64_t, Entry>::iterator it)
        OVS_REQUIRES(shard.mutex);

    /* Remembers that the traces of 'entry' missed its round. */
    void note_missed(const Entry &entry, bool dropped);

    /* The traces that missed a round, bounded: the oldest trace ids are
     * forgotten first.  A leaf lock, taken under a shard's. */
    static constexpr size_t MAX_MISSED_TRACES = 4096;
    mutable struct ovs_mutex missed_mutex_;
    std::map<uint64_t, std::vector<MissedRound>> missed_
        OVS_GUARDED_BY(missed_mutex_);

    /* Every entry has the same lifetime, so age order is deadline order
     * (as long as the monotonic clock does not go back): expired entries
     * are at the front. */
    size_t purge_expired_locked(Shard &shard, int64_t now_ms)
        OVS_REQUIRES(shard.mutex);

    /* Drops the oldest entry of the whole table.  The shards are visited
     * one at a time, never two locked at once, so under concurrent
     * additions the entry dropped is only approximately the oldest.
     * Returns false if the table is empty. */
    bool drop_oldest();

    const uint32_t max_entries_;
    const int64_t ttl_ms_;
    std::array<Shard, N_SHARDS> shards_;
    std::array<std::atomic<uint32_t>, N_BUCKETS> bucket_counts_;
    std::atomic<uint32_t> n_entries_{0};
    std::atomic<uint64_t> next_seq_{0};
};

} /* namespace uptrace */

#endif /* ofproto/upcall-trace-expectations.hh */
