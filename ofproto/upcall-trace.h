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

#ifndef OFPROTO_UPCALL_TRACE_H
#define OFPROTO_UPCALL_TRACE_H 1

/* Live upcall tracing engine: the C interface.
 *
 * The engine (ofproto/upcall-trace-engine.cc and the files it lists, C++17)
 * stores what the upcall path captured: sessions, their traces, the rounds of
 * each trace, the expectations that link a recirculated packet back to its
 * trace, and every bound the configuration sets.  It knows nothing of Open vSwitch's internal
 * types: the C shim (ofproto/ofproto-dpif-upcall-trace.c) turns flows,
 * wildcards and datapath actions into opaque blobs here, and formats them back
 * into text, in the main thread, through the formatter the engine was created
 * with.
 *
 * This header is pure C (C99) and is also compiled as C by a unit test.
 *
 * Conventions, after LevelDB's c.h:
 *
 *   - Every object is an opaque handle, created by one function and released
 *     by exactly one other.
 *   - Functions that can fail return an 'int' (0 on success, an errno value
 *     otherwise) and, if 'errp' is nonnull, store a malloc()'d human readable
 *     message there that the caller must free().  On success '*errp' is set to
 *     NULL.
 *   - Strings returned to the caller are malloc()'d and freed with free().
 *   - No C++ exception ever crosses this interface.
 *
 * Thread safety: every function may be called from any thread.  Capture
 * functions are meant for handler and PMD threads and never block on the
 * reading side; reading functions are meant for the main thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uptrace_engine;          /* The whole store. */
struct uptrace_session;         /* One tracing session (one Upcall_Trace row). */
struct uptrace_round;           /* One round (one upcall) being recorded. */

/* Output formats of the reading functions. */
enum uptrace_format {
    UPTRACE_FORMAT_TEXT,
    UPTRACE_FORMAT_JSON
};

/* Binary fields of a round, formatted only when read. */
enum uptrace_blob {
    UPTRACE_BLOB_INITIAL_FLOW,  /* The upcall's flow. */
    UPTRACE_BLOB_FINAL_FLOW,    /* The flow after translation. */
    UPTRACE_BLOB_MEGAFLOW,      /* The flow and the wildcards it installed. */
    UPTRACE_BLOB_ODP_ACTIONS,   /* Datapath actions (netlink attributes). */
    UPTRACE_N_BLOBS
};

/* Turns a blob back into text.  Called in the thread that reads (the main
 * thread), never in a capture thread.  'bridge' is the name of the bridge the
 * round was captured on, so port numbers can be given names.  Returns a
 * malloc()'d string, or NULL if the blob cannot be formatted. */
typedef char *uptrace_blob_formatter(enum uptrace_blob, const void *data,
                                     size_t size, const char *bridge,
                                     void *aux);

/* Clocks, in milliseconds.  'monotonic' drives retention, rate limits,
 * durations and expectation lifetimes; 'wall' stamps rounds. */
typedef int64_t uptrace_clock(void *aux);

struct uptrace_engine_options {
    uptrace_blob_formatter *formatter;  /* NULL: blobs shown in hex. */
    void *formatter_aux;
    uptrace_clock *monotonic_ms;        /* NULL: steady clock. */
    uptrace_clock *wall_ms;             /* NULL: system clock. */
    void *clock_aux;

    /* How long a recirculation expectation waits for its packet.  0 means
     * the default (1000 ms). */
    int64_t expectation_ttl_ms;

    /* Most expectations kept at once; the oldest go first.  0 means the
     * default (4096). */
    uint32_t max_expectations;

    /* The smallest trace id to give out, 0 for 1.  ovs-vswitchd draws a
     * prefix at each start and puts it in the high bits, so that an id from
     * an earlier run never names another trace.  Trace ids are unique in the
     * process: this only raises the next one. */
    uint64_t first_trace_id;
};

/* Creates an engine.  'options' may be NULL for the defaults.  Never fails
 * except by running out of memory, which aborts as everywhere in OVS. */
struct uptrace_engine *uptrace_engine_create(
    const struct uptrace_engine_options *);

/* Destroys 'engine', its sessions and all their traces.  Session handles
 * still referenced (see uptrace_session_ref()) stay valid until unreferenced
 * but are detached: they capture nothing. */
void uptrace_engine_destroy(struct uptrace_engine *);

/* Number of sessions that may capture (configured, enabled and not in an
 * error or waiting state).  Cheap: one relaxed atomic load. */
uint32_t uptrace_engine_n_capturing(const struct uptrace_engine *);

/* Memory used by stored traces, in bytes, and counts, for memory/show. */
struct uptrace_memory_usage {
    uint64_t n_sessions;
    uint64_t n_traces;
    uint64_t n_rounds;
    uint64_t n_expectations;
    uint64_t bytes;
};
void uptrace_engine_get_memory_usage(const struct uptrace_engine *,
                                     struct uptrace_memory_usage *);

/* Sessions. */

enum uptrace_mode {
    UPTRACE_MODE_CIRCULAR,      /* When full, evict the oldest trace. */
    UPTRACE_MODE_STOP           /* When full, stop capturing. */
};

#define UPTRACE_MAX_TRACES_MIN 1
#define UPTRACE_MAX_TRACES_MAX 65536
#define UPTRACE_MAX_TRACES_DEFAULT 64
#define UPTRACE_PACKET_BYTES_MAX 65535

/* The smallest max_trace_size that ovs-vswitchd accepts: one round of
 * Open vSwitch's flows (two flows and a megaflow, about 2.7 kB on x86-64),
 * the round itself and short datapath actions, cut only in its translation
 * and packet.  The engine itself takes any size (its tests use small
 * blobs). */
#define UPTRACE_MAX_TRACE_SIZE_MIN 4096
#define UPTRACE_MAX_TRACE_SIZE_MAX 1073741824

struct uptrace_session_config {
    const char *name;           /* Unique among sessions.  Required. */
    const char *bridge;         /* Bridge name.  Required. */
    const char *port;           /* Port name, or NULL for any port. */
    const char *filter;         /* OpenFlow match as written, or NULL/"". */
    uint32_t max_traces;        /* UPTRACE_MAX_TRACES_MIN..._MAX. */
    int64_t retention_ms;       /* Drop traces older than this; 0: never. */
    enum uptrace_mode mode;
    uint32_t max_rate;          /* New traces per second; 0: unlimited. */
    uint64_t max_trace_size;    /* Bytes per trace; 0: unlimited.  A round
                                 * that does not fit is cut and marked
                                 * (translation, packet, then blobs); one
                                 * whose header alone does not fit is not
                                 * stored and counted in its trace, except
                                 * a trace's first round, always stored, so
                                 * that no trace is empty: at least
                                 * UPTRACE_MAX_TRACE_SIZE_MIN keeps it
                                 * within the bound. */
    int64_t duration_ms;        /* Session expires after this; 0: never. */
    uint32_t packet_bytes;      /* Bytes of each round's packet kept, at most
                                 * UPTRACE_PACKET_BYTES_MAX; 0: none. */
    bool enabled;
};

/* Initializes 'config' with the defaults of the Upcall_Trace table. */
void uptrace_session_config_init(struct uptrace_session_config *);

/* Creates a session in 'engine' from 'config' (copied).  Fails with EINVAL
 * if the configuration is out of range, EEXIST if the name is taken.
 * The new session starts in UPTRACE_STATE_WAITING until the caller, which
 * knows whether the bridge and port exist, calls uptrace_session_set_ready().
 * The handle belongs to the caller until uptrace_session_destroy(). */
int uptrace_session_create(struct uptrace_engine *,
                           const struct uptrace_session_config *,
                           struct uptrace_session **sessionp, char **errp);

/* Changes the configuration of 'session' in place.  Stored traces are kept:
 * when 'max_traces' shrinks, the oldest are evicted (and counted); when the
 * filter, bridge or port change, stored traces are kept too.  A duration
 * restarts only if its value changes.  Fails as uptrace_session_create(). */
int uptrace_session_reconfigure(struct uptrace_session *,
                                const struct uptrace_session_config *,
                                char **errp);

/* Removes 'session' from its engine, drops its traces and releases the
 * caller's handle.  Capture threads that still hold a reference (see
 * uptrace_session_ref()) may keep using it safely; it no longer captures. */
void uptrace_session_destroy(struct uptrace_session *);

/* Reference counting for holders other than the creator, such as the
 * RCU-published filter index of the shim. */
struct uptrace_session *uptrace_session_ref(struct uptrace_session *);
void uptrace_session_unref(struct uptrace_session *);

/* Finds a session by name, or NULL.  The handle is not referenced. */
struct uptrace_session *uptrace_engine_find_session(struct uptrace_engine *,
                                                    const char *name);

/* What the configuration layer knows and the engine does not: whether the
 * session's bridge and port exist and its filter parses.
 *
 * 'ready' true: the session may capture (state active, or disabled, full or
 * expired as the engine decides).  'ready' false with 'error' NULL: waiting
 * for the bridge or port named in 'reason'.  'error' nonnull: the
 * configuration is wrong; the message is shown in the status. */
void uptrace_session_set_ready(struct uptrace_session *, bool ready,
                               const char *waiting_reason,
                               const char *error);

/* Whether the upcall path must look 'session' up: true while it captures,
 * waits for a max-rate token, or is full in mode=stop (it counts the
 * upcalls it misses in 'n_dropped_full'); false while it cannot capture
 * until its state or configuration changes (expired, disabled, waiting, in
 * error).  The upcall path keeps the latter out of its index, so that they
 * cost nothing there.  Lock-free. */
bool uptrace_session_wants_upcalls(const struct uptrace_session *);

enum uptrace_state {
    UPTRACE_STATE_ACTIVE,       /* Capturing. */
    UPTRACE_STATE_WAITING,      /* Bridge or port missing. */
    UPTRACE_STATE_DISABLED,     /* enabled=false. */
    UPTRACE_STATE_FULL,         /* mode=stop and max_traces reached. */
    UPTRACE_STATE_EXPIRED,      /* 'duration' has passed. */
    UPTRACE_STATE_ERROR         /* Invalid configuration. */
};

/* Returns "active", "waiting", ... */
const char *uptrace_state_to_string(enum uptrace_state);

struct uptrace_session_status {
    enum uptrace_state state;
    char *error;                /* malloc()'d, or NULL. */
    uint64_t n_matched;         /* Upcalls that matched the filter. */
    uint64_t n_traces;          /* Traces stored now. */
    uint64_t n_traces_total;    /* Traces ever started. */
    uint64_t n_evicted;         /* Dropped by max_traces. */
    uint64_t n_expired;         /* Dropped by retention. */
    uint64_t n_rate_limited;    /* Not captured because of max-rate. */
    uint64_t n_truncated;       /* Traces cut by max-trace-size. */
    uint64_t n_dropped_full;    /* Not captured because full, mode=stop. */
    uint64_t last_trace_id;     /* 0 if none. */
    int64_t last_trace_time;    /* Wall clock, ms; 0 if none. */
    uint64_t bytes;             /* Memory held by the stored traces. */
};

/* Fills 'status'.  Also applies retention and duration expiry first, so the
 * status is current.  Free with uptrace_session_status_uninit(). */
void uptrace_session_get_status(struct uptrace_session *,
                                struct uptrace_session_status *);
void uptrace_session_status_uninit(struct uptrace_session_status *);

/* Applies retention and duration to every session.  Called periodically from
 * the main loop; returns true if any session's status changed. */
bool uptrace_engine_run(struct uptrace_engine *);

/* Recording a round.  A round is one upcall of a trace.  It is begun
 * before translation, filled after it, and committed (stored) or aborted.
 * These functions, which capture threads call, never take a lock that a
 * reader holds while formatting. */

struct uptrace_round_info {
    const char *upcall_type;    /* "miss", "slow_path", ... */
    uint32_t recirc_id;         /* The upcall's recirc_id. */
    uint32_t in_port;           /* OpenFlow in_port number. */
    const char *in_port_name;   /* Or NULL. */
    const char *datapath;       /* "netdev@ovs-netdev", ... */
    uint32_t pmd_id;            /* UINT32_MAX if none. */
    const char *bridge;         /* The bridge translation ran on (for a
                                 * continuation, the one it resumed on), or
                                 * NULL for the session's. */
};

/* Identifies a packet across recirculation without relying on the shared
 * frozen state.  'invariant' hashes what neither conntrack nor NAT changes
 * (IP identification, L4 payload, lengths, protocol, in_port); 'tuple'
 * hashes the L3 and L4 addresses the datapath will present.  'nat' means
 * that 'tuple' is not compared: on the recirculated side, conntrack says
 * the packet was translated; on the registering side, the packet may be
 * translated (ct(nat)) or its header was not known when it was frozen. */
struct uptrace_fingerprint {
    uint64_t invariant;
    uint64_t tuple;
    bool nat;
};

/* Starts a new trace in each of the 'n' sessions that admits it (enabled, not
 * full in stop mode, within its rate), counting a match in every one of
 * them.  'partial' marks a trace that starts at a recirculation because its
 * earlier rounds were handled by installed datapath flows.  Returns NULL if
 * no session admits the upcall. */
struct uptrace_round *uptrace_round_begin(
    struct uptrace_engine *, struct uptrace_session *const sessions[],
    size_t n, const struct uptrace_round_info *, bool partial);

/* Removes from 'sessions' (in place, keeping their order) those that cannot
 * start a trace now: expired, full in mode=stop, or over max-rate until
 * their next token is due.  Lock-free, for the sessions an upcall matched:
 * an atomic load per session, and one clock read if one of them waits for
 * a token.  Counts each refusal as uptrace_round_begin() would.  Returns
 * the number of sessions left. */
size_t uptrace_sessions_drop_closed(struct uptrace_engine *,
                                    struct uptrace_session *sessions[],
                                    size_t n);

/* For a round that continues traces (uptrace_round_continue()) and that
 * the filters of 'sessions' also match: starts a trace at this round in
 * each of them that admits it and is not one that the round continues. */
void uptrace_round_add_sessions(struct uptrace_round *,
                                struct uptrace_session *const sessions[],
                                size_t n, bool partial);

/* Returns true if some expectation waits for 'recirc_id', so the caller
 * computes a fingerprint only when it can matter.  Lock-free. */
bool uptrace_engine_expects(const struct uptrace_engine *, uint32_t recirc_id);

/* Returns true if some expectation for 'recirc_id' may be claimed by a
 * packet whose fingerprint has 'fp->tuple' (any tuple if 'fp->nat'; the
 * other members are not read), so that the caller hashes a packet's payload
 * for its full fingerprint only when it can matter.  Takes the lock of one
 * shard of expectations, only when uptrace_engine_expects() is true. */
bool uptrace_engine_expects_tuple(const struct uptrace_engine *,
                                  uint32_t recirc_id,
                                  const struct uptrace_fingerprint *fp);

/* Claims the expectation registered for a recirculation of a traced packet,
 * if any, and starts a round that continues its traces.  Returns NULL if no
 * expectation matches (the caller may then try uptrace_round_begin() with
 * 'partial' true).  An expectation is claimed once. */
struct uptrace_round *uptrace_round_continue(
    struct uptrace_engine *, uint32_t recirc_id,
    const struct uptrace_fingerprint *, const struct uptrace_round_info *);

/* Optional: room for 'n_nodes' nodes of 'node_text' bytes of text in all
 * (uptrace_round_add_node()) and 'blob_bytes' bytes of blobs, so that
 * the round is allocated once at its final size, neither grown nor trimmed
 * at commit.  More may be added than reserved. */
void uptrace_round_reserve(struct uptrace_round *, size_t n_nodes,
                           size_t node_text, size_t blob_bytes);

/* Fills the round.  Each may be called at most once per field. */
void uptrace_round_set_blob(struct uptrace_round *, enum uptrace_blob,
                            const void *data, size_t size);
/* The translation as ofproto/trace prints it (the node tree). */
void uptrace_round_set_translation(struct uptrace_round *,
                                   const char *text);
/* What identifies the path for upcall/trace/summary: the tables and rules
 * hit, one per line.  The datapath actions are added by the engine. */
void uptrace_round_set_path(struct uptrace_round *, const char *path);

/* The types of the nodes of a translation tree, as ofproto/trace's "enum
 * oftrace_node_type". */
enum uptrace_node_type {
    UPTRACE_NODE_BRIDGE,        /* Printed with an underline; in the path. */
    UPTRACE_NODE_TABLE,         /* A rule hit in a table; in the path. */
    UPTRACE_NODE_THAW,          /* Thawing a frozen state; in the path. */
    UPTRACE_NODE_BUCKET,        /* A group bucket; in the path. */
    UPTRACE_NODE_ACTION,
    UPTRACE_NODE_DETAIL,        /* Printed after " -> ". */
    UPTRACE_NODE_WARN,          /* Printed after " >> ". */
    UPTRACE_NODE_ERROR,         /* Printed between ">>>> " and " <<<<". */
};

/* Instead of uptrace_round_set_translation() and _set_path(): appends one
 * node of the translation tree, in depth-first order, 'depth' being 0 for a
 * top-level node and its parent's plus one otherwise.  The 'size' bytes of
 * 'text' are copied.  The engine stores the tree as it is and renders the
 * translation (exactly as ofproto/trace prints the tree) and the path only
 * when the round is read, so that a capture thread spends no time
 * formatting. */
void uptrace_round_add_node(struct uptrace_round *,
                            enum uptrace_node_type, unsigned int depth,
                            const char *text, size_t size);

/* One node, for uptrace_round_add_nodes(). */
struct uptrace_node {
    enum uptrace_node_type type;
    unsigned int depth;
    const char *text;
    size_t size;
};

/* Appends 'n' nodes at once, as uptrace_round_add_node() would one by
 * one, with one allocation for all of them at their final size. */
void uptrace_round_add_nodes(struct uptrace_round *,
                             const struct uptrace_node *, size_t n);
/* The translation error, or NULL if translation succeeded. */
void uptrace_round_set_xlate_error(struct uptrace_round *,
                                   const char *error);
void uptrace_round_set_ufid(struct uptrace_round *,
                            const uint8_t ufid[16]);
/* How many bytes of the round's packet its sessions keep (the largest of
 * their packet_bytes): 0 if none.  Then uptrace_round_set_packet() stores
 * the first 'size' of the packet's 'orig_len' bytes. */
uint32_t uptrace_round_packet_bytes(const struct uptrace_round *);
void uptrace_round_set_packet(struct uptrace_round *, const void *data,
                              size_t size, size_t orig_len);
/* Whether the datapath flow was installed and, if not, why. */
void uptrace_round_set_install(struct uptrace_round *, bool installed,
                               const char *reason);
/* Why the datapath failed to execute the round's actions on its packet,
 * if it did ("the datapath failed to execute the actions (...)"). */
void uptrace_round_set_execute_error(struct uptrace_round *,
                                     const char *error);
/* Why the datapath actions send the packets to userspace, as ofproto/trace
 * explains it after "Datapath actions:" (without a final new-line), or NULL
 * if they do not. */
void uptrace_round_set_slow_path(struct uptrace_round *,
                                 const char *explanation);

/* Registers that the packet of this round will come back recirculated with
 * 'recirc_id', so that uptrace_round_continue() can link that round to the
 * same traces.  Effective immediately, before commit, because the
 * recirculated upcall may be handled by another thread first. */
void uptrace_round_expect_recirc(struct uptrace_round *,
                                 uint32_t recirc_id,
                                 const struct uptrace_fingerprint *);

/* Stores the round in its traces and frees it. */
void uptrace_round_commit(struct uptrace_round *);

/* Frees the round without storing anything.  NULL is allowed. */
void uptrace_round_abort(struct uptrace_round *);

/* Reading.  Each returns 0 and a malloc()'d '*outp', or an errno value
 * (ENOENT for an unknown session or trace id) and a message in '*errp'.
 * JSON output is one JSON value, documented in
 * Documentation/topics/upcall-tracing.rst. */

/* Every session: configuration, state, counters, memory. */
int uptrace_engine_show(struct uptrace_engine *, enum uptrace_format,
                        char **outp, char **errp);

/* One line (or object) per stored trace, of 'session' or of all if NULL. */
int uptrace_engine_list(struct uptrace_engine *, const char *session,
                        enum uptrace_format, char **outp, char **errp);

/* Like uptrace_engine_list(), with only the traces whose id is above
 * 'since' (0 for all), for a reader that polls with a cursor.  Also stores
 * in '*missedp' how many traces above 'since' the selected sessions dropped
 * (evicted, expired or cleared) before this call, a lower bound if one of
 * them dropped more than 4096 traces since, and in '*nextp' the cursor to
 * pass next time: the newest trace id of the selected sessions, but below
 * any trace whose first round is still being captured. */
int uptrace_engine_list_since(struct uptrace_engine *, const char *session,
                              uint64_t since, enum uptrace_format,
                              uint64_t *missedp, uint64_t *nextp,
                              char **outp, char **errp);

/* Parses 's' as a trace id, strictly: "0x" (or "0X") and 1 to 16
 * hexadecimal digits, or 1 to 20 decimal digits, nonzero, within 64 bits,
 * nothing else (no sign, space or octal).  Returns 0 or EINVAL. */
int uptrace_parse_trace_id(const char *s, uint64_t *idp);

/* Every round of trace 'id'. */
int uptrace_engine_get(struct uptrace_engine *, uint64_t id,
                       enum uptrace_format, char **outp, char **errp);

/* Stored traces grouped by identical path, with counts. */
int uptrace_engine_summary(struct uptrace_engine *, const char *session,
                           enum uptrace_format, char **outp, char **errp);

/* Drops the stored traces of 'session', or of all if NULL. */
int uptrace_engine_clear(struct uptrace_engine *, const char *session,
                         char **errp);

/* The datapath flows of traced rounds.
 *
 * For each stored round that installed a datapath flow, the engine follows
 * the flow, by UFID, for as long as it lives, from what the revalidators
 * report: its counters, each revalidation that changed it, and its deletion.
 * upcall/trace/get shows it after the rounds. */

enum uptrace_flow_change {
    UPTRACE_FLOW_STATS,         /* Only its counters changed. */
    UPTRACE_FLOW_MODIFIED,      /* New datapath actions, given as 'detail'. */
    UPTRACE_FLOW_DELETED        /* It left the datapath; 'detail' says why. */
};

/* True while the engine follows some flow.  Lock-free: revalidators call it
 * for every flow they look at. */
bool uptrace_engine_follows_flows(const struct uptrace_engine *);

/* Reports on the flow with 'ufid': its packets and bytes since it was
 * installed and what 'change' and 'detail' say.  Returns false if the flow
 * is not followed. */
bool uptrace_engine_flow_changed(struct uptrace_engine *,
                                 const uint8_t ufid[16],
                                 enum uptrace_flow_change,
                                 const char *detail, uint64_t n_packets,
                                 uint64_t n_bytes);

/* Stores in '*trace_id' the id of the newest stored trace one of whose
 * rounds installed the flow with 'ufid'.  Returns ENOENT, with a message, if
 * there is none. */
int uptrace_engine_find_ufid(struct uptrace_engine *, const uint8_t ufid[16],
                             uint64_t *trace_id, char **errp);

#ifdef __cplusplus
}
#endif

#endif /* ofproto/upcall-trace.h */
