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

#ifndef OFPROTO_UPCALL_TRACE_ENGINE_UTIL_HH
#define OFPROTO_UPCALL_TRACE_ENGINE_UTIL_HH 1

/* Helpers shared by the files of the upcall trace engine: locking, the C
 * boundary (no exception escapes into C) and the clock. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <new>
#include <string>

#include "openvswitch/compiler.h"
#include "openvswitch/thread.h"
#include "openvswitch/util.h"
#include "upcall-trace.h"


#if __clang__
#define UPTRACE_SCOPED_CAPABILITY __attribute__((scoped_lockable))
#else
#define UPTRACE_SCOPED_CAPABILITY
#endif

namespace uptrace {

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
OVS_NO_RETURN inline void
out_of_memory()
{
    fputs("upcall trace: virtual memory exhausted\n", stderr);
    abort();
}

/* Returns a malloc()'d copy of 's', for the C caller to free(). */
inline char *
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

inline std::string
nonnull(const char *s)
{
    return s ? s : "";
}

/* Stores 'error' in '*errp' if 'errp' is nonnull, and returns 'code'. */
inline int
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

} /* namespace uptrace */

#endif /* ofproto/upcall-trace-engine-util.hh */
