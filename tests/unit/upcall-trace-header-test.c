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

/* Compiles ofproto/upcall-trace.h as C99 and uses the engine through it the
 * way the C shim does.  Exits with status 0 on success, 1 on failure. */

#include "upcall-trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_failures;

#define CHECK(CONDITION)                                                \
    do {                                                                \
        if (!(CONDITION)) {                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n",                \
                    __FILE__, __LINE__, #CONDITION);                    \
            n_failures++;                                               \
        }                                                               \
    } while (0)

static int64_t fake_now = 5000;

static int64_t
fake_clock(void *aux)
{
    (void) aux;
    return fake_now;
}

/* Formats flows as their text and actions as "output:<text>". */
static char *
format_blob(enum uptrace_blob which, const void *data, size_t size,
            const char *bridge, void *aux)
{
    const char *prefix = which == UPTRACE_BLOB_ODP_ACTIONS ? "output:" : "";
    char *s = malloc(strlen(prefix) + size + 1);

    (void) bridge;
    (void) aux;
    if (s) {
        strcpy(s, prefix);
        memcpy(s + strlen(prefix), data, size);
        s[strlen(prefix) + size] = '\0';
    }
    return s;
}

static void
set_blob(struct uptrace_round *capture, enum uptrace_blob which,
         const char *text)
{
    uptrace_round_set_blob(capture, which, text, strlen(text));
}

int
main(void)
{
    struct uptrace_engine_options options;
    struct uptrace_session_config config;
    struct uptrace_session_status status;
    struct uptrace_memory_usage usage;
    struct uptrace_round_info info;
    struct uptrace_fingerprint fp;
    struct uptrace_session *session = NULL;
    struct uptrace_session *sessions[1];
    struct uptrace_round *capture;
    struct uptrace_engine *engine;
    static const uint8_t ufid[16] = {1, 2, 3, 4};
    uint64_t id;
    char *out = NULL;
    char *error = NULL;

    memset(&options, 0, sizeof options);
    options.formatter = format_blob;
    options.monotonic_ms = fake_clock;
    options.wall_ms = fake_clock;
    engine = uptrace_engine_create(&options);
    CHECK(engine != NULL);
    CHECK(uptrace_engine_n_capturing(engine) == 0);

    /* A bad configuration is refused with a message. */
    uptrace_session_config_init(&config);
    CHECK(uptrace_session_create(engine, &config, &session, &error)
          == EINVAL);
    CHECK(session == NULL);
    CHECK(error != NULL);
    free(error);
    error = NULL;

    config.name = "web";
    config.bridge = "br0";
    config.filter = "tcp,tp_dst=80";
    CHECK(uptrace_session_create(engine, &config, &session, &error) == 0);
    CHECK(session != NULL && error == NULL);
    CHECK(uptrace_engine_find_session(engine, "web") == session);

    uptrace_session_get_status(session, &status);
    CHECK(status.state == UPTRACE_STATE_WAITING);
    uptrace_session_status_uninit(&status);

    uptrace_session_set_ready(session, true, NULL, NULL);
    CHECK(uptrace_engine_n_capturing(engine) == 1);
    CHECK(!strcmp(uptrace_state_to_string(UPTRACE_STATE_ACTIVE), "active"));

    /* Capture a trace of two rounds. */
    memset(&info, 0, sizeof info);
    info.upcall_type = "miss";
    info.in_port = 1;
    info.in_port_name = "p1";
    info.datapath = "system@ovs-system";
    info.pmd_id = UINT32_MAX;
    sessions[0] = session;
    capture = uptrace_round_begin(engine, sessions, 1, &info, false);
    CHECK(capture != NULL);
    if (!capture) {
        return 1;
    }
    set_blob(capture, UPTRACE_BLOB_INITIAL_FLOW, "in_port=1,tcp");
    set_blob(capture, UPTRACE_BLOB_FINAL_FLOW, "in_port=1,tcp");
    set_blob(capture, UPTRACE_BLOB_MEGAFLOW, "recirc_id=0,in_port=1");
    set_blob(capture, UPTRACE_BLOB_ODP_ACTIONS, "ct,recirc(0x5)");
    uptrace_round_set_translation(capture, "\nbridge(\"br0\")\n");
    uptrace_round_set_path(capture, "table 0: ct");
    uptrace_round_set_xlate_error(capture, NULL);
    uptrace_round_set_ufid(capture, ufid);
    uptrace_round_set_install(capture, true, NULL);
    fp.invariant = 11;
    fp.tuple = 22;
    fp.nat = false;
    uptrace_round_expect_recirc(capture, 5, &fp);
    uptrace_round_commit(capture);

    CHECK(uptrace_engine_expects(engine, 5));
    info.recirc_id = 5;
    capture = uptrace_round_continue(engine, 5, &fp, &info);
    CHECK(capture != NULL);
    uptrace_round_set_translation(capture, "\nbridge(\"br0\")\n");
    uptrace_round_set_install(capture, false, "flow limit");
    uptrace_round_commit(capture);
    uptrace_round_abort(NULL);

    uptrace_session_get_status(session, &status);
    CHECK(status.state == UPTRACE_STATE_ACTIVE);
    CHECK(status.error == NULL);
    CHECK(status.n_matched == 1);
    CHECK(status.n_traces == 1);
    CHECK(status.last_trace_id != 0);
    CHECK(status.bytes > 0);
    id = status.last_trace_id;
    uptrace_session_status_uninit(&status);

    uptrace_engine_get_memory_usage(engine, &usage);
    CHECK(usage.n_sessions == 1);
    CHECK(usage.n_traces == 1);
    CHECK(usage.n_rounds == 2);
    CHECK(usage.bytes > 0);

    /* Reading. */
    CHECK(uptrace_engine_get(engine, id, UPTRACE_FORMAT_TEXT, &out, &error)
          == 0);
    CHECK(out && strstr(out, "Datapath actions: output:ct,recirc(0x5)\n"));
    CHECK(out && strstr(out, "Final flow: unchanged\n"));
    CHECK(out && strstr(out, "(not installed: flow limit)"));
    free(out);
    out = NULL;

    CHECK(uptrace_engine_list(engine, "web", UPTRACE_FORMAT_JSON, &out,
                              &error) == 0);
    CHECK(out && out[0] == '{');
    free(out);
    out = NULL;

    CHECK(uptrace_engine_show(engine, UPTRACE_FORMAT_TEXT, &out, &error)
          == 0);
    CHECK(out && strstr(out, "tcp,tp_dst=80"));
    free(out);
    out = NULL;

    CHECK(uptrace_engine_summary(engine, NULL, UPTRACE_FORMAT_TEXT, &out,
                                 &error) == 0);
    free(out);
    out = NULL;

    CHECK(uptrace_engine_get(engine, id + 1000, UPTRACE_FORMAT_TEXT, &out,
                             &error) == ENOENT);
    CHECK(out == NULL);
    CHECK(error != NULL);
    free(error);
    error = NULL;

    CHECK(uptrace_engine_clear(engine, NULL, &error) == 0);
    CHECK(uptrace_engine_run(engine) || true);

    /* A referenced session outlives its destruction. */
    CHECK(uptrace_session_ref(session) == session);
    uptrace_session_destroy(session);
    CHECK(uptrace_engine_find_session(engine, "web") == NULL);
    CHECK(uptrace_round_begin(engine, sessions, 1, &info, false) == NULL);
    uptrace_session_unref(session);

    uptrace_engine_destroy(engine);
    return n_failures ? 1 : 0;
}
