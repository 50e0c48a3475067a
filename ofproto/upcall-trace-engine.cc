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

#include <config.h>

#include "upcall-trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "openvswitch/compiler.h"
#include "openvswitch/thread.h"
#include "openvswitch/util.h"
#include "upcall-trace-engine.hh"

/* Store of the upcall trace engine.
 *
 * Objects and ownership:
 *
 *   - struct uptrace_engine: the registry of sessions (by name) and the
 *     table of recirculation expectations.  Managed by a shared_ptr so that
 *     a capture in flight keeps it alive; uptrace_engine_destroy() releases
 *     the creator's reference.
 *
 *   - struct uptrace_session: configuration, bounds, counters and stored
 *     traces of one session, all guarded by the session's own mutex, so
 *     that capture threads working for different sessions never contend.
 *     Managed by a shared_ptr (held by the registry, by captures) plus a
 *     count of C handles (the creator's and uptrace_session_ref()'s): the
 *     object keeps a shared_ptr to itself while that count is nonzero.
 *     Expectations only hold weak_ptrs: they never keep a session alive.
 *
 *   - A trace is a vector of shared_ptrs to immutable rounds.  A round that
 *     two sessions matched is one object stored in both traces.
 *
 *   - struct uptrace_capture: one round being filled by a capture thread,
 *     plus the (session, trace id) pairs it will be stored in.
 *
 * Lock order: engine registry mutex, then a session mutex.  The expectation
 * shards' mutexes are leaves: nothing else is taken while one is held. */

#if __clang__
#define UPTRACE_SCOPED_CAPABILITY __attribute__((scoped_lockable))
#else
#define UPTRACE_SCOPED_CAPABILITY
#endif

namespace uptrace {
namespace {

/* Holds an ovs_mutex for the lifetime of the guard. */
class UPTRACE_SCOPED_CAPABILITY MutexGuard {
public:
    explicit MutexGuard(const struct ovs_mutex *mutex) OVS_ACQUIRES(mutex)
        : mutex_(mutex)
    {
        ovs_mutex_lock(mutex);
    }
    ~MutexGuard() OVS_RELEASES()
    {
        ovs_mutex_unlock(mutex_);
    }
    MutexGuard(const MutexGuard &) = delete;
    MutexGuard &operator=(const MutexGuard &) = delete;

private:
    const struct ovs_mutex *mutex_;
};

/* Like OVS's xmalloc() and friends: running out of memory is fatal. */
OVS_NO_RETURN void
out_of_memory()
{
    fputs("upcall trace: virtual memory exhausted\n", stderr);
    abort();
}

/* Returns a malloc()'d copy of 's', for the C caller to free(). */
char *
to_c_string(const std::string &s)
{
    char *copy = static_cast<char *>(malloc(s.size() + 1));
    if (!copy) {
        out_of_memory();
    }
    memcpy(copy, s.data(), s.size());
    copy[s.size()] = '\0';
    return copy;
}

std::string
nonnull(const char *s)
{
    return s ? s : "";
}

/* Stores 'error' in '*errp' if 'errp' is nonnull, and returns 'code'. */
int
fail(char **errp, int code, const std::string &error)
{
    if (errp) {
        *errp = to_c_string(error);
    }
    return code;
}

/* Runs 'body' so that no exception escapes into C: out of memory aborts, as
 * xmalloc() does, anything else becomes 'on_error'. */
template <typename Result, typename Body>
Result
call_from_c(Result on_error, Body &&body) noexcept
{
    try {
        return body();
    } catch (const std::bad_alloc &) {
        out_of_memory();
    } catch (...) {
        return on_error;
    }
}

template <typename Body>
void
call_from_c_void(Body &&body) noexcept
{
    try {
        body();
    } catch (const std::bad_alloc &) {
        out_of_memory();
    } catch (...) {
        /* Nothing to report to: the capture or the status is lost. */
    }
}

/* For int-returning functions: an unexpected exception is an EPROTO error
 * with a message, since the caller may show it. */
template <typename Body>
int
call_from_c_errno(char **errp, Body &&body) noexcept
{
    if (errp) {
        *errp = nullptr;
    }
    try {
        return body();
    } catch (const std::bad_alloc &) {
        out_of_memory();
    } catch (const std::exception &e) {
        return fail(errp, EPROTO,
                    std::string("upcall trace internal error: ") + e.what());
    } catch (...) {
        return fail(errp, EPROTO, "upcall trace internal error");
    }
}

/* Fixed costs added to the variable sizes in memory accounting: the objects
 * themselves and the containers' nodes that hold them. */
constexpr uint64_t ROUND_OVERHEAD = sizeof(Round) + 32;

/* Trace ids are unique in the process, so that an id read from one engine
 * (or before a clear) never names another trace. */
std::atomic<uint64_t> next_trace_id{1};

class Clock {
public:
    Clock(uptrace_clock *monotonic, uptrace_clock *wall, void *aux)
        : monotonic_(monotonic), wall_(wall), aux_(aux) {}

    int64_t monotonic_ms() const
    {
        if (monotonic_) {
            return monotonic_(aux_);
        }
        using namespace std::chrono;
        return duration_cast<milliseconds>(
            steady_clock::now().time_since_epoch()).count();
    }

    int64_t wall_ms() const
    {
        if (wall_) {
            return wall_(aux_);
        }
        using namespace std::chrono;
        return duration_cast<milliseconds>(
            system_clock::now().time_since_epoch()).count();
    }

private:
    uptrace_clock *monotonic_;
    uptrace_clock *wall_;
    void *aux_;
};

/* What an engine shares with its sessions, which may outlive it. */
struct EngineShared {
    explicit EngineShared(const Clock &clock_) : clock(clock_) {}

    const Clock clock;
    std::atomic<uint32_t> n_capturing{0};
    std::atomic<int64_t> n_traces{0};
    std::atomic<int64_t> n_rounds{0};
    std::atomic<int64_t> bytes{0};
    std::atomic<uint64_t> next_round_seq{1};
};

/* A session's configuration, owned copy of struct uptrace_session_config. */
struct SessionConfig {
    std::string name;
    std::string bridge;
    bool has_port = false;
    std::string port;
    std::string filter;
    uint32_t max_traces = UPTRACE_MAX_TRACES_DEFAULT;
    int64_t retention_ms = 0;
    enum uptrace_mode mode = UPTRACE_MODE_CIRCULAR;
    uint32_t max_rate = 0;
    uint64_t max_trace_size = 0;
    int64_t duration_ms = 0;
    bool enabled = true;
};

/* Checks 'c' and converts it into '*config'.  Returns 0 or EINVAL. */
int
parse_config(const struct uptrace_session_config *c, SessionConfig *config,
             char **errp)
{
    if (!c) {
        return fail(errp, EINVAL, "missing upcall trace configuration");
    }
    if (!c->name || !c->name[0]) {
        return fail(errp, EINVAL, "upcall trace session name is required");
    }
    if (!c->bridge || !c->bridge[0]) {
        return fail(errp, EINVAL, string_printf(
                        "upcall trace session %s: bridge is required",
                        c->name));
    }
    if (c->max_traces < UPTRACE_MAX_TRACES_MIN
        || c->max_traces > UPTRACE_MAX_TRACES_MAX) {
        return fail(errp, EINVAL, string_printf(
                        "upcall trace session %s: max_traces %" PRIu32
                        " is out of range (%d to %d)", c->name,
                        c->max_traces, UPTRACE_MAX_TRACES_MIN,
                        UPTRACE_MAX_TRACES_MAX));
    }
    if (c->retention_ms < 0) {
        return fail(errp, EINVAL, string_printf(
                        "upcall trace session %s: negative retention",
                        c->name));
    }
    if (c->duration_ms < 0) {
        return fail(errp, EINVAL, string_printf(
                        "upcall trace session %s: negative duration",
                        c->name));
    }
    if (c->mode != UPTRACE_MODE_CIRCULAR && c->mode != UPTRACE_MODE_STOP) {
        return fail(errp, EINVAL, string_printf(
                        "upcall trace session %s: invalid mode %d",
                        c->name, static_cast<int>(c->mode)));
    }

    config->name = c->name;
    config->bridge = c->bridge;
    config->has_port = c->port && c->port[0];
    config->port = config->has_port ? c->port : "";
    config->filter = nonnull(c->filter);
    config->max_traces = c->max_traces;
    config->retention_ms = c->retention_ms;
    config->mode = c->mode;
    config->max_rate = c->max_rate;
    config->max_trace_size = c->max_trace_size;
    config->duration_ms = c->duration_ms;
    config->enabled = c->enabled;
    return 0;
}

/* One stored trace. */
struct Trace {
    Trace(bool partial_, int64_t now_ms)
        : partial(partial_), last_monotonic_ms(now_ms) {}

    bool partial;
    bool truncated = false;
    int64_t last_monotonic_ms;  /* Capture time of the newest round. */
    uint64_t size = 0;          /* Sum of the rounds' stored_size(). */
    std::vector<RoundPtr> rounds;   /* Ordered by Round::seq. */
};

constexpr uint64_t TRACE_OVERHEAD = sizeof(Trace) + 64;

/* Returns a copy of 'round' whose translation is cut at a line boundary and
 * marked, so that its stored_size() is at most 'budget', or nullptr if not
 * even the marker fits. */
RoundPtr
truncate_round(const Round &round, uint64_t budget, uint64_t max_trace_size)
{
    const std::string marker = string_printf(
        "[trace truncated: max-trace-size %" PRIu64 " bytes reached]\n",
        max_trace_size);
    const uint64_t fixed = round.stored_size() - round.translation.size();
    if (budget < fixed + marker.size()) {
        return nullptr;
    }

    /* Keep the longest prefix of whole lines that fits. */
    uint64_t room = budget - fixed - marker.size();
    size_t keep = 0;
    if (room > 0 && !round.translation.empty()) {
        size_t limit = std::min<uint64_t>(room, round.translation.size());
        size_t newline = round.translation.rfind('\n', limit - 1);
        keep = newline == std::string::npos ? 0 : newline + 1;
    }

    auto copy = std::make_shared<Round>(round);
    copy->translation = round.translation.substr(0, keep) + marker;
    return copy;
}

/* A reference from an expectation to the trace it continues. */
struct TraceRef {
    std::weak_ptr<struct ::uptrace_session> session;
    uint64_t trace_id;
};

/* Recirculation expectations: (recirc_id, fingerprint.invariant) -> the
 * traces a recirculated packet continues.
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
    }

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

    void add(uint32_t recirc_id, const struct uptrace_fingerprint &fp,
             std::vector<TraceRef> targets, int64_t now_ms)
    {
        size_t bucket = bucket_of(recirc_id);
        Shard &shard = shards_[shard_of(bucket)];
        {
            MutexGuard guard(&shard.mutex);
            purge_expired_locked(shard, now_ms);

            /* Taken under the shard mutex, so that each shard's entries are
             * in increasing 'seq' (age) order. */
            uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
            Entry entry;
            entry.recirc_id = recirc_id;
            entry.invariant = fp.invariant;
            entry.tuple = fp.tuple;
            entry.deadline_ms = now_ms + ttl_ms_;
            entry.targets = std::move(targets);
            shard.by_seq.emplace(seq, std::move(entry));
            shard.by_key.emplace(Key(recirc_id, fp.invariant), seq);
            bucket_counts_[bucket].fetch_add(1, std::memory_order_release);
            n_entries_.fetch_add(1, std::memory_order_release);
        }

        while (n_entries_.load(std::memory_order_relaxed) > max_entries_) {
            if (!drop_oldest()) {
                break;
            }
        }
    }

    /* Claims the oldest live entry for 'recirc_id' and 'fp' into
     * '*targets'.  Returns false if there is none. */
    bool claim(uint32_t recirc_id, const struct uptrace_fingerprint &fp,
               int64_t now_ms, std::vector<TraceRef> *targets)
    {
        if (!expects(recirc_id)) {
            return false;
        }

        Shard &shard = shards_[shard_of(bucket_of(recirc_id))];
        MutexGuard guard(&shard.mutex);
        purge_expired_locked(shard, now_ms);

        /* A multimap keeps equal keys in insertion order: the first match
         * is the oldest. */
        auto range = shard.by_key.equal_range(Key(recirc_id, fp.invariant));
        for (auto it = range.first; it != range.second; ++it) {
            auto entry = shard.by_seq.find(it->second);
            if (entry == shard.by_seq.end()
                || is_expired(entry->second, now_ms)) {
                continue;
            }
            if (fp.nat || entry->second.tuple == fp.tuple) {
                *targets = std::move(entry->second.targets);
                erase_locked(shard, entry);
                return true;
            }
        }
        return false;
    }

    /* Drops every expired entry.  Returns how many. */
    size_t purge_expired(int64_t now_ms)
    {
        if (!n_entries_.load(std::memory_order_relaxed)) {
            return 0;
        }
        size_t n = 0;
        for (Shard &shard : shards_) {
            MutexGuard guard(&shard.mutex);
            n += purge_expired_locked(shard, now_ms);
        }
        return n;
    }

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
        OVS_REQUIRES(shard.mutex)
    {
        const Entry &entry = it->second;
        auto range = shard.by_key.equal_range(Key(entry.recirc_id,
                                                  entry.invariant));
        for (auto key = range.first; key != range.second; ++key) {
            if (key->second == it->first) {
                shard.by_key.erase(key);
                break;
            }
        }
        bucket_counts_[bucket_of(entry.recirc_id)]
            .fetch_sub(1, std::memory_order_relaxed);
        n_entries_.fetch_sub(1, std::memory_order_relaxed);
        shard.by_seq.erase(it);
    }

    /* Every entry has the same lifetime, so age order is deadline order
     * (as long as the monotonic clock does not go back): expired entries
     * are at the front. */
    size_t purge_expired_locked(Shard &shard, int64_t now_ms)
        OVS_REQUIRES(shard.mutex)
    {
        size_t n = 0;
        while (!shard.by_seq.empty()
               && is_expired(shard.by_seq.begin()->second, now_ms)) {
            erase_locked(shard, shard.by_seq.begin());
            n++;
        }
        return n;
    }

    /* Drops the oldest entry of the whole table.  The shards are visited
     * one at a time, never two locked at once, so under concurrent
     * additions the entry dropped is only approximately the oldest.
     * Returns false if the table is empty. */
    bool drop_oldest()
    {
        for (int attempt = 0; attempt < 4; attempt++) {
            Shard *oldest = nullptr;
            uint64_t oldest_seq = UINT64_MAX;
            for (Shard &shard : shards_) {
                MutexGuard guard(&shard.mutex);
                if (!shard.by_seq.empty()
                    && shard.by_seq.begin()->first < oldest_seq) {
                    oldest_seq = shard.by_seq.begin()->first;
                    oldest = &shard;
                }
            }
            if (!oldest) {
                return false;
            }

            MutexGuard guard(&oldest->mutex);
            if (!oldest->by_seq.empty()
                && oldest->by_seq.begin()->first == oldest_seq) {
                erase_locked(*oldest, oldest->by_seq.begin());
                return true;
            }
            /* Claimed or dropped meanwhile: look again. */
        }
        return false;
    }

    const uint32_t max_entries_;
    const int64_t ttl_ms_;
    std::array<Shard, N_SHARDS> shards_;
    std::array<std::atomic<uint32_t>, N_BUCKETS> bucket_counts_;
    std::atomic<uint32_t> n_entries_{0};
    std::atomic<uint64_t> next_seq_{0};
};

} /* anonymous namespace */
} /* namespace uptrace */

using namespace uptrace;

struct uptrace_session
    : public std::enable_shared_from_this<uptrace_session> {
public:
    uptrace_session(std::shared_ptr<EngineShared> shared,
                    std::weak_ptr<struct uptrace_engine> engine,
                    SessionConfig config)
        : shared_(std::move(shared)), engine_(std::move(engine)),
          config_(std::move(config))
    {
        ovs_mutex_init(&mutex_);
        int64_t now = shared_->clock.monotonic_ms();
        duration_start_ms_ = now;
        tokens_updated_ms_ = now;
        tokens_ = full_bucket(config_);
    }

    ~uptrace_session()
    {
        /* Normally the traces were dropped by detach() already. */
        release_in_destructor();
        ovs_mutex_destroy(&mutex_);
    }

    uptrace_session(const uptrace_session &) = delete;
    uptrace_session &operator=(const uptrace_session &) = delete;

    /* C handles.  'self_' keeps the object alive while any exists. */
    void adopt_first_handle()
    {
        self_ = shared_from_this();
    }

    void ref_handle()
    {
        n_handles_.fetch_add(1, std::memory_order_relaxed);
    }

    /* May destroy 'session'. */
    static void unref_handle(uptrace_session *session)
    {
        if (session->n_handles_.fetch_sub(1, std::memory_order_acq_rel)
            == 1) {
            std::shared_ptr<uptrace_session> last
                = std::move(session->self_);
            /* 'last' may be the final reference: 'session' is destroyed at
             * the end of this block. */
        }
    }

    int64_t monotonic_ms() const
    {
        return shared_->clock.monotonic_ms();
    }

    std::weak_ptr<struct uptrace_engine> engine() const
    {
        return engine_;
    }

    std::string name() const OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        return config_.name;
    }

    /* Capture side. */

    /* Decides whether this session starts a new trace for an upcall that
     * matched it.  If so, creates the (empty) trace and returns its id and
     * the bridge name in '*bridge'. */
    std::optional<uint64_t> admit_new_trace(bool partial, int64_t now_ms,
                                            int64_t wall_ms,
                                            std::string *bridge)
        OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        if (!capturing_locked(now_ms)) {
            update_capturing_locked(now_ms);
            return std::nullopt;
        }

        n_matched_++;
        generation_++;
        if (config_.mode == UPTRACE_MODE_STOP
            && traces_.size() >= config_.max_traces) {
            n_dropped_full_++;
            return std::nullopt;
        }
        if (!take_token_locked(now_ms)) {
            n_rate_limited_++;
            return std::nullopt;
        }
        while (traces_.size() >= config_.max_traces) {
            evict_oldest_locked();
        }

        uint64_t id = next_trace_id.fetch_add(1, std::memory_order_relaxed);
        traces_.emplace(id, Trace(partial, now_ms));
        account_locked(1, 0, TRACE_OVERHEAD);
        n_traces_total_++;
        last_trace_id_ = id;
        last_trace_time_ = wall_ms;
        *bridge = config_.bridge;
        return id;
    }

    /* Whether a continuation round may still be stored in trace 'id'.  If
     * so, stores the bridge name in '*bridge'. */
    bool may_continue(uint64_t id, int64_t now_ms, std::string *bridge)
        OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        if (!capturing_locked(now_ms) || !traces_.count(id)) {
            return false;
        }
        *bridge = config_.bridge;
        return true;
    }

    /* Stores 'round' in trace 'id', if the trace still exists. */
    void store_round(uint64_t id, const RoundPtr &round) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        auto it = traces_.find(id);
        if (!attached_ || it == traces_.end()) {
            return;
        }

        Trace &trace = it->second;
        RoundPtr stored = round;
        uint64_t size = round->stored_size();
        uint64_t max = config_.max_trace_size;
        if (max && trace.size + size > max) {
            uint64_t budget = max > trace.size ? max - trace.size : 0;
            stored = truncate_round(*round, budget, max);
            if (!trace.truncated) {
                trace.truncated = true;
                n_truncated_++;
            }
            generation_++;
            if (!stored) {
                return;
            }
            size = stored->stored_size();
        }

        /* A continuation may be committed before the round it continues,
         * by another thread: keep capture order. */
        auto pos = std::upper_bound(
            trace.rounds.begin(), trace.rounds.end(), stored->seq,
            [](uint64_t seq, const RoundPtr &r) { return seq < r->seq; });
        trace.rounds.insert(pos, std::move(stored));
        trace.size += size;
        trace.last_monotonic_ms = std::max(trace.last_monotonic_ms,
                                           round->monotonic_ms);
        account_locked(0, 1, size);
    }

    /* Drops trace 'id' if no round was stored in it, for an aborted
     * capture. */
    void forget_empty_trace(uint64_t id) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        auto it = traces_.find(id);
        if (it != traces_.end() && it->second.rounds.empty()) {
            erase_trace_locked(it);
            generation_++;
        }
    }

    /* Configuration. */

    void reconfigure(SessionConfig config) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        int64_t now = shared_->clock.monotonic_ms();
        if (config.duration_ms != config_.duration_ms) {
            duration_start_ms_ = now;
        }
        if (config.max_rate != config_.max_rate) {
            tokens_ = full_bucket(config);
            tokens_updated_ms_ = now;
        }
        config_ = std::move(config);
        while (traces_.size() > config_.max_traces) {
            evict_oldest_locked();
        }
        generation_++;
        update_capturing_locked(now);
    }

    void set_ready(bool ready, const char *waiting_reason, const char *error)
        OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        ready_ = ready;
        waiting_reason_ = nonnull(waiting_reason);
        has_error_ = error != nullptr;
        error_ = nonnull(error);
        generation_++;
        update_capturing_locked(shared_->clock.monotonic_ms());
    }

    /* Takes the session out of its engine: it captures nothing more and its
     * traces are dropped. */
    void detach() OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        attached_ = false;
        drop_all_traces_locked();
        update_capturing_locked(shared_->clock.monotonic_ms());
    }

    void clear() OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        drop_all_traces_locked();
        generation_++;
    }

    /* Applies retention and duration.  Returns true if the status changed
     * since the last call. */
    bool run(int64_t now_ms) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        update_capturing_locked(now_ms);
        enum uptrace_state state = state_locked(now_ms);
        bool changed = (generation_ != last_run_generation_
                        || state != last_run_state_);
        last_run_generation_ = generation_;
        last_run_state_ = state;
        return changed;
    }

    /* Reading.  Each applies retention and duration first. */

    SessionView view(int64_t now_ms) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        update_capturing_locked(now_ms);

        SessionView v;
        v.name = config_.name;
        v.bridge = config_.bridge;
        v.has_port = config_.has_port;
        v.port = config_.port;
        v.filter = config_.filter;
        v.state = state_locked(now_ms);
        v.error = (v.state == UPTRACE_STATE_ERROR ? error_
                   : v.state == UPTRACE_STATE_WAITING ? waiting_reason_
                   : "");
        v.max_traces = config_.max_traces;
        v.mode = config_.mode;
        v.retention_ms = config_.retention_ms;
        v.max_rate = config_.max_rate;
        v.max_trace_size = config_.max_trace_size;
        v.duration_ms = config_.duration_ms;
        v.enabled = config_.enabled;
        v.n_matched = n_matched_;
        v.n_traces = traces_.size();
        v.n_traces_total = n_traces_total_;
        v.n_evicted = n_evicted_;
        v.n_expired = n_expired_;
        v.n_rate_limited = n_rate_limited_;
        v.n_truncated = n_truncated_;
        v.n_dropped_full = n_dropped_full_;
        v.last_trace_id = last_trace_id_;
        v.last_trace_time = last_trace_time_;
        v.bytes = bytes_;
        return v;
    }

    /* Appends a view of every stored trace with at least one round. */
    void collect_traces(int64_t now_ms, std::vector<TraceView> *views)
        OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        for (const auto &[id, trace] : traces_) {
            if (!trace.rounds.empty()) {
                views->push_back(make_view_locked(id, trace));
            }
        }
    }

    bool find_trace(uint64_t id, int64_t now_ms, TraceView *view)
        OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        auto it = traces_.find(id);
        if (it == traces_.end() || it->second.rounds.empty()) {
            return false;
        }
        *view = make_view_locked(id, it->second);
        return true;
    }

private:
    static int64_t full_bucket(const SessionConfig &config)
    {
        /* One second's worth of tokens, in thousandths of a token. */
        return static_cast<int64_t>(config.max_rate) * 1000;
    }

    bool expired_locked(int64_t now_ms) const OVS_REQUIRES(mutex_)
    {
        return (config_.duration_ms > 0
                && now_ms - duration_start_ms_ >= config_.duration_ms);
    }

    bool capturing_locked(int64_t now_ms) const OVS_REQUIRES(mutex_)
    {
        return (attached_ && ready_ && !has_error_ && config_.enabled
                && !expired_locked(now_ms));
    }

    enum uptrace_state state_locked(int64_t now_ms) const
        OVS_REQUIRES(mutex_)
    {
        if (has_error_) {
            return UPTRACE_STATE_ERROR;
        } else if (!ready_) {
            return UPTRACE_STATE_WAITING;
        } else if (!config_.enabled) {
            return UPTRACE_STATE_DISABLED;
        } else if (expired_locked(now_ms)) {
            return UPTRACE_STATE_EXPIRED;
        } else if (config_.mode == UPTRACE_MODE_STOP
                   && traces_.size() >= config_.max_traces) {
            return UPTRACE_STATE_FULL;
        } else {
            return UPTRACE_STATE_ACTIVE;
        }
    }

    /* Keeps the engine's count of capturing sessions in step. */
    void update_capturing_locked(int64_t now_ms) OVS_REQUIRES(mutex_)
    {
        bool capturing = capturing_locked(now_ms);
        if (capturing != counted_capturing_) {
            counted_capturing_ = capturing;
            if (capturing) {
                shared_->n_capturing.fetch_add(1, std::memory_order_relaxed);
            } else {
                shared_->n_capturing.fetch_sub(1, std::memory_order_relaxed);
            }
        }
    }

    /* Token bucket of max_rate tokens per second, holding at most one
     * second's worth, in thousandths of a token to stay exact with integer
     * arithmetic. */
    bool take_token_locked(int64_t now_ms) OVS_REQUIRES(mutex_)
    {
        if (!config_.max_rate) {
            return true;
        }
        /* A full refill takes one second: longer gaps add nothing, and
         * capping them keeps the product below overflow. */
        int64_t elapsed = std::clamp<int64_t>(now_ms - tokens_updated_ms_,
                                              0, 1000);
        tokens_ = std::min(full_bucket(config_),
                           tokens_ + elapsed * config_.max_rate);
        tokens_updated_ms_ = std::max(tokens_updated_ms_, now_ms);
        if (tokens_ < 1000) {
            return false;
        }
        tokens_ -= 1000;
        return true;
    }

    void account_locked(int64_t traces, int64_t rounds, int64_t bytes)
        OVS_REQUIRES(mutex_)
    {
        bytes_ += bytes;
        shared_->n_traces.fetch_add(traces, std::memory_order_relaxed);
        shared_->n_rounds.fetch_add(rounds, std::memory_order_relaxed);
        shared_->bytes.fetch_add(bytes, std::memory_order_relaxed);
        generation_++;
    }

    void erase_trace_locked(std::map<uint64_t, Trace>::iterator it)
        OVS_REQUIRES(mutex_)
    {
        const Trace &trace = it->second;
        account_locked(-1, -static_cast<int64_t>(trace.rounds.size()),
                       -static_cast<int64_t>(trace.size + TRACE_OVERHEAD));
        traces_.erase(it);
    }

    void evict_oldest_locked() OVS_REQUIRES(mutex_)
    {
        /* Ids increase, so the first trace is the oldest. */
        erase_trace_locked(traces_.begin());
        n_evicted_++;
    }

    void expire_traces_locked(int64_t now_ms) OVS_REQUIRES(mutex_)
    {
        if (!config_.retention_ms) {
            return;
        }
        for (auto it = traces_.begin(); it != traces_.end();) {
            auto next = std::next(it);
            if (now_ms - it->second.last_monotonic_ms
                > config_.retention_ms) {
                erase_trace_locked(it);
                n_expired_++;
            }
            it = next;
        }
    }

    void drop_all_traces_locked() OVS_REQUIRES(mutex_)
    {
        while (!traces_.empty()) {
            erase_trace_locked(traces_.begin());
        }
    }

    /* Called by the destructor, when no other reference exists, hence
     * without the lock that the helpers it calls are annotated to need. */
    void release_in_destructor() OVS_NO_THREAD_SAFETY_ANALYSIS
    {
        drop_all_traces_locked();
        if (counted_capturing_) {
            shared_->n_capturing.fetch_sub(1, std::memory_order_relaxed);
        }
    }

    TraceView make_view_locked(uint64_t id, const Trace &trace) const
        OVS_REQUIRES(mutex_)
    {
        TraceView view;
        view.id = id;
        view.session = config_.name;
        view.bridge = config_.bridge;
        view.partial = trace.partial;
        view.truncated = trace.truncated;
        view.rounds = trace.rounds;
        return view;
    }

    const std::shared_ptr<EngineShared> shared_;
    const std::weak_ptr<struct uptrace_engine> engine_;
    std::atomic<uint32_t> n_handles_{1};
    std::shared_ptr<uptrace_session> self_;

    mutable struct ovs_mutex mutex_;
    SessionConfig config_ OVS_GUARDED_BY(mutex_);
    bool attached_ OVS_GUARDED_BY(mutex_) = true;
    bool ready_ OVS_GUARDED_BY(mutex_) = false;
    std::string waiting_reason_ OVS_GUARDED_BY(mutex_);
    bool has_error_ OVS_GUARDED_BY(mutex_) = false;
    std::string error_ OVS_GUARDED_BY(mutex_);
    int64_t duration_start_ms_ OVS_GUARDED_BY(mutex_);
    int64_t tokens_ OVS_GUARDED_BY(mutex_);
    int64_t tokens_updated_ms_ OVS_GUARDED_BY(mutex_);
    bool counted_capturing_ OVS_GUARDED_BY(mutex_) = false;

    /* Stored traces by id, hence oldest first. */
    std::map<uint64_t, Trace> traces_ OVS_GUARDED_BY(mutex_);
    uint64_t bytes_ OVS_GUARDED_BY(mutex_) = 0;

    uint64_t n_matched_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_traces_total_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_evicted_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_expired_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_rate_limited_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_truncated_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_dropped_full_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t last_trace_id_ OVS_GUARDED_BY(mutex_) = 0;
    int64_t last_trace_time_ OVS_GUARDED_BY(mutex_) = 0;

    /* Bumped by every change of the status, so that uptrace_engine_run()
     * can tell whether anything changed since it last looked. */
    uint64_t generation_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t last_run_generation_ OVS_GUARDED_BY(mutex_) = 0;
    enum uptrace_state last_run_state_ OVS_GUARDED_BY(mutex_)
        = UPTRACE_STATE_WAITING;
};

using SessionPtr = std::shared_ptr<uptrace_session>;

struct uptrace_engine : public std::enable_shared_from_this<uptrace_engine> {
public:
    explicit uptrace_engine(const struct uptrace_engine_options *options)
        : shared_(std::make_shared<EngineShared>(Clock(
              options ? options->monotonic_ms : nullptr,
              options ? options->wall_ms : nullptr,
              options ? options->clock_aux : nullptr))),
          expectations_(
              options && options->max_expectations
              ? options->max_expectations : 4096,
              options && options->expectation_ttl_ms > 0
              ? options->expectation_ttl_ms : 1000)
    {
        ovs_mutex_init(&mutex_);
        if (options) {
            formatter_.function = options->formatter;
            formatter_.aux = options->formatter_aux;
        }
    }

    ~uptrace_engine()
    {
        ovs_mutex_destroy(&mutex_);
    }

    uptrace_engine(const uptrace_engine &) = delete;
    uptrace_engine &operator=(const uptrace_engine &) = delete;

    /* The creator's reference: taken by uptrace_engine_create(), released
     * by uptrace_engine_destroy(). */
    void adopt_creator_reference() { self_ = shared_from_this(); }

    /* May destroy 'engine'. */
    static void release_creator_reference(uptrace_engine *engine)
    {
        std::shared_ptr<uptrace_engine> last = std::move(engine->self_);
        /* Captures in flight may keep the object alive a little longer. */
    }

    const Clock &clock() const { return shared_->clock; }
    const std::shared_ptr<EngineShared> &shared() const { return shared_; }
    ExpectationTable &expectations() { return expectations_; }
    const ExpectationTable &expectations() const { return expectations_; }
    const BlobFormatter &formatter() const { return formatter_; }

    int create_session(SessionConfig config, uptrace_session **sessionp,
                       char **errp) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        if (sessions_.count(config.name)) {
            return fail(errp, EEXIST, already_exists(config.name));
        }
        std::string name = config.name;
        auto session = std::make_shared<uptrace_session>(
            shared_, weak_from_this(), std::move(config));
        session->adopt_first_handle();
        sessions_.emplace(std::move(name), session);
        *sessionp = session.get();
        return 0;
    }

    int reconfigure_session(uptrace_session *session, SessionConfig config,
                            char **errp) OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        std::string old_name = session->name();
        if (config.name != old_name) {
            auto it = sessions_.find(old_name);
            if (it != sessions_.end() && it->second.get() == session) {
                if (sessions_.count(config.name)) {
                    return fail(errp, EEXIST, already_exists(config.name));
                }
                SessionPtr ptr = std::move(it->second);
                sessions_.erase(it);
                sessions_.emplace(config.name, std::move(ptr));
            }
        }
        session->reconfigure(std::move(config));
        return 0;
    }

    /* Removes 'session' from the registry, if it is there. */
    void remove_session(uptrace_session *session) OVS_EXCLUDED(mutex_)
    {
        SessionPtr removed;
        {
            MutexGuard guard(&mutex_);
            auto it = sessions_.find(session->name());
            if (it != sessions_.end() && it->second.get() == session) {
                removed = std::move(it->second);
                sessions_.erase(it);
            }
        }
        /* 'removed' may be the last shared_ptr besides the handle's; it is
         * released here, outside the registry lock. */
    }

    /* Empties the registry, returning what it held. */
    std::vector<SessionPtr> take_all_sessions() OVS_EXCLUDED(mutex_)
    {
        std::vector<SessionPtr> all;
        MutexGuard guard(&mutex_);
        for (auto &entry : sessions_) {
            all.push_back(std::move(entry.second));
        }
        sessions_.clear();
        return all;
    }

    /* Every session, in name order. */
    std::vector<SessionPtr> sessions() const OVS_EXCLUDED(mutex_)
    {
        std::vector<SessionPtr> all;
        MutexGuard guard(&mutex_);
        all.reserve(sessions_.size());
        for (const auto &entry : sessions_) {
            all.push_back(entry.second);
        }
        return all;
    }

    /* The sessions named 'name', or all of them if 'name' is NULL.  Returns
     * ENOENT if there is no such session. */
    int select_sessions(const char *name, std::vector<SessionPtr> *selected,
                        char **errp) const OVS_EXCLUDED(mutex_)
    {
        if (!name) {
            *selected = sessions();
            return 0;
        }
        MutexGuard guard(&mutex_);
        auto it = sessions_.find(name);
        if (it == sessions_.end()) {
            return fail(errp, ENOENT, string_printf(
                            "no upcall trace session named %s", name));
        }
        selected->assign(1, it->second);
        return 0;
    }

    uptrace_session *find_session(const char *name) const
        OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        auto it = sessions_.find(name);
        return it == sessions_.end() ? nullptr : it->second.get();
    }

    size_t n_sessions() const OVS_EXCLUDED(mutex_)
    {
        MutexGuard guard(&mutex_);
        return sessions_.size();
    }

private:
    static std::string already_exists(const std::string &name)
    {
        return "an upcall trace session named " + name + " already exists";
    }

    std::shared_ptr<uptrace_engine> self_;
    const std::shared_ptr<EngineShared> shared_;
    BlobFormatter formatter_;
    ExpectationTable expectations_;

    mutable struct ovs_mutex mutex_;
    std::map<std::string, SessionPtr> sessions_ OVS_GUARDED_BY(mutex_);
};

struct uptrace_capture {
    struct Target {
        SessionPtr session;
        uint64_t trace_id;
    };

    std::shared_ptr<uptrace_engine> engine;
    std::vector<Target> targets;
    bool started_traces = false;    /* Begun, not continued. */
    Round round;
};

namespace uptrace {

uint64_t
Round::stored_size() const
{
    uint64_t size = ROUND_OVERHEAD;
    for (const std::string &blob : blobs) {
        size += blob.size();
    }
    size += bridge.size() + upcall_type.size() + in_port_name.size()
            + datapath.size() + translation.size() + path.size()
            + xlate_error.size() + install_reason.size();
    return size;
}

namespace {

void
fill_round_info(Round *round, const struct uptrace_round_info *info)
{
    if (!info) {
        return;
    }
    round->upcall_type = nonnull(info->upcall_type);
    round->recirc_id = info->recirc_id;
    round->in_port = info->in_port;
    round->in_port_name = nonnull(info->in_port_name);
    round->datapath = nonnull(info->datapath);
    round->pmd_id = info->pmd_id;
}

std::unique_ptr<uptrace_capture>
new_capture(uptrace_engine *engine, const struct uptrace_round_info *info,
            int64_t now_ms)
{
    auto capture = std::make_unique<uptrace_capture>();
    capture->engine = engine->shared_from_this();
    capture->round.seq = engine->shared()->next_round_seq.fetch_add(
        1, std::memory_order_relaxed);
    capture->round.monotonic_ms = now_ms;
    capture->round.wall_ms = engine->clock().wall_ms();
    fill_round_info(&capture->round, info);
    return capture;
}

std::unique_ptr<uptrace_capture>
capture_begin(uptrace_engine *engine, uptrace_session *const sessions[],
              size_t n, const struct uptrace_round_info *info, bool partial)
{
    int64_t now = engine->clock().monotonic_ms();
    int64_t wall = engine->clock().wall_ms();

    std::vector<uptrace_capture::Target> targets;
    std::string bridge;
    for (size_t i = 0; i < n; i++) {
        if (!sessions[i]) {
            continue;
        }
        std::string session_bridge;
        std::optional<uint64_t> id = sessions[i]->admit_new_trace(
            partial, now, wall, &session_bridge);
        if (id) {
            targets.push_back({sessions[i]->shared_from_this(), *id});
            if (bridge.empty()) {
                bridge = std::move(session_bridge);
            }
        }
    }
    if (targets.empty()) {
        return nullptr;
    }

    auto capture = new_capture(engine, info, now);
    capture->targets = std::move(targets);
    capture->started_traces = true;
    capture->round.bridge = std::move(bridge);
    return capture;
}

std::unique_ptr<uptrace_capture>
capture_continue(uptrace_engine *engine, uint32_t recirc_id,
                 const struct uptrace_fingerprint &fp,
                 const struct uptrace_round_info *info)
{
    int64_t now = engine->clock().monotonic_ms();
    std::vector<TraceRef> refs;
    if (!engine->expectations().claim(recirc_id, fp, now, &refs)) {
        return nullptr;
    }

    std::vector<uptrace_capture::Target> targets;
    std::string bridge;
    for (const TraceRef &ref : refs) {
        SessionPtr session = ref.session.lock();
        std::string session_bridge;
        if (session
            && session->may_continue(ref.trace_id, now, &session_bridge)) {
            targets.push_back({std::move(session), ref.trace_id});
            if (bridge.empty()) {
                bridge = std::move(session_bridge);
            }
        }
    }
    if (targets.empty()) {
        return nullptr;
    }

    auto capture = new_capture(engine, info, now);
    capture->targets = std::move(targets);
    capture->round.bridge = std::move(bridge);
    return capture;
}

void
capture_commit(std::unique_ptr<uptrace_capture> capture)
{
    auto round = std::make_shared<const Round>(std::move(capture->round));
    for (const auto &target : capture->targets) {
        target.session->store_round(target.trace_id, round);
    }
}

void
capture_abort(std::unique_ptr<uptrace_capture> capture)
{
    if (capture->started_traces) {
        for (const auto &target : capture->targets) {
            target.session->forget_empty_trace(target.trace_id);
        }
    }
}

/* Collects the traces of 'sessions', oldest first. */
std::vector<TraceView>
collect_traces(const std::vector<SessionPtr> &sessions, int64_t now_ms)
{
    std::vector<TraceView> views;
    for (const SessionPtr &session : sessions) {
        session->collect_traces(now_ms, &views);
    }
    std::sort(views.begin(), views.end(),
              [](const TraceView &a, const TraceView &b) {
                  return a.id < b.id;
              });
    return views;
}

int
reply(std::string text, char **outp)
{
    *outp = to_c_string(text);
    return 0;
}

} /* anonymous namespace */
} /* namespace uptrace */

/* The C interface. */

extern "C" {

struct uptrace_engine *
uptrace_engine_create(const struct uptrace_engine_options *options)
{
    return call_from_c<uptrace_engine *>(nullptr, [&] {
        auto engine = std::make_shared<uptrace_engine>(options);
        engine->adopt_creator_reference();
        return engine.get();
    });
}

void
uptrace_engine_destroy(struct uptrace_engine *engine)
{
    if (!engine) {
        return;
    }
    call_from_c_void([&] {
        for (const SessionPtr &session : engine->take_all_sessions()) {
            session->detach();
            /* The creator's handle goes with the engine. */
            uptrace_session::unref_handle(session.get());
        }
        uptrace_engine::release_creator_reference(engine);
    });
}

uint32_t
uptrace_engine_n_capturing(const struct uptrace_engine *engine)
{
    return engine->shared()->n_capturing.load(std::memory_order_relaxed);
}

void
uptrace_engine_get_memory_usage(const struct uptrace_engine *engine,
                                struct uptrace_memory_usage *usage)
{
    call_from_c_void([&] {
        const EngineShared &shared = *engine->shared();
        usage->n_sessions = engine->n_sessions();
        usage->n_traces = shared.n_traces.load(std::memory_order_relaxed);
        usage->n_rounds = shared.n_rounds.load(std::memory_order_relaxed);
        usage->n_expectations = engine->expectations().size();
        usage->bytes = shared.bytes.load(std::memory_order_relaxed);
    });
}

void
uptrace_session_config_init(struct uptrace_session_config *config)
{
    memset(config, 0, sizeof *config);
    config->name = NULL;
    config->bridge = NULL;
    config->port = NULL;
    config->filter = NULL;
    config->max_traces = UPTRACE_MAX_TRACES_DEFAULT;
    config->retention_ms = 0;
    config->mode = UPTRACE_MODE_CIRCULAR;
    config->max_rate = 0;
    config->max_trace_size = 0;
    config->duration_ms = 0;
    config->enabled = true;
}

int
uptrace_session_create(struct uptrace_engine *engine,
                       const struct uptrace_session_config *c,
                       struct uptrace_session **sessionp, char **errp)
{
    *sessionp = NULL;
    return call_from_c_errno(errp, [&] {
        SessionConfig config;
        int error = parse_config(c, &config, errp);
        return error ? error
                     : engine->create_session(std::move(config), sessionp,
                                              errp);
    });
}

int
uptrace_session_reconfigure(struct uptrace_session *session,
                            const struct uptrace_session_config *c,
                            char **errp)
{
    return call_from_c_errno(errp, [&] {
        SessionConfig config;
        int error = parse_config(c, &config, errp);
        if (error) {
            return error;
        }
        std::shared_ptr<uptrace_engine> engine = session->engine().lock();
        if (!engine) {
            /* Detached: nothing to check names against, nothing captured
             * anyway. */
            session->reconfigure(std::move(config));
            return 0;
        }
        return engine->reconfigure_session(session, std::move(config), errp);
    });
}

void
uptrace_session_destroy(struct uptrace_session *session)
{
    if (!session) {
        return;
    }
    call_from_c_void([&] {
        if (std::shared_ptr<uptrace_engine> engine
            = session->engine().lock()) {
            engine->remove_session(session);
        }
        session->detach();
    });
    uptrace_session::unref_handle(session);
}

struct uptrace_session *
uptrace_session_ref(struct uptrace_session *session)
{
    if (session) {
        session->ref_handle();
    }
    return session;
}

void
uptrace_session_unref(struct uptrace_session *session)
{
    if (session) {
        uptrace_session::unref_handle(session);
    }
}

struct uptrace_session *
uptrace_engine_find_session(struct uptrace_engine *engine, const char *name)
{
    return call_from_c<uptrace_session *>(nullptr, [&] {
        return name ? engine->find_session(name) : nullptr;
    });
}

void
uptrace_session_set_ready(struct uptrace_session *session, bool ready,
                          const char *waiting_reason, const char *error)
{
    call_from_c_void([&] {
        session->set_ready(ready, waiting_reason, error);
    });
}

const char *
uptrace_state_to_string(enum uptrace_state state)
{
    switch (state) {
    case UPTRACE_STATE_ACTIVE: return "active";
    case UPTRACE_STATE_WAITING: return "waiting";
    case UPTRACE_STATE_DISABLED: return "disabled";
    case UPTRACE_STATE_FULL: return "full";
    case UPTRACE_STATE_EXPIRED: return "expired";
    case UPTRACE_STATE_ERROR: return "error";
    }
    return "unknown";
}

void
uptrace_session_get_status(struct uptrace_session *session,
                           struct uptrace_session_status *status)
{
    memset(status, 0, sizeof *status);
    status->state = UPTRACE_STATE_ERROR;
    call_from_c_void([&] {
        SessionView v = session->view(session->monotonic_ms());
        status->state = v.state;
        status->error = v.error.empty() ? NULL : to_c_string(v.error);
        status->n_matched = v.n_matched;
        status->n_traces = v.n_traces;
        status->n_traces_total = v.n_traces_total;
        status->n_evicted = v.n_evicted;
        status->n_expired = v.n_expired;
        status->n_rate_limited = v.n_rate_limited;
        status->n_truncated = v.n_truncated;
        status->n_dropped_full = v.n_dropped_full;
        status->last_trace_id = v.last_trace_id;
        status->last_trace_time = v.last_trace_time;
        status->bytes = v.bytes;
    });
}

void
uptrace_session_status_uninit(struct uptrace_session_status *status)
{
    if (status) {
        free(status->error);
        status->error = NULL;
    }
}

bool
uptrace_engine_run(struct uptrace_engine *engine)
{
    return call_from_c(false, [&] {
        int64_t now = engine->clock().monotonic_ms();
        engine->expectations().purge_expired(now);
        bool changed = false;
        for (const SessionPtr &session : engine->sessions()) {
            changed |= session->run(now);
        }
        return changed;
    });
}

struct uptrace_capture *
uptrace_capture_begin(struct uptrace_engine *engine,
                      struct uptrace_session *const sessions[], size_t n,
                      const struct uptrace_round_info *info, bool partial)
{
    return call_from_c<uptrace_capture *>(nullptr, [&] {
        return capture_begin(engine, sessions, n, info, partial).release();
    });
}

bool
uptrace_engine_expects(const struct uptrace_engine *engine,
                       uint32_t recirc_id)
{
    return engine->expectations().expects(recirc_id);
}

struct uptrace_capture *
uptrace_capture_continue(struct uptrace_engine *engine, uint32_t recirc_id,
                         const struct uptrace_fingerprint *fp,
                         const struct uptrace_round_info *info)
{
    return call_from_c<uptrace_capture *>(nullptr, [&] {
        return capture_continue(engine, recirc_id, *fp, info).release();
    });
}

void
uptrace_capture_set_blob(struct uptrace_capture *capture,
                         enum uptrace_blob which, const void *data,
                         size_t size)
{
    if (static_cast<int>(which) < 0 || which >= UPTRACE_N_BLOBS) {
        return;
    }
    call_from_c_void([&] {
        capture->round.blobs[which].assign(static_cast<const char *>(data),
                                           data ? size : 0);
    });
}

void
uptrace_capture_set_translation(struct uptrace_capture *capture,
                                const char *text)
{
    call_from_c_void([&] { capture->round.translation = nonnull(text); });
}

void
uptrace_capture_set_path(struct uptrace_capture *capture, const char *path)
{
    call_from_c_void([&] { capture->round.path = nonnull(path); });
}

void
uptrace_capture_set_xlate_error(struct uptrace_capture *capture,
                                const char *error)
{
    call_from_c_void([&] {
        capture->round.has_xlate_error = error != nullptr;
        capture->round.xlate_error = nonnull(error);
    });
}

void
uptrace_capture_set_ufid(struct uptrace_capture *capture,
                         const uint8_t ufid[16])
{
    capture->round.has_ufid = ufid != nullptr;
    if (ufid) {
        std::copy(ufid, ufid + 16, capture->round.ufid.begin());
    }
}

void
uptrace_capture_set_install(struct uptrace_capture *capture, bool installed,
                            const char *reason)
{
    call_from_c_void([&] {
        capture->round.has_install = true;
        capture->round.installed = installed;
        capture->round.install_reason = nonnull(reason);
    });
}

void
uptrace_capture_expect_recirc(struct uptrace_capture *capture,
                              uint32_t recirc_id,
                              const struct uptrace_fingerprint *fp)
{
    call_from_c_void([&] {
        std::vector<TraceRef> refs;
        refs.reserve(capture->targets.size());
        for (const auto &target : capture->targets) {
            refs.push_back({target.session, target.trace_id});
        }
        capture->engine->expectations().add(
            recirc_id, *fp, std::move(refs),
            capture->engine->clock().monotonic_ms());
    });
}

void
uptrace_capture_commit(struct uptrace_capture *capture)
{
    if (!capture) {
        return;
    }
    std::unique_ptr<uptrace_capture> owned(capture);
    call_from_c_void([&] { capture_commit(std::move(owned)); });
}

void
uptrace_capture_abort(struct uptrace_capture *capture)
{
    if (!capture) {
        return;
    }
    std::unique_ptr<uptrace_capture> owned(capture);
    call_from_c_void([&] { capture_abort(std::move(owned)); });
}

/* Copies the stored traces of 'session', or of every session if it is
 * null, into '*traces' for formatting outside any lock.  Returns 0, or
 * ENOENT with a message in '*errp' for an unknown session. */
static int
read_traces(struct uptrace_engine *engine, const char *session,
            std::vector<TraceView> *traces, char **errp)
{
    std::vector<SessionPtr> sessions;
    int error = engine->select_sessions(session, &sessions, errp);
    if (!error) {
        *traces = collect_traces(sessions, engine->clock().monotonic_ms());
    }
    return error;
}

int
uptrace_engine_show(struct uptrace_engine *engine,
                    enum uptrace_format format, char **outp, char **errp)
{
    *outp = NULL;
    return call_from_c_errno(errp, [&] {
        int64_t now = engine->clock().monotonic_ms();
        std::vector<SessionView> views;
        for (const SessionPtr &session : engine->sessions()) {
            views.push_back(session->view(now));
        }
        return reply(render_show(views, format), outp);
    });
}

int
uptrace_engine_list(struct uptrace_engine *engine, const char *session,
                    enum uptrace_format format, char **outp, char **errp)
{
    *outp = NULL;
    return call_from_c_errno(errp, [&] {
        std::vector<TraceView> traces;
        int error = read_traces(engine, session, &traces, errp);
        return (error ? error
                : reply(render_list(traces, engine->formatter(), format),
                        outp));
    });
}

int
uptrace_engine_get(struct uptrace_engine *engine, uint64_t id,
                   enum uptrace_format format, char **outp, char **errp)
{
    *outp = NULL;
    return call_from_c_errno(errp, [&] {
        int64_t now = engine->clock().monotonic_ms();
        TraceView trace;
        for (const SessionPtr &session : engine->sessions()) {
            if (session->find_trace(id, now, &trace)) {
                return reply(render_trace(trace, engine->formatter(),
                                          format), outp);
            }
        }
        return fail(errp, ENOENT, string_printf(
                        "no upcall trace with id 0x%" PRIx64, id));
    });
}

int
uptrace_engine_summary(struct uptrace_engine *engine, const char *session,
                       enum uptrace_format format, char **outp, char **errp)
{
    *outp = NULL;
    return call_from_c_errno(errp, [&] {
        std::vector<TraceView> traces;
        int error = read_traces(engine, session, &traces, errp);
        return (error ? error
                : reply(render_summary(traces, engine->formatter(), format),
                        outp));
    });
}

int
uptrace_engine_clear(struct uptrace_engine *engine, const char *session,
                     char **errp)
{
    return call_from_c_errno(errp, [&] {
        std::vector<SessionPtr> sessions;
        int error = engine->select_sessions(session, &sessions, errp);
        if (error) {
            return error;
        }
        for (const SessionPtr &s : sessions) {
            s->clear();
        }
        return 0;
    });
}

} /* extern "C" */
