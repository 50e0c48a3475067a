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

#include "upcall-trace-flows.hh"

#include <algorithm>
#include <cinttypes>
#include <iterator>

#include "upcall-trace-engine.hh"
#include "upcall-trace-registry.hh"
#include "upcall-trace-session.hh"

namespace uptrace {

namespace {

/* Fixed cost of one life, beyond its variable parts. */
constexpr uint64_t kLifeOverhead = sizeof(FlowLife) + sizeof(Ufid) + 64;

const char *
change_name(enum uptrace_flow_change change)
{
    switch (change) {
    case UPTRACE_FLOW_STATS: return "stats";
    case UPTRACE_FLOW_MODIFIED: return "modified";
    case UPTRACE_FLOW_DELETED: return "deleted";
    }
    return "?";
}

} /* anonymous namespace */

uint64_t
FlowLife::stored_size() const
{
    uint64_t size = kLifeOverhead + traces.heap_size();
    for (const FlowEvent &event : events) {
        size += sizeof event + event.detail.capacity();
    }
    return size;
}

void
FlowLog::account()
{
    bytes_.store(size_, std::memory_order_relaxed);
    n_lives_.store(n_lives_locked_, std::memory_order_relaxed);
}

/* Erases life 'i' of 'lives', the lives of one flow in 'flows_'.  The
 * caller erases the flow's entry if 'lives' becomes empty. */
void
FlowLog::erase_life(std::vector<FlowLife> *lives, size_t i)
{
    size_ -= (*lives)[i].stored_size();
    lives->erase(lives->begin() + i);
    n_lives_locked_--;
}

void
FlowLog::forget_oldest()
{
    auto [ufid, seq] = order_.front();
    order_.pop_front();
    auto it = flows_.find(ufid);
    /* Lives of a flow are in the order of 'order_': if this entry's life
     * is still there, it is the flow's first. */
    if (it == flows_.end() || it->second.front().seq != seq) {
        return;
    }
    erase_life(&it->second, 0);
    maybe_followed(ufid).fetch_sub(1, std::memory_order_relaxed);
    if (it->second.empty()) {
        flows_.erase(it);
    }
}

/* Drops from 'order_' the entries whose lives are gone. */
void
FlowLog::compact_order()
{
    std::deque<std::pair<Ufid, uint64_t>> order;
    for (const auto &entry : order_) {
        auto it = flows_.find(entry.first);
        if (it != flows_.end()
            && std::any_of(it->second.begin(), it->second.end(),
                           [&entry](const FlowLife &life) {
                               return life.seq == entry.second;
                           })) {
            order.push_back(entry);
        }
    }
    order_.swap(order);
}

void
FlowLog::installed(const Ufid &ufid, const std::vector<uint64_t> &trace_ids,
                   const std::vector<const void *> &sessions, int64_t wall_ms)
{
    FlowTraces traces;
    for (size_t i = 0; i < trace_ids.size() && i < sessions.size(); i++) {
        traces.push_back({trace_ids[i], sessions[i]});
    }
    installed(ufid, std::move(traces), wall_ms);
}

void
FlowLog::installed(const Ufid &ufid, FlowTraces traces, int64_t wall_ms)
{
    MutexGuard guard(&mutex_);
    std::vector<FlowLife> &lives = flows_[ufid];

    /* A flow still followed that is installed again was replaced (its ukey
     * gave way to a new one before a revalidator reported it gone). */
    if (!lives.empty() && !lives.back().gone) {
        FlowLife &last = lives.back();
        size_ -= last.stored_size();
        last.gone = true;
        last.events.push_back({wall_ms, UPTRACE_FLOW_DELETED,
                               "replaced by a new installation"});
        size_ += last.stored_size();
    }

    FlowLife &life = lives.emplace_back();
    life.traces = std::move(traces);
    life.seq = next_seq_++;
    life.installed_ms = wall_ms;
    size_ += life.stored_size();
    order_.emplace_back(ufid, life.seq);
    n_lives_locked_++;
    maybe_followed(ufid).fetch_add(1, std::memory_order_relaxed);
    if (order_.size() > kMaxLives && n_lives_locked_ <= kMaxLives) {
        compact_order();
    }
    while (order_.size() > kMaxLives) {
        forget_oldest();
    }
    account();
}

void
FlowLog::forget_session(const void *session)
{
    MutexGuard guard(&mutex_);
    bool forgot = false;

    for (auto it = flows_.begin(); it != flows_.end();) {
        std::vector<FlowLife> &lives = it->second;
        for (size_t l = 0; l < lives.size();) {
            FlowLife &life = lives[l];
            size_ -= life.stored_size();
            for (size_t i = 0; i < life.traces.size();) {
                if (life.traces[i].session == session) {
                    life.traces.erase(i);
                    forgot = true;
                } else {
                    i++;
                }
            }
            size_ += life.stored_size();
            if (life.traces.empty()) {
                erase_life(&lives, l);
                maybe_followed(it->first).fetch_sub(
                    1, std::memory_order_relaxed);
            } else {
                l++;
            }
        }
        it = lives.empty() ? flows_.erase(it) : std::next(it);
    }
    if (forgot) {
        compact_order();
        account();
    }
}

void
FlowLog::forget_traces(const void *session,
                       const std::vector<std::pair<uint64_t, Ufid>> &traces)
{
    MutexGuard guard(&mutex_);
    for (const auto &[trace_id, ufid] : traces) {
        auto it = flows_.find(ufid);
        if (it == flows_.end()) {
            continue;
        }
        std::vector<FlowLife> &lives = it->second;
        for (size_t l = 0; l < lives.size();) {
            FlowLife &life = lives[l];
            size_ -= life.stored_size();
            for (size_t i = 0; i < life.traces.size();) {
                if (life.traces[i].trace_id == trace_id
                    && life.traces[i].session == session) {
                    life.traces.erase(i);
                } else {
                    i++;
                }
            }
            size_ += life.stored_size();
            if (life.traces.empty()) {
                erase_life(&lives, l);
                maybe_followed(ufid).fetch_sub(1, std::memory_order_relaxed);
            } else {
                l++;
            }
        }
        if (lives.empty()) {
            flows_.erase(it);
        }
    }
    /* Entries of forgotten lives wait in 'order_' for their turn; drop
     * them when they are most of it, so that it stays proportional to the
     * lives held. */
    if (order_.size() > 64 && order_.size() > 2 * n_lives_locked_) {
        compact_order();
    }
    account();
}

bool
FlowLog::changed(const Ufid &ufid, enum uptrace_flow_change change,
                 const std::string &detail, uint64_t n_packets,
                 uint64_t n_bytes, int64_t wall_ms)
{
    if (!maybe_followed(ufid).load(std::memory_order_relaxed)) {
        return false;
    }
    MutexGuard guard(&mutex_);
    auto it = flows_.find(ufid);
    if (it == flows_.end() || it->second.back().gone) {
        return false;
    }

    FlowLife &life = it->second.back();
    size_ -= life.stored_size();
    life.n_packets = std::max(life.n_packets, n_packets);
    life.n_bytes = std::max(life.n_bytes, n_bytes);
    if (change != UPTRACE_FLOW_STATS) {
        if (life.events.size() < kMaxEvents) {
            life.events.push_back({wall_ms, change, detail});
        } else {
            life.n_events_dropped++;
        }
        if (change == UPTRACE_FLOW_DELETED) {
            life.gone = true;
        }
    }
    size_ += life.stored_size();
    account();
    return true;
}

bool
FlowLog::find(const Ufid &ufid, uint64_t trace_id, FlowLife *life) const
{
    MutexGuard guard(&mutex_);
    auto it = flows_.find(ufid);
    if (it == flows_.end()) {
        return false;
    }
    for (auto l = it->second.rbegin(); l != it->second.rend(); ++l) {
        if (std::any_of(l->traces.begin(), l->traces.end(),
                        [trace_id](const FlowTrace &trace) {
                            return trace.trace_id == trace_id;
                        })) {
            *life = *l;
            return true;
        }
    }
    return false;
}

std::vector<uint64_t>
FlowLog::traces_of(const Ufid &ufid) const
{
    MutexGuard guard(&mutex_);
    std::vector<uint64_t> ids;
    auto it = flows_.find(ufid);
    if (it != flows_.end()) {
        for (auto l = it->second.rbegin(); l != it->second.rend(); ++l) {
            for (const FlowTrace &trace : l->traces) {
                ids.push_back(trace.trace_id);
            }
        }
    }
    return ids;
}

std::string
render_flow_lives(const FlowLog &log, uint64_t trace_id,
                  const std::vector<InstalledRound> &rounds,
                  enum uptrace_format format)
{
    std::string s;
    bool json = format == UPTRACE_FORMAT_JSON;

    if (json) {
        s += '[';
    }
    bool first = true;
    for (const InstalledRound &round : rounds) {
        FlowLife life;
        if (!log.find(round.ufid, trace_id, &life)) {
            continue;
        }
        if (json) {
            s += first ? "" : ",";
            s += string_printf(
                "{\"round\":%" PRIu32 ",\"ufid\":\"%s\",\"installed\":\"%s\","
                "\"installed_ms\":%" PRId64 ",\"n_packets\":%" PRIu64 ","
                "\"n_bytes\":%" PRIu64 ",\"in_datapath\":%s,"
                "\"n_events_dropped\":%" PRIu64 ",\"events\":[",
                round.number, format_ufid(round.ufid).c_str(),
                format_time_iso8601(life.installed_ms).c_str(),
                life.installed_ms, life.n_packets, life.n_bytes,
                life.gone ? "false" : "true", life.n_events_dropped);
            bool first_event = true;
            for (const FlowEvent &e : life.events) {
                s += first_event ? "" : ",";
                s += string_printf(
                    "{\"time\":\"%s\",\"time_ms\":%" PRId64 ",\"change\":"
                    "\"%s\",\"detail\":\"%s\"}",
                    format_time_iso8601(e.wall_ms).c_str(), e.wall_ms,
                    change_name(e.change), json_escape(e.detail).c_str());
                first_event = false;
            }
            s += "]}";
        } else {
            s += string_printf("--- Datapath flow of round %" PRIu32
                               ": %s ---\n", round.number,
                               format_ufid(round.ufid).c_str());
            s += string_printf("Installed: %s\n",
                               format_time_iso8601(life.installed_ms).c_str());
            s += string_printf("Since: %" PRIu64 " packets, %" PRIu64
                               " bytes\n", life.n_packets, life.n_bytes);
            for (const FlowEvent &e : life.events) {
                s += string_printf("%s %s: %s\n",
                                   format_time_iso8601(e.wall_ms).c_str(),
                                   change_name(e.change), e.detail.c_str());
            }
            if (life.n_events_dropped) {
                s += string_printf("(%" PRIu64 " later changes not kept)\n",
                                   life.n_events_dropped);
            }
            s += life.gone ? "State: left the datapath\n"
                           : "State: in the datapath\n";
        }
        first = false;
    }
    if (json) {
        s += ']';
    }
    return s;
}

} /* namespace uptrace */

/* The C interface. */

using namespace uptrace;

namespace {

Ufid
to_ufid(const uint8_t ufid[16])
{
    Ufid u;
    std::copy(ufid, ufid + 16, u.begin());
    return u;
}

} /* anonymous namespace */

extern "C" {

bool
uptrace_engine_follows_flows(const struct uptrace_engine *engine)
{
    return engine->flows().following();
}

bool
uptrace_engine_flow_changed(struct uptrace_engine *engine,
                            const uint8_t ufid[16],
                            enum uptrace_flow_change change,
                            const char *detail, uint64_t n_packets,
                            uint64_t n_bytes)
{
    return call_from_c(false, [&] {
        return engine->flows().changed(to_ufid(ufid), change,
                                       nonnull(detail), n_packets, n_bytes,
                                       engine->clock().wall_ms());
    });
}

int
uptrace_engine_find_ufid(struct uptrace_engine *engine,
                         const uint8_t ufid[16], uint64_t *trace_id,
                         char **errp)
{
    *trace_id = 0;
    return call_from_c_errno(errp, [&] {
        Ufid u = to_ufid(ufid);
        int64_t now = engine->clock().monotonic_ms();
        for (uint64_t id : engine->flows().traces_of(u)) {
            TraceView trace;
            for (const SessionPtr &session : engine->sessions()) {
                if (session->find_trace(id, now, &trace)) {
                    *trace_id = id;
                    if (errp) {
                        *errp = nullptr;
                    }
                    return 0;
                }
            }
        }
        return fail(errp, ENOENT, "no stored upcall trace installed the "
                    "datapath flow " + format_ufid(u));
    });
}

} /* extern "C" */
