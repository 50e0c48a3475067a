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

#include "upcall-trace-target.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "lib/vswitch-idl.h"
#include "ofproto/ofproto-dpif.h"
#include "ofproto/ofproto-dpif-trace.h"
#include "ofproto/ofproto-provider.h"
#include "ofproto/upcall-trace.h"
#include "ofproto/upcall-trace-index.h"
#include "ofproto/upcall-trace-tunnel.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/dynamic-string.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "sset.h"
#include "util.h"

/* Bounds of the Upcall_Trace columns and options, as documented in
 * vswitch.xml.  The database enforces those of the columns too, but a
 * database that does not is no reason to misbehave. */
#define RETENTION_MAX_S 31536000            /* One year. */
#define DURATION_MAX_S 31536000             /* One year. */
#define MAX_RATE_MAX UINT32_MAX

/* Port rows by name, to resolve a Port name into its interfaces. */
static struct ovsdb_idl_index *port_by_name;

char *
ut_quote(const char *s)
{
    size_t n = strlen(s);

    if (n <= UT_QUOTE_MAX) {
        return xstrdup(s);
    }
    n = UT_QUOTE_MAX;
    while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80) {
        n--;                    /* Do not cut a UTF-8 character. */
    }
    return xasprintf("%.*s...", (int) n, s);
}

void
ut_target_init(struct ovsdb_idl *idl)
{
    port_by_name = ovsdb_idl_index_create1(idl, &ovsrec_port_col_name);
}

void
ut_target_ctx_init(struct ut_target_ctx *ctx, struct ovsdb_idl *idl)
{
    ctx->idl = idl;
    shash_init(&ctx->port_maps);
    shash_init(&ctx->iface_ids);
    ctx->have_iface_ids = false;
}

void
ut_target_ctx_destroy(struct ut_target_ctx *ctx)
{
    struct shash_node *node;

    SHASH_FOR_EACH (node, &ctx->port_maps) {
        ofputil_port_map_destroy(node->data);
        free(node->data);
    }
    shash_destroy(&ctx->port_maps);
    SHASH_FOR_EACH (node, &ctx->iface_ids) {
        sset_destroy(node->data);
        free(node->data);
    }
    shash_destroy(&ctx->iface_ids);
}

void
ut_target_destroy(struct ut_target *target)
{
    free(target->ports);
    target->ports = NULL;
    target->n_ports = 0;
}

bool
ut_target_equal(const struct ut_target *a, const struct ut_target *b)
{
    return (uuid_equals(&a->ofproto_uuid, &b->ofproto_uuid)
            && a->n_ports == b->n_ports
            && (!a->n_ports
                || !memcmp(a->ports, b->ports, a->n_ports * sizeof *a->ports)));
}

/* The OpenFlow port number of the interface 'name' of 'ofproto', or
 * OFPP_NONE.  A hash lookup: no datapath query. */
static ofp_port_t
ofproto_port_number(const struct ofproto_dpif *ofproto, const char *name)
{
    const struct ofport *ofport = shash_find_data(&ofproto->up.port_by_name,
                                                  name);
    return ofport ? ofport->ofp_port : OFPP_NONE;
}

static void
target_add(struct ut_target *target, ofp_port_t port)
{
    if (port == OFPP_NONE) {
        return;
    }
    for (size_t i = 0; i < target->n_ports; i++) {
        if (target->ports[i] == port) {
            return;
        }
    }
    target->ports = xrealloc(target->ports,
                             (target->n_ports + 1) * sizeof *target->ports);
    target->ports[target->n_ports++] = port;
}

static int
compare_ports(const void *a_, const void *b_)
{
    ofp_port_t a = *(const ofp_port_t *) a_;
    ofp_port_t b = *(const ofp_port_t *) b_;

    return ofp_to_u16(a) < ofp_to_u16(b) ? -1 : ofp_to_u16(a) > ofp_to_u16(b);
}

/* Returns the name of a bridge other than 'bridge' that has an interface
 * named 'name', or NULL.  Only used to explain an error: hash lookups in
 * each bridge. */
static const char *
port_owner(const char *bridge, const char *name)
{
    struct sset types = SSET_INITIALIZER(&types);
    const char *owner = NULL;
    const char *type;

    ofproto_enumerate_types(&types);
    SSET_FOR_EACH (type, &types) {
        struct sset names = SSET_INITIALIZER(&names);
        const char *br;

        ofproto_enumerate_names(type, &names);
        SSET_FOR_EACH (br, &names) {
            struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(br);

            if (!owner && ofproto && strcmp(br, bridge)
                && ofproto_port_number(ofproto, name) != OFPP_NONE) {
                owner = ofproto->up.name;
            }
        }
        sset_destroy(&names);
    }
    sset_destroy(&types);
    return owner;
}

static const struct ovsrec_port *
find_port(const char *name)
{
    struct ovsrec_port *key = ovsrec_port_index_init_row(port_by_name);
    const struct ovsrec_port *port;

    ovsrec_port_index_set_name(key, name);
    port = ovsrec_port_index_find(port_by_name, key);
    ovsrec_port_index_destroy_row(key);
    return port;
}

/* Builds, once per context, the interfaces of every bridge by iface-id. */
static const struct sset *
find_iface_id(struct ut_target_ctx *ctx, const char *iface_id)
{
    if (!ctx->have_iface_ids) {
        const struct ovsrec_interface *iface;

        ctx->have_iface_ids = true;
        OVSREC_INTERFACE_FOR_EACH (iface, ctx->idl) {
            const char *id = smap_get(&iface->external_ids, "iface-id");

            if (id) {
                struct sset *names = shash_find_data(&ctx->iface_ids, id);
                if (!names) {
                    names = xmalloc(sizeof *names);
                    sset_init(names);
                    shash_add(&ctx->iface_ids, id, names);
                }
                sset_add(names, iface->name);
            }
        }
    }
    return shash_find_data(&ctx->iface_ids, iface_id);
}

enum ut_target_result
ut_target_resolve(struct ut_target_ctx *ctx, const char *bridge,
                  const char *port, const char *iface_id,
                  struct ut_target *target, char **msgp)
{
    const struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(bridge);

    memset(target, 0, sizeof *target);
    *msgp = NULL;
    if (!ofproto) {
        char *q = ut_quote(bridge);
        *msgp = xasprintf("bridge \"%s\" does not exist", q);
        free(q);
        return UT_TARGET_NO_BRIDGE;
    }
    target->ofproto_uuid = ofproto->uuid;

    if (port) {
        const struct ovsrec_port *p = find_port(port);
        const char *other = NULL;

        /* A Port name: every interface of the Port that is on the bridge. */
        for (size_t i = 0; p && i < p->n_interfaces; i++) {
            target_add(target, ofproto_port_number(ofproto,
                                                   p->interfaces[i]->name));
        }
        /* An Interface name. */
        if (!target->n_ports) {
            target_add(target, ofproto_port_number(ofproto, port));
        }
        if (!target->n_ports) {
            other = port_owner(bridge, port);
            for (size_t i = 0; !other && p && i < p->n_interfaces; i++) {
                other = port_owner(bridge, p->interfaces[i]->name);
            }
        }
        if (!target->n_ports) {
            char *qp = ut_quote(port);
            char *qb = ut_quote(bridge);
            enum ut_target_result result;

            if (other) {
                *msgp = xasprintf("port \"%s\" belongs to bridge \"%s\", "
                                  "not \"%s\"", qp, other, qb);
                result = UT_TARGET_ERROR;
            } else {
                *msgp = xasprintf("port \"%s\" does not exist on bridge "
                                  "\"%s\"", qp, qb);
                result = UT_TARGET_NO_PORT;
            }
            free(qp);
            free(qb);
            return result;
        }
    } else if (iface_id) {
        const struct sset *names = find_iface_id(ctx, iface_id);
        const char *name;

        if (names) {
            SSET_FOR_EACH (name, names) {
                target_add(target, ofproto_port_number(ofproto, name));
            }
        }
        if (!target->n_ports) {
            char *qi = ut_quote(iface_id);
            char *qb = ut_quote(bridge);

            *msgp = xasprintf("no interface with external_ids:iface-id="
                              "\"%s\" on bridge \"%s\"", qi, qb);
            free(qi);
            free(qb);
            return UT_TARGET_NO_PORT;
        }
    }
    if (target->n_ports > 1) {
        qsort(target->ports, target->n_ports, sizeof *target->ports,
              compare_ports);
    }
    return UT_TARGET_OK;
}

static const struct ofputil_port_map *
bridge_port_map(struct ut_target_ctx *ctx, const struct ofproto_dpif *ofproto)
{
    struct ofputil_port_map *map = shash_find_data(&ctx->port_maps,
                                                   ofproto->up.name);
    if (!map) {
        map = xmalloc(sizeof *map);
        ofputil_port_map_init(map);
        ofproto_append_ports_to_map(map, ofproto->up.ports);
        shash_add(&ctx->port_maps, ofproto->up.name, map);
    }
    return map;
}

char *
ut_filter_parse(struct ut_target_ctx *ctx, const char *bridge,
                const char *filter, struct match *match, bool *uses_names)
{
    const struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(bridge);
    const struct tun_table *tun_tab;
    char *error;

    *uses_names = false;
    if (!filter || !filter[0]) {
        match_init_catchall(match);
        return NULL;
    }

    /* The full match syntax of "ovs-ofctl add-flow" (masks, prefixes,
     * flags; ofproto/upcall-trace-index.h).  Without port names first: most
     * filters do not use them, and their result then does not depend on the
     * bridge's ports. */
    tun_tab = ofproto ? ofproto_get_tun_tab(&ofproto->up) : NULL;
    error = upcall_trace_filter_parse(filter, NULL, tun_tab, match);
    if (error && ofproto) {
        free(error);
        *uses_names = true;
        error = upcall_trace_filter_parse(filter,
                                          bridge_port_map(ctx, ofproto),
                                          tun_tab, match);
    }
    if (!error) {
        /* A tun_metadataN the bridge's TLV map does not name. */
        error = upcall_trace_filter_tun_metadata(filter, &match->flow,
                                                 &match->wc);
    }
    if (error) {
        char *qf = ut_quote(filter);
        char *qe = ut_quote(error);
        char *msg = xasprintf("filter \"%s\": %s", qf, qe);

        free(qf);
        free(qe);
        free(error);
        return msg;
    }
    return NULL;
}

size_t
ut_target_matches(const struct ut_target *target, const struct match *filter,
                  const char *filter_text, const char *what,
                  struct minimatch *matches, char **msgp)
{
    *msgp = NULL;
    if (!target->n_ports) {
        minimatch_init(&matches[0], filter);
        return 1;
    }
    if (filter->wc.masks.in_port.ofp_port) {
        ofp_port_t in_port = filter->flow.in_port.ofp_port;

        if (bsearch(&in_port, target->ports, target->n_ports,
                    sizeof *target->ports, compare_ports)) {
            minimatch_init(&matches[0], filter);
            return 1;
        }
        char *qf = ut_quote(filter_text);
        char *qw = ut_quote(what);
        *msgp = xasprintf("filter \"%s\" matches in_port %"PRIu16", which is "
                          "not %s", qf, ofp_to_u16(in_port), qw);
        free(qf);
        free(qw);
        return 0;
    }
    for (size_t i = 0; i < target->n_ports; i++) {
        struct match match = *filter;

        match_set_in_port(&match, target->ports[i]);
        minimatch_init(&matches[i], &match);
    }
    return target->n_ports;
}

/* Parsing a row. */

/* Parses 'value', the value of options:'key', as an integer between 'min'
 * and 'max', into '*valuep'.  Returns NULL or an error message. */
static char *
parse_option_uint(const char *key, const char *value,
                  unsigned long long int min, unsigned long long int max,
                  unsigned long long int *valuep)
{
    char *q = ut_quote(value);
    char *error = NULL;

    if (!value[0] || value[strspn(value, "0123456789")]) {
        error = xasprintf("options:%s \"%s\" is not a positive integer",
                          key, q);
    } else if (!str_to_ullong(value, 10, valuep)
               || *valuep < min || *valuep > max) {
        error = xasprintf("options:%s \"%s\" is out of range (%llu to %llu)",
                          key, q, min, max);
    }
    free(q);
    return error;
}

/* Parses the "options" column of 'cfg' into 'config' and '*duration_s'.
 * Returns NULL or an error message about the first wrong known option, in
 * alphabetical order.  Unknown keys are ignored: '*warningp' names them. */
static char *
parse_options(const struct ovsrec_upcall_trace *cfg,
              struct uptrace_session_config *config, int64_t *duration_s,
              char **warningp)
{
    const struct smap_node **nodes = smap_sort(&cfg->options);
    size_t n = smap_count(&cfg->options);
    struct ds unknown = DS_EMPTY_INITIALIZER;
    size_t n_unknown = 0;
    bool truncated = false;
    char *error = NULL;

    for (size_t i = 0; i < n && !error; i++) {
        const char *key = nodes[i]->key;
        const char *value = nodes[i]->value;
        unsigned long long int x;

        if (!strcmp(key, "mode")) {
            if (!strcmp(value, "circular")) {
                config->mode = UPTRACE_MODE_CIRCULAR;
            } else if (!strcmp(value, "stop")) {
                config->mode = UPTRACE_MODE_STOP;
            } else {
                char *q = ut_quote(value);
                error = xasprintf("options:mode \"%s\" is not \"circular\" "
                                  "or \"stop\"", q);
                free(q);
            }
        } else if (!strcmp(key, "max-rate")) {
            error = parse_option_uint(key, value, 1, MAX_RATE_MAX, &x);
            config->max_rate = x;
        } else if (!strcmp(key, "max-trace-size")) {
            /* Below the minimum, not even one round would fit whole but
             * for its translation: refused, the error names the minimum. */
            error = parse_option_uint(key, value, UPTRACE_MAX_TRACE_SIZE_MIN,
                                      UPTRACE_MAX_TRACE_SIZE_MAX, &x);
            config->max_trace_size = x;
        } else if (!strcmp(key, "packet-bytes")) {
            error = parse_option_uint(key, value, 0, UPTRACE_PACKET_BYTES_MAX,
                                      &x);
            config->packet_bytes = x;
        } else if (!strcmp(key, "duration")) {
            error = parse_option_uint(key, value, 1, DURATION_MAX_S, &x);
            *duration_s = error ? 0 : x;
        } else if (unknown.length < UT_QUOTE_MAX) {
            char *q = ut_quote(key);
            ds_put_format(&unknown, "%soptions:%s", n_unknown++ ? ", " : "",
                          q);
            free(q);
        } else if (!truncated) {
            ds_put_cstr(&unknown, ", ...");
            truncated = true;
        }
    }
    if (n_unknown) {
        *warningp = xasprintf("%s ignored: not known to this ovs-vswitchd "
                              "(known: duration, max-rate, max-trace-size, "
                              "mode, packet-bytes)", ds_cstr(&unknown));
    }
    ds_destroy(&unknown);
    free(nodes);
    return error;
}

/* Parses 'cfg' into 'config', whose strings then point into 'cfg'.  Returns
 * NULL or an error message. */
char *
ut_parse_row(const struct ovsrec_upcall_trace *cfg,
          struct uptrace_session_config *config, int64_t *duration_s,
          char **warningp)
{
    if (!cfg->name[0]) {
        return xstrdup("name must not be empty");
    }
    if (!cfg->bridge[0]) {
        return xstrdup("bridge is required");
    }
    config->bridge = cfg->bridge;

    if (cfg->port && !cfg->port[0]) {
        return xstrdup("port must not be empty (clear the column to "
                       "trace every port)");
    }
    if (cfg->iface_id && !cfg->iface_id[0]) {
        return xstrdup("iface_id must not be empty (clear the column to "
                       "trace every port)");
    }
    if (cfg->port && cfg->iface_id) {
        return xstrdup("port and iface_id cannot both be set");
    }
    config->filter = cfg->filter;

    if (cfg->n_max_traces) {
        int64_t max_traces = cfg->max_traces[0];

        if (max_traces < UPTRACE_MAX_TRACES_MIN
            || max_traces > UPTRACE_MAX_TRACES_MAX) {
            return xasprintf("max_traces %"PRId64" is out of range "
                             "(%d to %d)", max_traces,
                             UPTRACE_MAX_TRACES_MIN, UPTRACE_MAX_TRACES_MAX);
        }
        config->max_traces = max_traces;
    }

    if (cfg->n_retention) {
        int64_t retention = cfg->retention[0];

        if (retention < 1 || retention > RETENTION_MAX_S) {
            return xasprintf("retention %"PRId64" is out of range "
                             "(1 to %d)", retention, RETENTION_MAX_S);
        }
        config->retention_ms = retention * 1000;
    }

    config->enabled = cfg->n_enabled ? cfg->enabled[0] : true;

    return parse_options(cfg, config, duration_s, warningp);
}

/* Appends 's' (may be NULL) to 'key', unambiguously. */
static void
key_put(struct ds *key, const char *s)
{
    if (s) {
        ds_put_format(key, "%"PRIuSIZE":%s;", strlen(s), s);
    } else {
        ds_put_cstr(key, "-;");
    }
}

/* Returns a string that changes whenever the configuration of 'cfg'
 * changes. */
char *
ut_config_key(const struct ovsrec_upcall_trace *cfg)
{
    struct ds key = DS_EMPTY_INITIALIZER;
    const struct smap_node **nodes = smap_sort(&cfg->options);
    size_t n = smap_count(&cfg->options);

    key_put(&key, cfg->name);
    key_put(&key, cfg->bridge);
    key_put(&key, cfg->port);
    key_put(&key, cfg->iface_id);
    key_put(&key, cfg->filter);
    ds_put_format(&key, "%"PRId64",%"PRId64",%d;",
                  cfg->n_max_traces ? cfg->max_traces[0] : -1,
                  cfg->n_retention ? cfg->retention[0] : -1,
                  cfg->n_enabled ? cfg->enabled[0] : -1);
    for (size_t i = 0; i < n; i++) {
        key_put(&key, nodes[i]->key);
        key_put(&key, nodes[i]->value);
    }
    free(nodes);
    return ds_steal_cstr(&key);
}
