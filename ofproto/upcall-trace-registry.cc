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

#include "upcall-trace-registry.hh"

using namespace uptrace;

uptrace_engine::uptrace_engine(const struct uptrace_engine_options *options)
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

int
uptrace_engine::create_session(SessionConfig config,
                               uptrace_session **sessionp, char **errp)
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

int
uptrace_engine::reconfigure_session(uptrace_session *session,
                                    SessionConfig config, char **errp)
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

void
uptrace_engine::remove_session(uptrace_session *session)
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
    flows_.forget_session(session);
    /* 'removed' may be the last shared_ptr besides the handle's; it is
     * released here, outside the registry lock. */
}

std::vector<SessionPtr>
uptrace_engine::take_all_sessions()
{
    std::vector<SessionPtr> all;
    MutexGuard guard(&mutex_);
    for (auto &entry : sessions_) {
        all.push_back(std::move(entry.second));
    }
    sessions_.clear();
    for (const SessionPtr &session : all) {
        flows_.forget_session(session.get());
    }
    return all;
}

std::vector<SessionPtr>
uptrace_engine::sessions() const
{
    std::vector<SessionPtr> all;
    MutexGuard guard(&mutex_);
    all.reserve(sessions_.size());
    for (const auto &entry : sessions_) {
        all.push_back(entry.second);
    }
    return all;
}

int
uptrace_engine::select_sessions(const char *name,
                                std::vector<SessionPtr> *selected,
                                char **errp) const
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
