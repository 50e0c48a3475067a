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

#include "upcall-trace-expectations.hh"

#include <inttypes.h>

#include "upcall-trace-engine.hh"

/* Recirculation expectations: see upcall-trace-expectations.hh. */

namespace uptrace {

bool
ExpectationTable::expects_tuple(uint32_t recirc_id, uint64_t tuple,
                                bool nat) const
{
    if (!expects(recirc_id)) {
        return false;
    }

    const Shard &shard = shards_[shard_of(bucket_of(recirc_id))];
    MutexGuard guard(&shard.mutex);
    for (auto it = shard.by_key.lower_bound(Key(recirc_id, 0));
         it != shard.by_key.end() && it->first.first == recirc_id; ++it) {
        auto entry = shard.by_seq.find(it->second);
        if (entry != shard.by_seq.end()
            && (nat || entry->second.any_tuple
                || entry->second.tuple == tuple)) {
            return true;
        }
    }
    return false;
}

void
ExpectationTable::add(uint32_t recirc_id, const struct uptrace_fingerprint &fp,
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
        entry.any_tuple = fp.nat;
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

bool
ExpectationTable::claim(uint32_t recirc_id,
                        const struct uptrace_fingerprint &fp, int64_t now_ms,
                        std::vector<TraceRef> *targets)
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
        if (fp.nat || entry->second.any_tuple
            || entry->second.tuple == fp.tuple) {
            *targets = std::move(entry->second.targets);
            erase_locked(shard, entry);
            return true;
        }
    }
    return false;
}

size_t
ExpectationTable::purge_expired(int64_t now_ms)
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

void
ExpectationTable::erase_locked(Shard &shard, std::map<uint64_t,
                               Entry>::iterator it)
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

size_t
ExpectationTable::purge_expired_locked(Shard &shard, int64_t now_ms)
{
    size_t n = 0;
    while (!shard.by_seq.empty()
           && is_expired(shard.by_seq.begin()->second, now_ms)) {
        note_missed(shard.by_seq.begin()->second, false);
        erase_locked(shard, shard.by_seq.begin());
        n++;
    }
    return n;
}

bool
ExpectationTable::drop_oldest()
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
            note_missed(oldest->by_seq.begin()->second, true);
            erase_locked(*oldest, oldest->by_seq.begin());
            return true;
        }
        /* Claimed or dropped meanwhile: look again. */
    }
    return false;
}

void
ExpectationTable::note_missed(const Entry &entry, bool dropped)
{
    MutexGuard guard(&missed_mutex_);
    for (const TraceRef &ref : entry.targets) {
        if (ref.session.expired()) {
            continue;
        }
        missed_[ref.trace_id].push_back({entry.recirc_id, dropped});
    }
    while (missed_.size() > MAX_MISSED_TRACES) {
        missed_.erase(missed_.begin());
    }
}

std::vector<MissedRound>
ExpectationTable::missed(uint64_t trace_id) const
{
    MutexGuard guard(&missed_mutex_);
    auto it = missed_.find(trace_id);
    return it == missed_.end() ? std::vector<MissedRound>() : it->second;
}

std::string
ExpectationTable::render_missed(uint64_t trace_id, bool json) const
{
    static const char expired[] = "handled by an installed datapath flow, "
                                  "or lost";
    static const char dropped[] = "too many recirculations were expected "
                                  "at once to look for it";
    std::string s = json ? "[" : "";

    for (const MissedRound &m : missed(trace_id)) {
        const char *why = m.dropped ? dropped : expired;
        if (json) {
            s += string_printf("%s{\"recirc_id\":%" PRIu32 ",\"reason\":"
                               "\"%s\"}", s.size() > 1 ? "," : "",
                               m.recirc_id, why);
        } else {
            s += string_printf("--- Missing round: recirc_id=0x%" PRIx32
                               " not seen: %s ---\n", m.recirc_id, why);
        }
    }
    return json ? s + "]" : s;
}

} /* namespace uptrace */
