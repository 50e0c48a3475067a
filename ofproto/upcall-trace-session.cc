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

#include "upcall-trace-session.hh"

#include <inttypes.h>

#include <algorithm>

namespace uptrace {
namespace {

/* The heap memory of 's': none while it fits in the object itself. */
uint64_t
heap_size(const std::string &s)
{
    return s.capacity() > 15 ? malloc_size(s.capacity() + 1) : 0;
}

/* A stored round: the object within the control block of its shared_ptr
 * (a vtable pointer and two counts). */
constexpr uint64_t ROUND_OVERHEAD = malloc_size(sizeof(StoredRound) + 16);

/* Trace ids are unique in the process, so that an id read from one engine
 * (or before a clear) never names another trace. */
std::atomic<uint64_t> next_trace_id{1};

} /* anonymous namespace */

void
raise_next_trace_id(uint64_t id)
{
    uint64_t next = next_trace_id.load(std::memory_order_relaxed);
    while (next < id
           && !next_trace_id.compare_exchange_weak(
               next, id, std::memory_order_relaxed)) {
        continue;
    }
}

uint64_t
Round::stored_size() const
{
    uint64_t size = ROUND_OVERHEAD + heap_size(blob_data);
    size += (heap_size(bridge) + heap_size(upcall_type)
             + heap_size(in_port_name) + heap_size(datapath)
             + heap_size(translation) + heap_size(path)
             + heap_size(xlate_error) + heap_size(install_reason)
             + heap_size(node_text) + heap_size(slow_path)
             + heap_size(packet) + heap_size(execute_error));
    if (nodes.capacity()) {
        size += malloc_size(nodes.capacity() * sizeof(TranslationNode));
    }
    return size;
}

StoredRound::~StoredRound()
{
    shared->bytes.fetch_sub(size, std::memory_order_relaxed);
}

std::shared_ptr<StoredRound>
new_stored_round(const std::shared_ptr<EngineShared> &shared)
{
    return std::make_shared<StoredRound>(shared);
}

RoundPtr
commit_stored_round(std::shared_ptr<StoredRound> round)
{
    round->size = round->stored_size();
    round->shared->bytes.fetch_add(round->size, std::memory_order_relaxed);
    return round;
}

RoundPtr
make_stored_round(Round round, const std::shared_ptr<EngineShared> &shared)
{
    std::shared_ptr<StoredRound> stored = new_stored_round(shared);
    static_cast<Round &>(*stored) = std::move(round);
    return commit_stored_round(std::move(stored));
}

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
    if (c->packet_bytes > UPTRACE_PACKET_BYTES_MAX) {
        return fail(errp, EINVAL, string_printf(
                        "upcall trace session %s: packet_bytes %" PRIu32
                        " is out of range (0 to %d)", c->name,
                        c->packet_bytes, UPTRACE_PACKET_BYTES_MAX));
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
    config->packet_bytes = c->packet_bytes;
    config->enabled = c->enabled;
    return 0;
}

} /* namespace uptrace */

using namespace uptrace;

uptrace_session::uptrace_session(std::shared_ptr<EngineShared> shared,
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
    packet_bytes_.store(config_.packet_bytes, std::memory_order_relaxed);
}

void
uptrace_session::unref_handle(uptrace_session *session)
{
    if (session->n_handles_.fetch_sub(1, std::memory_order_acq_rel)
        == 1) {
        std::shared_ptr<uptrace_session> last
            = std::move(session->self_);
        /* 'last' may be the final reference: 'session' is destroyed at
         * the end of this block. */
    }
}

std::optional<uint64_t>
uptrace_session::admit_new_trace(bool partial, int64_t now_ms, int64_t wall_ms,
                                 std::string *bridge,
                                 TraceFlows *evicted_flows)
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
        update_closed_locked(now_ms);
        return std::nullopt;
    }
    if (!take_token_locked(now_ms)) {
        n_rate_limited_++;
        update_closed_locked(now_ms);
        return std::nullopt;
    }
    /* In circular mode, the trace evicted to make room is reused for the
     * new one, with its map node and its rounds' storage, unless a reader
     * still holds it: three allocations and three frees fewer per traced
     * packet. */
    std::map<uint64_t, std::shared_ptr<Trace>>::node_type spare;
    while (traces_.size() >= config_.max_traces) {
        auto oldest = traces_.begin();
        note_dropped_locked(oldest->first);
        const Trace &evicted = *oldest->second;
        for (const RoundPtr &round : evicted.rounds) {
            if (round->has_ufid && round->installed) {
                evicted_flows->emplace_back(oldest->first, round->ufid);
            }
        }
        account_locked(-1, -static_cast<int64_t>(evicted.rounds.size()),
                       -static_cast<int64_t>(evicted.size + TRACE_OVERHEAD));
        n_evicted_++;
        spare = traces_.extract(oldest);
    }

    uint64_t id = next_trace_id.fetch_add(1, std::memory_order_relaxed);
    if (spare && spare.mapped().use_count() == 1) {
        /* Copies of a trace's pointer are taken under 'mutex_', which this
         * holds: no reader can take one now. */
        Trace &trace = *spare.mapped();
        std::vector<RoundPtr> rounds = std::move(trace.rounds);
        rounds.clear();
        trace = Trace(partial, now_ms);
        trace.rounds = std::move(rounds);
        spare.key() = id;
        traces_.insert(traces_.end(), std::move(spare));
    } else {
        auto trace = std::make_shared<Trace>(partial, now_ms);
        /* A packet through conntrack makes two rounds: one allocation. */
        trace->rounds.reserve(2);
        traces_.emplace_hint(traces_.end(), id, std::move(trace));
    }
    account_locked(1, 0, TRACE_OVERHEAD);
    n_traces_total_++;
    last_trace_id_ = id;
    last_trace_time_ = wall_ms;
    *bridge = config_.bridge;
    update_closed_locked(now_ms);
    return id;
}

bool
uptrace_session::is_closed(const EngineShared &shared, int64_t *now_ms)
{
    int64_t until = closed_until_ms_.load(std::memory_order_acquire);
    if (!until) {
        return false;
    }
    if (until != INT64_MAX) {
        if (*now_ms < 0) {
            *now_ms = shared.clock.monotonic_ms();
        }
        if (*now_ms >= until) {
            /* The next token is due: admit_new_trace() decides. */
            return false;
        }
    }
    switch (closed_reason_.load(std::memory_order_relaxed)) {
    case CLOSED_FULL:
        closed_dropped_full_.fetch_add(1, std::memory_order_relaxed);
        break;
    case CLOSED_RATE:
        closed_rate_limited_.fetch_add(1, std::memory_order_relaxed);
        break;
    case CLOSED_OFF:
    default:
        break;
    }
    return true;
}

bool
uptrace_session::may_continue(uint64_t id, int64_t now_ms, std::string *bridge)
{
    MutexGuard guard(&mutex_);
    if (!capturing_locked(now_ms) || !traces_.count(id)) {
        return false;
    }
    *bridge = config_.bridge;
    return true;
}

void
uptrace_session::store_round(uint64_t id, const RoundPtr &round)
{
    MutexGuard guard(&mutex_);
    auto it = traces_.find(id);
    if (!attached_ || it == traces_.end()) {
        return;
    }

    Trace &trace = mutable_trace_locked(it);
    RoundPtr stored = round;
    uint64_t size = round->stored_size();
    uint64_t max = config_.max_trace_size;
    if (max && trace.size + size > max) {
        uint64_t budget = max > trace.size ? max - trace.size : 0;
        stored = truncate_round(*round, budget, max, trace.rounds.empty(),
                                shared_);
        if (!trace.truncated) {
            trace.truncated = true;
            n_truncated_++;
        }
        generation_++;
        if (!stored) {
            /* Not even its header fits: the trace says a round is
             * missing. */
            trace.n_rounds_lost++;
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

void
uptrace_session::forget_empty_trace(uint64_t id)
{
    MutexGuard guard(&mutex_);
    auto it = traces_.find(id);
    if (it != traces_.end() && it->second->rounds.empty()) {
        erase_trace_locked(it);
        generation_++;
        update_closed_locked(shared_->clock.monotonic_ms());
    }
}

void
uptrace_session::reconfigure(SessionConfig config)
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
    packet_bytes_.store(config_.packet_bytes, std::memory_order_relaxed);
    while (traces_.size() > config_.max_traces) {
        evict_oldest_locked();
    }
    generation_++;
    update_capturing_locked(now);
}

void
uptrace_session::set_ready(bool ready, const char *waiting_reason,
                           const char *error)
{
    MutexGuard guard(&mutex_);
    ready_ = ready;
    waiting_reason_ = nonnull(waiting_reason);
    has_error_ = error != nullptr;
    error_ = nonnull(error);
    generation_++;
    update_capturing_locked(shared_->clock.monotonic_ms());
}

void
uptrace_session::detach()
{
    MutexGuard guard(&mutex_);
    attached_ = false;
    drop_all_traces_locked();
    update_capturing_locked(shared_->clock.monotonic_ms());
}

bool
uptrace_session::run(int64_t now_ms)
{
    MutexGuard guard(&mutex_);
    expire_traces_locked(now_ms);
    update_capturing_locked(now_ms);
    enum uptrace_state state = state_locked(now_ms);
    uint64_t closed = (closed_dropped_full_.load(std::memory_order_relaxed)
                       + closed_rate_limited_.load(std::memory_order_relaxed));
    bool changed = (generation_ != last_run_generation_
                    || state != last_run_state_
                    || closed != last_run_closed_);
    last_run_generation_ = generation_;
    last_run_state_ = state;
    last_run_closed_ = closed;
    return changed;
}

SessionView
uptrace_session::view(int64_t now_ms)
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
    v.n_matched = (n_matched_
                   + closed_dropped_full_.load(std::memory_order_relaxed)
                   + closed_rate_limited_.load(std::memory_order_relaxed));
    v.n_traces = traces_.size();
    v.n_traces_total = n_traces_total_;
    v.n_evicted = n_evicted_;
    v.n_expired = n_expired_;
    v.n_rate_limited = (n_rate_limited_
                        + closed_rate_limited_.load(std::memory_order_relaxed));
    v.n_truncated = n_truncated_;
    v.n_dropped_full = (n_dropped_full_
                        + closed_dropped_full_.load(std::memory_order_relaxed));
    v.last_trace_id = last_trace_id_;
    v.last_trace_time = last_trace_time_;
    v.bytes = bytes_;
    return v;
}

void
uptrace_session::collect_traces(int64_t now_ms, std::vector<TraceView> *views)
{
    /* Only pointers are copied under the lock, so that a reader of many
     * traces delays no capture: the views are made after. */
    std::vector<std::pair<uint64_t, std::shared_ptr<const Trace>>> snapshot;
    std::string name, bridge;
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        snapshot.reserve(traces_.size());
        for (const auto &[id, trace] : traces_) {
            if (!trace->rounds.empty()) {
                snapshot.emplace_back(id, trace);
            }
        }
        name = config_.name;
        bridge = config_.bridge;
    }

    views->reserve(views->size() + snapshot.size());
    for (const auto &[id, trace] : snapshot) {
        views->push_back(make_view(id, *trace, name, bridge));
    }
}

void
uptrace_session::collect_traces_since(uint64_t since, int64_t now_ms,
                                      std::vector<TraceView> *views,
                                      uint64_t *missed, uint64_t *newest,
                                      uint64_t *floor)
{
    std::vector<std::pair<uint64_t, std::shared_ptr<const Trace>>> snapshot;
    std::string name, bridge;
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        for (auto it = traces_.upper_bound(since); it != traces_.end();
             ++it) {
            if (!it->second->rounds.empty()) {
                snapshot.emplace_back(it->first, it->second);
            } else {
                *floor = std::min(*floor, it->first);
            }
        }
        for (uint64_t id : dropped_ids_) {
            *missed += id > since;
        }
        *newest = std::max(*newest, last_trace_id_);
        name = config_.name;
        bridge = config_.bridge;
    }

    views->reserve(views->size() + snapshot.size());
    for (const auto &[id, trace] : snapshot) {
        views->push_back(make_view(id, *trace, name, bridge));
    }
}

bool
uptrace_session::find_trace(uint64_t id, int64_t now_ms, TraceView *view)
{
    std::shared_ptr<const Trace> trace;
    std::string name, bridge;
    {
        MutexGuard guard(&mutex_);
        expire_traces_locked(now_ms);
        auto it = traces_.find(id);
        if (it == traces_.end() || it->second->rounds.empty()) {
            return false;
        }
        trace = it->second;
        name = config_.name;
        bridge = config_.bridge;
    }
    *view = make_view(id, *trace, name, bridge);
    return true;
}

enum uptrace_state
uptrace_session::state_locked(int64_t now_ms) const
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

void
uptrace_session::update_capturing_locked(int64_t now_ms)
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
    update_closed_locked(now_ms);
}

void
uptrace_session::update_closed_locked(int64_t now_ms)
{
    int64_t until = 0;
    ClosedReason reason = CLOSED_OFF;

    if (!capturing_locked(now_ms)) {
        until = INT64_MAX;
    } else if (config_.mode == UPTRACE_MODE_STOP
               && traces_.size() >= config_.max_traces) {
        until = INT64_MAX;
        reason = CLOSED_FULL;
    } else if (config_.max_rate) {
        /* As take_token_locked() would refill, without taking. */
        int64_t elapsed = std::clamp<int64_t>(now_ms - tokens_updated_ms_,
                                              0, 1000);
        int64_t tokens = std::min(full_bucket(config_),
                                  tokens_ + elapsed * config_.max_rate);
        if (tokens < 1000) {
            int64_t rate = config_.max_rate;
            until = (std::max(now_ms, tokens_updated_ms_)
                     + (1000 - tokens + rate - 1) / rate);
            reason = CLOSED_RATE;
        }
    }
    closed_reason_.store(reason, std::memory_order_relaxed);
    closed_until_ms_.store(until, std::memory_order_release);
}

bool
uptrace_session::take_token_locked(int64_t now_ms)
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

void
uptrace_session::account_locked(int64_t traces, int64_t rounds,
                                int64_t bytes)
{
    /* The session's bytes include its rounds', which the engine's total
     * counts once per round (make_stored_round()), however many sessions
     * store it: only the traces themselves are added to it here. */
    bytes_ += bytes;
    shared_->n_traces.fetch_add(traces, std::memory_order_relaxed);
    shared_->n_rounds.fetch_add(rounds, std::memory_order_relaxed);
    shared_->bytes.fetch_add(traces * static_cast<int64_t>(TRACE_OVERHEAD),
                             std::memory_order_relaxed);
    generation_++;
}

void
uptrace_session::erase_trace_locked(
    std::map<uint64_t, std::shared_ptr<Trace>>::iterator it)
{
    const Trace &trace = *it->second;
    account_locked(-1, -static_cast<int64_t>(trace.rounds.size()),
                   -static_cast<int64_t>(trace.size + TRACE_OVERHEAD));
    traces_.erase(it);
}

void
uptrace_session::expire_traces_locked(int64_t now_ms)
{
    if (!config_.retention_ms) {
        return;
    }
    bool expired = false;
    for (auto it = traces_.begin(); it != traces_.end();) {
        auto next = std::next(it);
        if (now_ms - it->second->last_monotonic_ms
            > config_.retention_ms) {
            note_dropped_locked(it->first);
            erase_trace_locked(it);
            n_expired_++;
            expired = true;
        }
        it = next;
    }
    if (expired) {
        /* A full session may capture again. */
        update_closed_locked(now_ms);
    }
}

void
uptrace_session::release_in_destructor()
{
    drop_all_traces_locked();
    if (counted_capturing_) {
        shared_->n_capturing.fetch_sub(1, std::memory_order_relaxed);
    }
}

Trace &
uptrace_session::mutable_trace_locked(
    std::map<uint64_t, std::shared_ptr<Trace>>::iterator it)
{
    /* A reader may hold the trace: copy it, the rounds are shared. */
    if (it->second.use_count() > 1) {
        it->second = std::make_shared<Trace>(*it->second);
    }
    return *it->second;
}

TraceView
uptrace_session::make_view(uint64_t id, const Trace &trace,
                           const std::string &name, const std::string &bridge)
{
    TraceView view;
    view.id = id;
    view.session = name;
    view.bridge = bridge;
    view.partial = trace.partial;
    view.truncated = trace.truncated;
    view.n_rounds_lost = trace.n_rounds_lost;
    view.rounds = trace.rounds;
    return view;
}
