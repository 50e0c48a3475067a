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

#include <string.h>

#include <memory>
#include <string>
#include <utility>

#include "upcall-trace-engine.hh"
#include "upcall-trace-engine-util.hh"
#include "upcall-trace-expectations.hh"
#include "upcall-trace-registry.hh"
#include "upcall-trace-session.hh"

/* The upcall trace engine: the C interface of upcall-trace.h for engines
 * and sessions.
 *
 * Objects, ownership and files:
 *
 *   - struct uptrace_engine (upcall-trace-registry.*): the registry of
 *     sessions (by name) and the table of recirculation expectations.
 *     Managed by a shared_ptr so that a round being captured keeps it
 *     alive; uptrace_engine_destroy() releases the creator's reference.
 *
 *   - struct uptrace_session (upcall-trace-session.*): configuration,
 *     bounds, counters and stored traces of one session, all guarded by the
 *     session's own mutex, so that capture threads working for different
 *     sessions never contend (a round that does not fit whole in
 *     max-trace-size is cut in upcall-trace-truncate.cc).  Managed by a
 *     shared_ptr (held by the registry, by rounds being captured) plus a
 *     count of C handles (the creator's and uptrace_session_ref()'s): the
 *     object keeps a shared_ptr to itself while that count is nonzero.
 *     Expectations (upcall-trace-expectations.*) only hold weak_ptrs: they
 *     never keep a session alive.
 *
 *   - A trace is a vector of shared_ptrs to immutable rounds.  A round that
 *     two sessions matched is one object stored in both traces.
 *
 *   - struct uptrace_round (upcall-trace-round.cc): one round being
 *     filled by a capture thread, plus the (session, trace id) pairs it
 *     will be stored in.
 *
 *   - Reading (upcall-trace-engine-read.cc) copies what it shows under the
 *     locks and renders it with none held: as text
 *     (upcall-trace-engine-render.cc) or as JSON
 *     (upcall-trace-engine-render-json.cc).
 *
 * Lock order: engine registry mutex, then a session mutex.  The expectation
 * shards' mutexes are leaves: nothing else is taken while one is held. */

using namespace uptrace;

/* The C interface. */

extern "C" {

struct uptrace_engine *
uptrace_engine_create(const struct uptrace_engine_options *options)
{
    return call_from_c<uptrace_engine *>(nullptr, [&] {
        if (options && options->first_trace_id) {
            raise_next_trace_id(options->first_trace_id);
        }
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
        usage->bytes = (shared.bytes.load(std::memory_order_relaxed)
                        + engine->flows().bytes());
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

bool
uptrace_session_wants_upcalls(const struct uptrace_session *session)
{
    return session->wants_upcalls();
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

} /* extern "C" */
