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

#ifndef UPCALL_TRACE_RULES_H
#define UPCALL_TRACE_RULES_H 1

/* Live upcall tracing: the text of rules, formatted once per rule.
 *
 * Translation tracing formats, for every rule a packet hits, its match
 * (xlate_report_table()) and each of its actions (xlate_trace()): most of
 * the cost of a traced upcall.  That text depends only on the rule, which
 * is immutable while it lives, so live upcall tracing formats it the first
 * time a traced upcall hits the rule, keeps it with the rule's address as
 * key, and forgets it when Open vSwitch frees the rule (rule_dealloc()).
 * Stored rounds keep copies of the text: a deleted rule still reads as it
 * was.  ofproto/trace is unaffected: only translations that live upcall
 * tracing started (upcall_trace_rules_begin()) use the cache.
 *
 * The hooks in ofproto-dpif-xlate.c and ofproto-dpif.c are patches/0008. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ofproto-dpif-trace.h"

struct ds;
struct ofpact;
struct rule_dpif;
struct xlate_in;

/* Marks 'xin', in this thread, as a translation that live upcall tracing
 * traces, until upcall_trace_rules_end(). */
void upcall_trace_rules_begin(const struct xlate_in *);
void upcall_trace_rules_end(void);

/* Hook of xlate_report_table(): if 'xin' is traced by live upcall tracing,
 * appends to 's' the text of 'rule' as ofproto/trace shows it after the
 * table number (match, priority, cookie) and returns true.  Returns false
 * otherwise. */
bool upcall_trace_rules_format_rule(const struct xlate_in *,
                                    const struct rule_dpif *, struct ds *s);

/* Hook of xlate_report_table(): if 'xin' is traced by live upcall tracing,
 * appends 'table_id' to 's' as "%2d. " would, without printf(), and returns
 * true.  Returns false otherwise. */
bool upcall_trace_rules_put_table_id(const struct xlate_in *,
                                     uint8_t table_id, struct ds *s);

/* Hook of xlate_trace(): if 'xin' is traced by live upcall tracing and 'a'
 * is one of the actions of 'rule', reports 'a' in xin->trace as
 * xlate_trace() does and returns true.  Returns false otherwise. */
bool upcall_trace_rules_report_action(const struct xlate_in *,
                                      const struct rule_dpif *,
                                      const struct ofpact *a);

/* Hook of xlate_report(), for a traced translation (xin->trace nonnull):
 * reports the text of 'format' and 'args' in xin->trace as a node of type
 * 'type' and returns the node's list of subnodes, as xlate_report() does.
 * If live upcall tracing traces 'xin', the text is formatted in one pass for
 * the literal text and the plain conversions most reports use (%s, %d, %u,
 * %x and their 'l' and 'z' forms; vsnprintf() otherwise) into a buffer of
 * this thread, not allocated.
 *
 * Out of line, so that xlate_report(), called several times by every
 * translation, traced or not, stays as small as Open vSwitch has it. */
struct ovs_list *upcall_trace_rules_report(struct xlate_in *,
                                           enum oftrace_node_type,
                                           const char *format, va_list args);

/* Hook of rule_dealloc(): forgets the text of 'rule'. */
void upcall_trace_rules_forget(const struct rule_dpif *);

/* Forgets the text of every rule: when no session captures, nothing
 * should be held for tracing. */
void upcall_trace_rules_clear(void);

/* The number of rules whose text is kept, and the bytes that takes. */
void upcall_trace_rules_get_usage(size_t *n_rules, size_t *bytes);

#endif /* upcall-trace-rules.h */
