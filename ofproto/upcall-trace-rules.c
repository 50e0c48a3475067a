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

#include "upcall-trace-rules.h"

#include <string.h>

#include "cmap.h"
#include "hash.h"
#include "ofproto-dpif.h"
#include "ofproto-dpif-trace.h"
#include "ofproto-dpif-xlate.h"
#include "ofproto-provider.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-actions.h"
#include "openvswitch/ofp-port.h"
#include "ovs-atomic.h"
#include "ovs-rcu.h"
#include "ovs-thread.h"
#include "util.h"

/* The text of one rule.
 *
 * 'match' is immutable once the entry is in 'rules'.  The actions' texts
 * are added as traced upcalls meet them, under 'mutex', and never change or
 * go before the entry does. */
struct rule_text {
    struct cmap_node cmap_node;         /* In 'rules', by rule address. */
    const struct rule_dpif *rule;
    char *match;                        /* "MATCH, priority N[, cookie C]". */

    struct ovs_mutex mutex;
    struct action_text *actions OVS_GUARDED;
    size_t n_actions OVS_GUARDED;
    size_t allocated_actions OVS_GUARDED;
};

/* The text of the action at 'offset' bytes into a rule's actions. */
struct action_text {
    size_t offset;
    char *text;
};

/* Readers (capture threads) are lock-free; 'mutex' serializes writers. */
static struct ovs_mutex mutex = OVS_MUTEX_INITIALIZER;
static struct cmap rules = CMAP_INITIALIZER;
static atomic_size_t n_rules = 0;
static atomic_size_t n_bytes = 0;

DEFINE_STATIC_PER_THREAD_DATA(const struct xlate_in *, traced_xin, NULL);

void
upcall_trace_rules_begin(const struct xlate_in *xin)
{
    *traced_xin_get() = xin;
}

void
upcall_trace_rules_end(void)
{
    *traced_xin_get() = NULL;
}

static bool
is_traced(const struct xlate_in *xin)
{
    return xin->trace && !xin->names && *traced_xin_get() == xin;
}

static uint32_t
hash_rule(const struct rule_dpif *rule)
{
    return hash_pointer(rule, 0);
}

static struct rule_text *
find(const struct rule_dpif *rule)
{
    struct rule_text *rt;

    CMAP_FOR_EACH_WITH_HASH (rt, cmap_node, hash_rule(rule), &rules) {
        if (rt->rule == rule) {
            return rt;
        }
    }
    return NULL;
}

static void
rule_text_free(struct rule_text *rt)
{
    for (size_t i = 0; i < rt->n_actions; i++) {
        free(rt->actions[i].text);
    }
    free(rt->actions);
    free(rt->match);
    ovs_mutex_destroy(&rt->mutex);
    free(rt);
}

static void
account(ptrdiff_t rules_delta, ptrdiff_t bytes_delta)
{
    size_t orig;

    atomic_add_relaxed(&n_rules, (size_t) rules_delta, &orig);
    atomic_add_relaxed(&n_bytes, (size_t) bytes_delta, &orig);
}

/* Returns the text of 'rule', formatting it and keeping it if this is the
 * first time. */
static struct rule_text *
get(const struct xlate_in *xin, const struct rule_dpif *rule)
{
    struct rule_text *rt = find(rule);

    if (OVS_LIKELY(rt)) {
        return rt;
    }

    /* As xlate_report_table() formats it, with no port names (live upcall
     * tracing numbers ports). */
    struct ofputil_port_map map = OFPUTIL_PORT_MAP_INITIALIZER(&map);
    struct ds s = DS_EMPTY_INITIALIZER;

    minimatch_format(&rule->up.cr.match,
                     ofproto_get_tun_tab(&xin->ofproto->up),
                     &map, &s, OFP_DEFAULT_PRIORITY);
    /* xlate_report_table() formats after "%2d. ": a catch-all match adds
     * nothing, and no separator follows. */
    if (s.length && ds_last(&s) != ' ') {
        ds_put_cstr(&s, ", ");
    }
    ds_put_format(&s, "priority %d", rule->up.cr.priority);
    if (rule->up.flow_cookie) {
        ds_put_format(&s, ", cookie %#"PRIx64, ntohll(rule->up.flow_cookie));
    }
    ofputil_port_map_destroy(&map);

    struct rule_text *fresh = xzalloc(sizeof *fresh);
    fresh->rule = rule;
    fresh->match = ds_steal_cstr(&s);
    ovs_mutex_init(&fresh->mutex);

    ovs_mutex_lock(&mutex);
    rt = find(rule);
    if (!rt) {
        cmap_insert(&rules, &fresh->cmap_node, hash_rule(rule));
        account(1, sizeof *fresh + strlen(fresh->match) + 1);
        rt = fresh;
        fresh = NULL;
    }
    ovs_mutex_unlock(&mutex);

    if (fresh) {
        /* Another thread was first. */
        rule_text_free(fresh);
    }
    return rt;
}

bool
upcall_trace_rules_format_rule(const struct xlate_in *xin,
                               const struct rule_dpif *rule, struct ds *s)
{
    if (!is_traced(xin)) {
        return false;
    }
    ds_put_cstr(s, get(xin, rule)->match);
    return true;
}

bool
upcall_trace_rules_put_table_id(const struct xlate_in *xin, uint8_t table_id,
                                struct ds *s)
{
    if (!is_traced(xin)) {
        return false;
    }
    /* The rule's text follows: one allocation for the line, not one for the
     * number and another as the text grows it. */
    ds_reserve(s, s->length + 255);
    if (table_id < 10) {
        ds_put_char(s, ' ');
    }
    if (table_id >= 100) {
        ds_put_char(s, '0' + table_id / 100);
    }
    if (table_id >= 10) {
        ds_put_char(s, '0' + table_id / 10 % 10);
    }
    ds_put_char(s, '0' + table_id % 10);
    ds_put_cstr(s, ". ");
    return true;
}

bool
upcall_trace_rules_report_action(const struct xlate_in *xin,
                                 const struct rule_dpif *rule,
                                 const struct ofpact *a)
{
    if (!rule || !is_traced(xin)) {
        return false;
    }

    const struct rule_actions *actions = rule_get_actions(&rule->up);
    const char *start = (const char *) actions->ofpacts;
    const char *p = (const char *) a;
    if (p < start || p >= start + actions->ofpacts_len) {
        /* Not one of the rule's own actions (a frozen state's, a group
         * bucket's...): xlate_trace() formats it. */
        return false;
    }
    size_t offset = p - start;

    struct rule_text *rt = get(xin, rule);
    struct action_text *at = NULL;

    ovs_mutex_lock(&rt->mutex);
    for (size_t i = 0; i < rt->n_actions; i++) {
        if (rt->actions[i].offset == offset) {
            at = &rt->actions[i];
            break;
        }
    }
    if (!at) {
        /* As xlate_trace() formats it, with no port names. */
        struct ofputil_port_map map = OFPUTIL_PORT_MAP_INITIALIZER(&map);
        struct ds s = DS_EMPTY_INITIALIZER;
        struct ofpact_format_params fp = { .s = &s, .port_map = &map };

        ofpacts_format(a, OFPACT_ALIGN(a->len), &fp);
        ofputil_port_map_destroy(&map);

        if (rt->n_actions >= rt->allocated_actions) {
            size_t old = rt->allocated_actions;
            rt->actions = x2nrealloc(rt->actions, &rt->allocated_actions,
                                     sizeof *rt->actions);
            account(0, (rt->allocated_actions - old) * sizeof *rt->actions);
        }
        at = &rt->actions[rt->n_actions++];
        at->offset = offset;
        at->text = ds_steal_cstr(&s);
        account(0, strlen(at->text) + 1);
    }
    oftrace_report(xin->trace, OFT_ACTION, at->text);
    ovs_mutex_unlock(&rt->mutex);
    return true;
}

/* Appends to 's' what the plain conversions of 'format' make of 'args', as
 * vsnprintf() would.  Returns false, leaving 's' and 'args' in an unknown
 * state, at the first conversion that is not plain. */
static bool
format_plain(struct ds *s, const char *format, va_list args)
{
    const char *p = format;

    for (;;) {
        const char *pct = strchr(p, '%');

        if (!pct) {
            ds_put_cstr(s, p);
            return true;
        }
        ds_put_buffer(s, p, pct - p);
        p = pct + 1;

        char size = 0;
        if (*p == 'l' || *p == 'z') {
            size = *p++;
        }

        char buf[32];
        switch (*p++) {
        case '%':
            if (size) {
                return false;
            }
            ds_put_char(s, '%');
            break;
        case 's': {
            if (size) {
                return false;
            }
            const char *arg = va_arg(args, const char *);
            ds_put_cstr(s, arg ? arg : "(null)");
            break;
        }
        case 'd':
        case 'u':
        case 'x': {
            unsigned long long int arg;
            bool negative = false;

            if (p[-1] == 'd') {
                long long int value;

                if (size == 'z') {
                    return false;
                }
                value = (size == 'l'
                         ? va_arg(args, long int) : va_arg(args, int));
                negative = value < 0;
                arg = negative ? -(unsigned long long int) value : value;
            } else if (size == 'l') {
                arg = va_arg(args, unsigned long int);
            } else if (size == 'z') {
                arg = va_arg(args, size_t);
            } else {
                arg = va_arg(args, unsigned int);
            }

            /* By hand: snprintf() is most of the cost of a report. */
            int base = p[-1] == 'x' ? 16 : 10;
            char *end = &buf[sizeof buf];
            char *q = end;
            do {
                *--q = "0123456789abcdef"[arg % base];
                arg /= base;
            } while (arg);
            if (negative) {
                *--q = '-';
            }
            ds_put_buffer(s, q, end - q);
            break;
        }
        default:
            return false;
        }
    }
}

/* Each thread formats its reports in the same buffer: oftrace_report()
 * copies the text into its node, so a report allocates nothing here.  The
 * buffer is found through a thread-local pointer, a few instructions where
 * ovsthread_getspecific() takes tens, and freed by the key's destructor
 * when the thread exits. */
static ovsthread_key_t report_buf_key;
DEFINE_STATIC_PER_THREAD_DATA(struct ds *, report_buf_ptr, NULL);

static void
report_buf_destroy(void *buf_)
{
    struct ds *buf = buf_;

    ds_destroy(buf);
    free(buf);
}

static struct ds *
report_buf(void)
{
    struct ds **bufp = report_buf_ptr_get();

    if (OVS_UNLIKELY(!*bufp)) {
        static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

        if (ovsthread_once_start(&once)) {
            ovsthread_key_create(&report_buf_key, report_buf_destroy);
            ovsthread_once_done(&once);
        }
        *bufp = xmalloc(sizeof **bufp);
        ds_init(*bufp);
        ds_reserve(*bufp, 255);
        ovsthread_setspecific(report_buf_key, *bufp);
    }
    ds_clear(*bufp);
    return *bufp;
}

/* The text of 'format' and 'args' if 'xin' is traced by live upcall
 * tracing, in a buffer of this thread that the next call reuses, otherwise
 * NULL, without reading 'args'. */
static const char *
format_report(const struct xlate_in *xin, const char *format, va_list args)
{
    if (!is_traced(xin)) {
        return NULL;
    }

    struct ds *s = report_buf();
    va_list copy;

    va_copy(copy, args);
    if (!format_plain(s, format, copy)) {
        ds_clear(s);
        ds_put_format_valist(s, format, args);
    }
    va_end(copy);
    return ds_cstr(s);
}

struct ovs_list *
upcall_trace_rules_report(struct xlate_in *xin, enum oftrace_node_type type,
                          const char *format, va_list args)
{
    const char *traced = format_report(xin, format, args);
    char *text = traced ? NULL : xvasprintf(format, args);
    struct oftrace_node *node = oftrace_report(xin->trace, type,
                                               traced ? traced : text);

    free(text);
    return &node->subs;
}

/* Removes 'rt' from 'rules' and frees it once no thread can see it. */
static void
remove_locked(struct rule_text *rt)
    OVS_REQUIRES(mutex)
{
    size_t bytes = sizeof *rt + strlen(rt->match) + 1;

    ovs_mutex_lock(&rt->mutex);
    bytes += rt->allocated_actions * sizeof *rt->actions;
    for (size_t i = 0; i < rt->n_actions; i++) {
        bytes += strlen(rt->actions[i].text) + 1;
    }
    ovs_mutex_unlock(&rt->mutex);

    cmap_remove(&rules, &rt->cmap_node, hash_rule(rt->rule));
    account(-1, -(ptrdiff_t) bytes);
    ovsrcu_postpone(rule_text_free, rt);
}

void
upcall_trace_rules_forget(const struct rule_dpif *rule)
{
    size_t n;

    atomic_read_relaxed(&n_rules, &n);
    if (OVS_LIKELY(!n)) {
        return;
    }

    ovs_mutex_lock(&mutex);
    struct rule_text *rt = find(rule);
    if (rt) {
        remove_locked(rt);
    }
    ovs_mutex_unlock(&mutex);
}

void
upcall_trace_rules_clear(void)
{
    struct rule_text *rt;

    ovs_mutex_lock(&mutex);
    CMAP_FOR_EACH (rt, cmap_node, &rules) {
        remove_locked(rt);
    }
    ovs_mutex_unlock(&mutex);
}

void
upcall_trace_rules_get_usage(size_t *n_rulesp, size_t *bytesp)
{
    atomic_read_relaxed(&n_rules, n_rulesp);
    atomic_read_relaxed(&n_bytes, bytesp);
}
