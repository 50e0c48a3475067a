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

#ifndef OFPROTO_UPCALL_TRACE_REGISTRY_HH
#define OFPROTO_UPCALL_TRACE_REGISTRY_HH 1

/* struct uptrace_engine: the registry of sessions (by name) and the table
 * of recirculation expectations.  Managed by a shared_ptr so that a round
 * being captured keeps it alive; uptrace_engine_destroy() releases the
 * creator's reference.
 *
 * Lock order: engine registry mutex, then a session mutex.  The expectation
 * shards' mutexes are leaves: nothing else is taken while one is held. */

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "openvswitch/thread.h"
#include "upcall-trace.h"
#include "upcall-trace-engine.hh"
#include "upcall-trace-engine-util.hh"
#include "upcall-trace-expectations.hh"
#include "upcall-trace-flows.hh"
#include "upcall-trace-session.hh"

struct uptrace_engine : public std::enable_shared_from_this<uptrace_engine> {
public:
    explicit uptrace_engine(const struct uptrace_engine_options *options);

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

    const uptrace::Clock &clock() const { return shared_->clock; }
    const std::shared_ptr<uptrace::EngineShared> &shared() const
    {
        return shared_;
    }
    uptrace::ExpectationTable &expectations() { return expectations_; }
    const uptrace::ExpectationTable &expectations() const
    {
        return expectations_;
    }
    const uptrace::BlobFormatter &formatter() const { return formatter_; }
    uptrace::FlowLog &flows() { return flows_; }
    const uptrace::FlowLog &flows() const { return flows_; }

    int create_session(uptrace::SessionConfig config,
                       uptrace_session **sessionp, char **errp)
        OVS_EXCLUDED(mutex_);

    int reconfigure_session(uptrace_session *session,
                            uptrace::SessionConfig config, char **errp)
        OVS_EXCLUDED(mutex_);

    /* Removes 'session' from the registry, if it is there. */
    void remove_session(uptrace_session *session) OVS_EXCLUDED(mutex_);

    /* Empties the registry, returning what it held. */
    std::vector<uptrace::SessionPtr> take_all_sessions() OVS_EXCLUDED(mutex_);

    /* Every session, in name order. */
    std::vector<uptrace::SessionPtr> sessions() const OVS_EXCLUDED(mutex_);

    /* The sessions named 'name', or all of them if 'name' is NULL.  Returns
     * ENOENT if there is no such session. */
    int select_sessions(const char *name,
                        std::vector<uptrace::SessionPtr> *selected,
                        char **errp) const OVS_EXCLUDED(mutex_);

    uptrace_session *find_session(const char *name) const
        OVS_EXCLUDED(mutex_)
    {
        uptrace::MutexGuard guard(&mutex_);
        auto it = sessions_.find(name);
        return it == sessions_.end() ? nullptr : it->second.get();
    }

    size_t n_sessions() const OVS_EXCLUDED(mutex_)
    {
        uptrace::MutexGuard guard(&mutex_);
        return sessions_.size();
    }

private:
    static std::string already_exists(const std::string &name)
    {
        return "an upcall trace session named " + name + " already exists";
    }

    std::shared_ptr<uptrace_engine> self_;
    const std::shared_ptr<uptrace::EngineShared> shared_;
    uptrace::BlobFormatter formatter_;
    uptrace::ExpectationTable expectations_;
    uptrace::FlowLog flows_;

    mutable struct ovs_mutex mutex_;
    std::map<std::string, uptrace::SessionPtr> sessions_
        OVS_GUARDED_BY(mutex_);
};

#endif /* ofproto/upcall-trace-registry.hh */
