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
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "upcall-trace-engine.hh"
#include "upcall-trace-engine-util.hh"
#include "upcall-trace-registry.hh"
#include "upcall-trace-session.hh"

/* Reading the engine, for the unixctl commands (upcall/trace/...): the
 * sessions and traces are copied under their locks, then rendered
 * (upcall-trace-engine-render.cc) with no lock held. */

using namespace uptrace;

namespace {

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

/* Adds to 'rendered', trace 'trace' as render_trace() made it, the lives of
 * the datapath flows its rounds installed: text after the rounds, or a
 * "datapath_flows" array in the JSON object. */
std::string
with_flow_lives(std::string rendered, const TraceView &trace,
                const FlowLog &flows, enum uptrace_format format)
{
    std::vector<InstalledRound> rounds;
    uint32_t number = 0;
    for (const RoundPtr &round : trace.rounds) {
        number++;
        if (round->has_ufid && round->installed) {
            rounds.push_back({number, round->ufid});
        }
    }

    std::string lives = render_flow_lives(flows, trace.id, rounds, format);
    if (format == UPTRACE_FORMAT_JSON) {
        size_t end = rendered.find_last_of('}');
        if (end != std::string::npos) {
            rendered.insert(end, ",\"datapath_flows\":" + lives);
        }
    } else {
        rendered += lives;
    }
    return rendered;
}

/* Adds to 'rendered' the rounds that trace 'trace' expected and never got:
 * text after the rounds, or a "missing_rounds" array in the JSON object. */
std::string
with_missed_rounds(std::string rendered, const TraceView &trace,
                   const ExpectationTable &expectations,
                   enum uptrace_format format)
{
    bool json = format == UPTRACE_FORMAT_JSON;
    std::string missed = expectations.render_missed(trace.id, json);
    if (json) {
        size_t end = rendered.find_last_of('}');
        if (end != std::string::npos) {
            rendered.insert(end, ",\"missing_rounds\":" + missed);
        }
    } else {
        rendered += missed;
    }
    return rendered;
}

/* Copies the stored traces of 'session', or of every session if it is
 * null, into '*traces' for formatting outside any lock.  Returns 0, or
 * ENOENT with a message in '*errp' for an unknown session. */
int
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

/* Renders with 'render' the traces of 'session' (of every session if NULL)
 * into '*outp', for the C functions that read many traces. */
template <typename Render>
int
read_and_render(struct uptrace_engine *engine, const char *session,
                enum uptrace_format format, Render render, char **outp,
                char **errp)
{
    *outp = NULL;
    return call_from_c_errno(errp, [&] {
        std::vector<TraceView> traces;
        int error = read_traces(engine, session, &traces, errp);
        return (error ? error
                : reply(render(traces, engine->formatter(), format), outp));
    });
}

} /* anonymous namespace */

extern "C" {

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
    return read_and_render(engine, session, format, render_list, outp, errp);
}

int
uptrace_engine_list_since(struct uptrace_engine *engine, const char *session,
                          uint64_t since, enum uptrace_format format,
                          uint64_t *missedp, uint64_t *nextp, char **outp,
                          char **errp)
{
    *outp = NULL;
    *missedp = *nextp = 0;
    return call_from_c_errno(errp, [&] {
        std::vector<SessionPtr> sessions;
        int error = engine->select_sessions(session, &sessions, errp);
        if (error) {
            return error;
        }
        int64_t now = engine->clock().monotonic_ms();
        std::vector<TraceView> traces;
        uint64_t missed = 0, newest = 0, floor = UINT64_MAX;
        for (const SessionPtr &s : sessions) {
            s->collect_traces_since(since, now, &traces, &missed, &newest,
                                    &floor);
        }
        std::sort(traces.begin(), traces.end(),
                  [](const TraceView &a, const TraceView &b) {
                      return a.id < b.id;
                  });
        *missedp = missed;
        *nextp = std::max(since, std::min(newest, floor - 1));
        return reply(render_list(traces, engine->formatter(), format), outp);
    });
}

int
uptrace_parse_trace_id(const char *s, uint64_t *idp)
{
    *idp = 0;
    if (!s || !s[0]) {
        return EINVAL;
    }
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *p = hex ? s + 2 : s;
    size_t n = strlen(p);
    if (!n || n > (hex ? 16 : 20)) {
        return EINVAL;
    }
    uint64_t id = 0;
    for (; *p; p++) {
        int digit;
        if (*p >= '0' && *p <= '9') {
            digit = *p - '0';
        } else if (hex && *p >= 'a' && *p <= 'f') {
            digit = *p - 'a' + 10;
        } else if (hex && *p >= 'A' && *p <= 'F') {
            digit = *p - 'A' + 10;
        } else {
            return EINVAL;
        }
        uint64_t base = hex ? 16 : 10;
        if (id > (UINT64_MAX - digit) / base) {
            return EINVAL;
        }
        id = id * base + digit;
    }
    if (!id) {
        return EINVAL;
    }
    *idp = id;
    return 0;
}

int
uptrace_engine_get(struct uptrace_engine *engine, uint64_t id,
                   enum uptrace_format format, char **outp, char **errp)
{
    *outp = NULL;
    return call_from_c_errno(errp, [&] {
        int64_t now = engine->clock().monotonic_ms();
        TraceView trace;
        /* So that a round that is overdue is reported as missing now. */
        engine->expectations().purge_expired(now);
        for (const SessionPtr &session : engine->sessions()) {
            if (session->find_trace(id, now, &trace)) {
                return reply(with_flow_lives(
                                 with_missed_rounds(
                                     render_trace(trace, engine->formatter(),
                                                  format),
                                     trace, engine->expectations(), format),
                                 trace, engine->flows(), format), outp);
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
    return read_and_render(engine, session, format, render_summary, outp,
                           errp);
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
            engine->flows().forget_session(s.get());
        }
        return 0;
    });
}

} /* extern "C" */
