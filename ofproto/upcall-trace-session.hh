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

#ifndef OFPROTO_UPCALL_TRACE_SESSION_HH
#define OFPROTO_UPCALL_TRACE_SESSION_HH 1

/* One session of the upcall trace engine: its configuration, bounds,
 * counters and stored traces, all guarded by the session's own mutex, so
 * that capture threads working for different sessions never contend.
 *
 * Managed by a shared_ptr (held by the engine's registry, by captures)
 * plus a count of C handles (the creator's and uptrace_session_ref()'s):
 * the object keeps a shared_ptr to itself while that count is nonzero.
 * Expectations only hold weak_ptrs: they never keep a session alive.
 *
 * A trace is a vector of shared_ptrs to immutable rounds.  A round that
 * two sessions matched is one object stored in both traces. */

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "openvswitch/thread.h"
#include "upcall-trace.h"
#include "upcall-trace-engine.hh"
#include "upcall-trace-engine-util.hh"

namespace uptrace {

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
    uint32_t packet_bytes = 0;
    bool enabled = true;
};

/* Checks 'c' and converts it into '*config'.  Returns 0 or EINVAL. */
int parse_config(const struct uptrace_session_config *,
                 SessionConfig *, char **errp);

/* One stored trace. */
struct Trace {
    Trace(bool partial_, int64_t now_ms)
        : partial(partial_), last_monotonic_ms(now_ms) {}

    bool partial;
    bool truncated = false;
    uint64_t n_rounds_lost = 0; /* Not stored for max-trace-size. */
    int64_t last_monotonic_ms;  /* Capture time of the newest round. */
    uint64_t size = 0;          /* Sum of the rounds' stored_size(). */
    std::vector<RoundPtr> rounds;   /* Ordered by Round::seq. */
};

/* A trace: its node in the session's map, the object and the control
 * block of its shared_ptr (one block, made by make_shared()). */
constexpr uint64_t TRACE_OVERHEAD = (((64 + 8 + 15) & ~UINT64_C(15))
                                     + ((sizeof(Trace) + 16 + 8 + 15)
                                        & ~UINT64_C(15)));

/* A round that is, or will be, stored, with what it accounts for in the
 * bytes of 'shared', given back when it goes.  Made by make_shared(): the
 * round and the control block of its shared_ptr are one allocation.  A
 * capture fills one in place (new_stored_round(), then
 * commit_stored_round()), so that committing copies nothing. */
struct StoredRound final : Round {
    explicit StoredRound(const std::shared_ptr<EngineShared> &shared_)
        : shared(shared_) {}
    ~StoredRound();
    StoredRound(const StoredRound &) = delete;
    StoredRound &operator=(const StoredRound &) = delete;

    std::shared_ptr<EngineShared> shared;
    uint64_t size = 0;          /* Accounted; 0 until committed. */
};

/* An empty round to fill, accounted for nothing until committed. */
std::shared_ptr<StoredRound> new_stored_round(
    const std::shared_ptr<EngineShared> &shared);

/* Makes 'round', filled, a stored round, accounted as long as it lives:
 * once, however many traces of however many sessions hold it. */
RoundPtr commit_stored_round(std::shared_ptr<StoredRound> round);

/* Makes 'round' a stored round, as commit_stored_round() does. */
RoundPtr make_stored_round(Round round,
                           const std::shared_ptr<EngineShared> &shared);

/* What malloc() really takes for a block of 'n' bytes: its header, rounded
 * up to its 16-byte granularity.  For memory accounting. */
constexpr uint64_t
malloc_size(uint64_t n)
{
    return (n + 8 + 15) & ~UINT64_C(15);
}

/* Returns a stored copy of 'round' cut and marked so that its stored_size()
 * is at most 'budget' (upcall-trace-truncate.cc): first its translation, at
 * a node or line boundary, then its packet; if even its flows and datapath
 * actions do not fit, only the round itself (where, when, UFID, install
 * outcome) and the blobs that fit.  The marker names 'max_trace_size'.
 * Returns nullptr if not even that fits, unless 'first': a trace's first
 * round is always stored, so that no trace is ever empty. */
RoundPtr truncate_round(const Round &round, uint64_t budget,
                        uint64_t max_trace_size, bool first,
                        const std::shared_ptr<EngineShared> &shared);

} /* namespace uptrace */

struct uptrace_session
    : public std::enable_shared_from_this<uptrace_session> {
public:
    uptrace_session(std::shared_ptr<uptrace::EngineShared> shared,
                    std::weak_ptr<struct uptrace_engine> engine,
                    uptrace::SessionConfig config);

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
    static void unref_handle(uptrace_session *session);

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
        uptrace::MutexGuard guard(&mutex_);
        return config_.name;
    }

    /* options:packet-bytes, read by capture threads for every traced
     * round: lock-free. */
    uint32_t packet_bytes() const
    {
        return packet_bytes_.load(std::memory_order_relaxed);
    }

    /* Capture side. */

    /* The flows that rounds of a trace installed: (trace id, UFID). */
    using TraceFlows = std::vector<std::pair<uint64_t,
                                             std::array<uint8_t, 16>>>;

    /* Decides whether this session starts a new trace for an upcall that
     * matched it.  If so, creates the (empty) trace and returns its id and
     * the bridge name in '*bridge'.  Appends to '*evicted_flows' the flows
     * that the traces evicted to make room had installed, for the caller
     * to tell the flow log, outside this session's lock. */
    std::optional<uint64_t> admit_new_trace(bool partial, int64_t now_ms,
                                            int64_t wall_ms,
                                            std::string *bridge,
                                            TraceFlows *evicted_flows)
        OVS_EXCLUDED(mutex_);

    /* Whether this session cannot start a trace now, checked without its
     * mutex: an atomic load, and a clock read ('*now_ms', read once into it
     * when negative) only while it waits for a max-rate token.  A closed
     * session counts the refusal as admit_new_trace() would.  It reopens by
     * itself when its next token is due, and whenever a change of its
     * configuration or traces (clear, retention) may let it capture. */
    bool is_closed(const uptrace::EngineShared &shared, int64_t *now_ms);

    /* Whether the upcall path must look the session up (see
     * uptrace_session_wants_upcalls()).  Lock-free. */
    bool wants_upcalls() const
    {
        return (closed_until_ms_.load(std::memory_order_acquire) != INT64_MAX
                || closed_reason_.load(std::memory_order_relaxed)
                   == CLOSED_FULL);
    }

    /* Whether a continuation round may still be stored in trace 'id'.  If
     * so, stores the bridge name in '*bridge'. */
    bool may_continue(uint64_t id, int64_t now_ms, std::string *bridge)
        OVS_EXCLUDED(mutex_);

    /* Stores 'round' in trace 'id', if the trace still exists. */
    void store_round(uint64_t id, const uptrace::RoundPtr &round)
        OVS_EXCLUDED(mutex_);

    /* Drops trace 'id' if no round was stored in it, for an aborted
     * capture. */
    void forget_empty_trace(uint64_t id) OVS_EXCLUDED(mutex_);

    /* Configuration. */

    void reconfigure(uptrace::SessionConfig config) OVS_EXCLUDED(mutex_);

    void set_ready(bool ready, const char *waiting_reason, const char *error)
        OVS_EXCLUDED(mutex_);

    /* Takes the session out of its engine: it captures nothing more and its
     * traces are dropped. */
    void detach() OVS_EXCLUDED(mutex_);

    void clear() OVS_EXCLUDED(mutex_)
    {
        uptrace::MutexGuard guard(&mutex_);
        drop_all_traces_locked();
        generation_++;
        update_closed_locked(shared_->clock.monotonic_ms());
    }

    /* Applies retention and duration.  Returns true if the status changed
     * since the last call. */
    bool run(int64_t now_ms) OVS_EXCLUDED(mutex_);

    /* Reading.  Each applies retention and duration first. */

    uptrace::SessionView view(int64_t now_ms) OVS_EXCLUDED(mutex_);

    /* Appends a view of every stored trace with at least one round. */
    void collect_traces(int64_t now_ms, std::vector<uptrace::TraceView> *views)
        OVS_EXCLUDED(mutex_);

    /* For uptrace_engine_list_since(): appends a view of every stored trace
     * above 'since' with at least one round, adds to '*missed' the traces
     * above 'since' that were dropped, and lowers '*next' to the newest
     * trace id or below the oldest trace still without a round. */
    void collect_traces_since(uint64_t since, int64_t now_ms,
                              std::vector<uptrace::TraceView> *views,
                              uint64_t *missed, uint64_t *newest,
                              uint64_t *floor) OVS_EXCLUDED(mutex_);

    bool find_trace(uint64_t id, int64_t now_ms, uptrace::TraceView *view)
        OVS_EXCLUDED(mutex_);

private:
    static int64_t full_bucket(const uptrace::SessionConfig &config)
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
        OVS_REQUIRES(mutex_);

    /* Keeps the engine's count of capturing sessions in step, and whether
     * the session is closed. */
    void update_capturing_locked(int64_t now_ms) OVS_REQUIRES(mutex_);

    /* Sets 'closed_until_ms_' from the state: closed while not capturing
     * (expired, disabled, ...) or full in mode=stop, or until the next
     * token while over max-rate. */
    void update_closed_locked(int64_t now_ms) OVS_REQUIRES(mutex_);

    /* Token bucket of max_rate tokens per second, holding at most one
     * second's worth, in thousandths of a token to stay exact with integer
     * arithmetic. */
    bool take_token_locked(int64_t now_ms) OVS_REQUIRES(mutex_);

    void account_locked(int64_t traces, int64_t rounds, int64_t bytes)
        OVS_REQUIRES(mutex_);

    void erase_trace_locked(
        std::map<uint64_t, std::shared_ptr<uptrace::Trace>>::iterator it)
        OVS_REQUIRES(mutex_);

    void evict_oldest_locked() OVS_REQUIRES(mutex_)
    {
        /* Ids increase, so the first trace is the oldest. */
        note_dropped_locked(traces_.begin()->first);
        erase_trace_locked(traces_.begin());
        n_evicted_++;
    }

    /* Remembers that trace 'id' was dropped, for the 'missed' count of
     * uptrace_engine_list_since(): the last kMaxDroppedIds only. */
    static constexpr size_t kMaxDroppedIds = 4096;
    void note_dropped_locked(uint64_t id) OVS_REQUIRES(mutex_)
    {
        if (dropped_ids_.size() >= kMaxDroppedIds) {
            dropped_ids_.pop_front();
        }
        dropped_ids_.push_back(id);
    }

    void expire_traces_locked(int64_t now_ms) OVS_REQUIRES(mutex_);

    void drop_all_traces_locked() OVS_REQUIRES(mutex_)
    {
        while (!traces_.empty()) {
            note_dropped_locked(traces_.begin()->first);
            erase_trace_locked(traces_.begin());
        }
    }

    /* Called by the destructor, when no other reference exists, hence
     * without the lock that the helpers it calls are annotated to need. */
    void release_in_destructor() OVS_NO_THREAD_SAFETY_ANALYSIS;

    /* Returns the trace 'it' points to, copied first if a reader holds
     * it, so that it can be changed. */
    uptrace::Trace &mutable_trace_locked(
        std::map<uint64_t, std::shared_ptr<uptrace::Trace>>::iterator it)
        OVS_REQUIRES(mutex_);

    static uptrace::TraceView make_view(uint64_t id,
                                        const uptrace::Trace &trace,
                                        const std::string &name,
                                        const std::string &bridge);

    const std::shared_ptr<uptrace::EngineShared> shared_;
    const std::weak_ptr<struct uptrace_engine> engine_;
    std::atomic<uint32_t> n_handles_{1};
    std::atomic<uint32_t> packet_bytes_{0};     /* config_.packet_bytes. */
    std::shared_ptr<uptrace_session> self_;

    mutable struct ovs_mutex mutex_;
    uptrace::SessionConfig config_ OVS_GUARDED_BY(mutex_);
    bool attached_ OVS_GUARDED_BY(mutex_) = true;
    bool ready_ OVS_GUARDED_BY(mutex_) = false;
    std::string waiting_reason_ OVS_GUARDED_BY(mutex_);
    bool has_error_ OVS_GUARDED_BY(mutex_) = false;
    std::string error_ OVS_GUARDED_BY(mutex_);
    int64_t duration_start_ms_ OVS_GUARDED_BY(mutex_);
    int64_t tokens_ OVS_GUARDED_BY(mutex_);
    int64_t tokens_updated_ms_ OVS_GUARDED_BY(mutex_);
    bool counted_capturing_ OVS_GUARDED_BY(mutex_) = false;

    /* Stored traces by id, hence oldest first.  Shared with readers, which
     * copy only the pointers under 'mutex_': a trace a reader holds is
     * copied before it changes (mutable_trace_locked()). */
    std::map<uint64_t, std::shared_ptr<uptrace::Trace>> traces_
        OVS_GUARDED_BY(mutex_);
    uint64_t bytes_ OVS_GUARDED_BY(mutex_) = 0;

    /* Closed: 0 if the session may start a trace, INT64_MAX until a change
     * of state, otherwise the monotonic time of its next max-rate token.
     * Written under 'mutex_', read without it.  'closed_reason_' says which
     * counter a refusal while closed goes to; the 'closed_*' counters are
     * added to the mutex-guarded ones when read. */
    enum ClosedReason : uint8_t { CLOSED_OFF, CLOSED_FULL, CLOSED_RATE };
    std::atomic<int64_t> closed_until_ms_{0};
    std::atomic<uint8_t> closed_reason_{CLOSED_OFF};
    std::atomic<uint64_t> closed_dropped_full_{0};
    std::atomic<uint64_t> closed_rate_limited_{0};

    uint64_t n_matched_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_traces_total_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_evicted_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_expired_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_rate_limited_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_truncated_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t n_dropped_full_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t last_trace_id_ OVS_GUARDED_BY(mutex_) = 0;
    int64_t last_trace_time_ OVS_GUARDED_BY(mutex_) = 0;

    /* Ids of the last traces dropped, oldest first (increasing, since the
     * oldest traces go first, except for retention, which may drop a newer
     * trace before an older one: only counted, never relied on in order). */
    std::deque<uint64_t> dropped_ids_ OVS_GUARDED_BY(mutex_);

    /* Bumped by every change of the status, so that uptrace_engine_run()
     * can tell whether anything changed since it last looked. */
    uint64_t generation_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t last_run_generation_ OVS_GUARDED_BY(mutex_) = 0;
    uint64_t last_run_closed_ OVS_GUARDED_BY(mutex_) = 0;
    enum uptrace_state last_run_state_ OVS_GUARDED_BY(mutex_)
        = UPTRACE_STATE_WAITING;
};

namespace uptrace {

using SessionPtr = std::shared_ptr<uptrace_session>;

/* Makes the next trace id of the process at least 'id'. */
void raise_next_trace_id(uint64_t id);

} /* namespace uptrace */

#endif /* ofproto/upcall-trace-session.hh */
