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

/* Live upcall tracing: the "upcall/trace/..." unixctl commands that read
 * the engine (show, list, get, summary, clear), in text or, with
 * "ovs-appctl -f json", JSON.  upcall/trace/purge is upcall-trace-purge.c's.
 * Main thread only, as every unixctl command. */

#include <config.h>

#include "upcall-trace-unixctl.h"

#include <errno.h>
#include <string.h>

#include "odp-util.h"
#include "ofproto-dpif-upcall-trace.h"
#include "openvswitch/json.h"
#include "openvswitch/vlog.h"
#include "unixctl.h"
#include "upcall-trace.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(upcall_trace_unixctl);

static enum uptrace_format
reply_format(struct unixctl_conn *conn)
{
    return (unixctl_command_get_output_format(conn) == UNIXCTL_OUTPUT_FMT_JSON
            ? UPTRACE_FORMAT_JSON : UPTRACE_FORMAT_TEXT);
}

/* Replies to 'conn' with what an engine reading function returned. */
static void
reply(struct unixctl_conn *conn, int error, char *out, char *msg)
{
    if (error) {
        unixctl_command_reply_error(conn, msg ? msg : ovs_strerror(error));
    } else if (reply_format(conn) == UPTRACE_FORMAT_JSON) {
        struct json *json = json_from_string(out ? out : "{}");

        if (json->type == JSON_STRING) {
            /* The engine's JSON did not parse: a bug, not the user's. */
            VLOG_ERR("upcall trace JSON does not parse: %s",
                     json_string(json));
            unixctl_command_reply_error(conn, "internal error formatting "
                                        "the reply as JSON");
            json_destroy(json);
        } else {
            unixctl_command_reply_json(conn, json);
        }
    } else {
        unixctl_command_reply(conn, out ? out : "");
    }
    free(out);
    free(msg);
}

static void
unixctl_show(struct unixctl_conn *conn, int argc OVS_UNUSED,
             const char *argv[] OVS_UNUSED, void *aux OVS_UNUSED)
{
    char *out = NULL, *msg = NULL;
    int error = uptrace_engine_show(upcall_trace_engine(), reply_format(conn),
                                    &out, &msg);

    reply(conn, error, out, msg);
}

/* Parses 's' as a trace id into '*idp'.  On failure, replies to 'conn' with
 * an error and returns false. */
static bool
parse_trace_id(struct unixctl_conn *conn, const char *s, uint64_t *idp)
{
    if (uptrace_parse_trace_id(s, idp)) {
        size_t n = strlen(s);
        char *error = xasprintf("trace id must be 0x and hexadecimal digits "
                                "or decimal digits, such as 0x1f, not "
                                "\"%.*s%s\"", (int) MIN(n, 200), s,
                                n > 200 ? "..." : "");
        unixctl_command_reply_error(conn, error);
        free(error);
        return false;
    }
    return true;
}

/* Whether trace 'id' was given out by an earlier run of ovs-vswitchd. */
static bool
trace_id_is_earlier(uint64_t id)
{
    return (id >> 32) != upcall_trace_id_prefix();
}

/* "upcall/trace/list [SESSION] [--since ID]".  With --since, only the
 * traces after ID, and for a reader that polls with it as a cursor: how
 * many traces after ID were dropped before it read them ("missed"), the
 * cursor of its next call ("last_id") and whether ID is from an earlier run
 * of ovs-vswitchd ("restarted"; every trace of this run is then listed). */
static void
unixctl_list(struct unixctl_conn *conn, int argc, const char *argv[],
             void *aux OVS_UNUSED)
{
    const char *session = NULL;
    bool have_since = false, restarted = false;
    uint64_t since = 0, missed, next;
    char *out = NULL, *msg = NULL;
    int error;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--since") && i + 1 < argc) {
            /* 0: from the first trace. */
            if (strcmp(argv[++i], "0")
                && !parse_trace_id(conn, argv[i], &since)) {
                return;
            }
            have_since = true;
        } else if (!session && strcmp(argv[i], "--since")) {
            session = argv[i];
        } else {
            unixctl_command_reply_error(conn, "usage: upcall/trace/list "
                                        "[SESSION] [--since ID]");
            return;
        }
    }
    if (have_since && since && trace_id_is_earlier(since)) {
        restarted = true;
        since = upcall_trace_id_prefix() << 32;
    }

    enum uptrace_format format = reply_format(conn);
    error = uptrace_engine_list_since(upcall_trace_engine(), session, since,
                                      format, &missed, &next, &out, &msg);
    if (!error && format == UPTRACE_FORMAT_JSON) {
        /* Add the cursor to the object: {"traces": [...], ...}. */
        char *end = out ? strrchr(out, '}') : NULL;
        if (end) {
            struct ds ds = DS_EMPTY_INITIALIZER;

            ds_put_buffer(&ds, out, end - out);
            ds_put_format(&ds, ",\"last_id\":%"PRIu64, next);
            if (have_since) {
                ds_put_format(&ds, ",\"missed\":%"PRIu64",\"restarted\":%s",
                              missed, restarted ? "true" : "false");
            }
            ds_put_cstr(&ds, end);
            free(out);
            out = ds_steal_cstr(&ds);
        }
    } else if (!error && have_since && (missed || restarted)) {
        struct ds ds = DS_EMPTY_INITIALIZER;

        if (restarted) {
            ds_put_cstr(&ds, "ovs-vswitchd restarted since that trace id: "
                        "its earlier traces are gone.\n");
        }
        ds_put_cstr(&ds, out ? out : "");
        if (missed) {
            ds_put_format(&ds, "missed %"PRIu64" trace%s\n", missed,
                          missed == 1 ? "" : "s");
        }
        free(out);
        out = ds_steal_cstr(&ds);
    }
    reply(conn, error, out, msg);
}

static void
unixctl_get(struct unixctl_conn *conn, int argc OVS_UNUSED,
            const char *argv[], void *aux OVS_UNUSED)
{
    char *out = NULL, *msg = NULL;
    uint64_t id;
    int error;

    if (!strncmp(argv[1], "ufid:", 5)) {
        /* The trace whose round installed that datapath flow. */
        ovs_u128 ufid;

        if (odp_ufid_from_string(argv[1], &ufid) <= 0) {
            unixctl_command_reply_error(conn, "UFID must be ufid: followed "
                                        "by a UUID, as dpctl/dump-flows "
                                        "prints it");
            return;
        }
        error = uptrace_engine_find_ufid(upcall_trace_engine(),
                                         (const uint8_t *) &ufid, &id, &msg);
        if (error) {
            reply(conn, error, NULL, msg);
            return;
        }
    } else {
        if (!parse_trace_id(conn, argv[1], &id)) {
            return;
        }
        if (trace_id_is_earlier(id)) {
            char *why = xasprintf("trace 0x%"PRIx64" is from an earlier run "
                                  "of ovs-vswitchd: traces do not survive "
                                  "a restart", id);
            unixctl_command_reply_error(conn, why);
            free(why);
            return;
        }
    }
    error = uptrace_engine_get(upcall_trace_engine(), id, reply_format(conn),
                               &out, &msg);
    reply(conn, error, out, msg);
}

static void
unixctl_summary(struct unixctl_conn *conn, int argc, const char *argv[],
                void *aux OVS_UNUSED)
{
    char *out = NULL, *msg = NULL;
    int error = uptrace_engine_summary(upcall_trace_engine(),
                                       argc > 1 ? argv[1] : NULL,
                                       reply_format(conn), &out, &msg);

    reply(conn, error, out, msg);
}

static void
unixctl_clear(struct unixctl_conn *conn, int argc, const char *argv[],
              void *aux OVS_UNUSED)
{
    char *msg = NULL;
    int error = uptrace_engine_clear(upcall_trace_engine(),
                                     argc > 1 ? argv[1] : NULL, &msg);

    reply(conn, error, NULL, msg);
}

void
upcall_trace_unixctl_register(void)
{
    unixctl_command_register("upcall/trace/show", "", 0, 0,
                             unixctl_show, NULL);
    unixctl_command_register("upcall/trace/list", "[SESSION] [--since ID]",
                             0, 3,
                             unixctl_list, NULL);
    unixctl_command_register("upcall/trace/get", "TRACE_ID|ufid:UFID", 1, 1,
                             unixctl_get, NULL);
    unixctl_command_register("upcall/trace/summary", "[SESSION]", 0, 1,
                             unixctl_summary, NULL);
    unixctl_command_register("upcall/trace/clear", "[SESSION]", 0, 1,
                             unixctl_clear, NULL);
}
