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

#include <string>
#include <vector>

#include "upcall-trace-engine.hh"

/* Rendering a round's translation tree, when it is read.
 *
 * A capture thread only copies the nodes of the tree that the translation
 * built (uptrace_round_add_node()), in depth-first order with their
 * depths.  Here they become the text that ofproto/trace prints for the same
 * tree, byte for byte: this is oftrace_node_print_details() of
 * ofproto/ofproto-dpif-trace.c, on the flattened tree. */

namespace uptrace {

namespace {

bool
is_terminal(uint8_t type)
{
    switch (type) {
    case UPTRACE_NODE_ACTION:
    case UPTRACE_NODE_DETAIL:
    case UPTRACE_NODE_WARN:
    case UPTRACE_NODE_ERROR:
    case UPTRACE_NODE_BUCKET:
        return true;
    default:
        return false;
    }
}

} /* anonymous namespace */

std::string
translation_text(const Round &round)
{
    const std::vector<TranslationNode> &nodes = round.nodes;
    if (nodes.empty()) {
        return round.translation;
    }

    /* Whether each node has a later sibling: a later node at the same depth
     * before any shallower one. */
    std::vector<bool> has_next(nodes.size(), false);
    std::vector<size_t> last_at_depth;     /* Index + 1, 0 for none. */
    for (size_t i = 0; i < nodes.size(); i++) {
        size_t depth = nodes[i].depth;
        if (last_at_depth.size() < depth + 1) {
            last_at_depth.resize(depth + 1, 0);
        }
        if (last_at_depth[depth]) {
            has_next[last_at_depth[depth] - 1] = true;
        }
        last_at_depth[depth] = i + 1;
        /* Deeper nodes belong to earlier subtrees: none is our sibling. */
        last_at_depth.resize(depth + 1);
    }

    std::string s;
    s.reserve(round.node_text.size() + nodes.size() * 16
              + round.translation.size());
    std::vector<size_t> levels(1, 0);   /* Print level of each depth. */
    size_t offset = 0;
    for (size_t i = 0; i < nodes.size(); i++) {
        const TranslationNode &node = nodes[i];
        const char *text = round.node_text.data() + offset;
        size_t size = node.text_size;
        offset += size;

        size_t depth = node.depth;
        if (levels.size() < depth + 1) {
            /* A node deeper than its parent's child: cannot happen, but
             * print it rather than fail. */
            levels.resize(depth + 1, levels.back());
        }
        size_t level = levels[depth];

        if (node.type == UPTRACE_NODE_BRIDGE) {
            s += '\n';
        }
        size_t more = has_next[i] || is_terminal(node.type);
        s.append((level + more) * 4, ' ');
        switch (node.type) {
        case UPTRACE_NODE_DETAIL:
            s += " -> ";
            s.append(text, size);
            s += '\n';
            break;
        case UPTRACE_NODE_WARN:
            s += " >> ";
            s.append(text, size);
            s += '\n';
            break;
        case UPTRACE_NODE_ERROR:
            s += " >>>> ";
            s.append(text, size);
            s += " <<<<\n";
            break;
        case UPTRACE_NODE_BRIDGE:
            s.append(text, size);
            s += '\n';
            s.append((level + more) * 4, ' ');
            s.append(size, '-');
            s += '\n';
            break;
        default:
            s.append(text, size);
            s += '\n';
            break;
        }

        levels.resize(depth + 2);
        levels[depth + 1] = level + 2 * more;
    }
    s += round.translation;
    return s;
}

std::string
path_text(const Round &round)
{
    if (round.nodes.empty()) {
        return round.path;
    }

    std::string s;
    size_t offset = 0;
    for (const TranslationNode &node : round.nodes) {
        switch (node.type) {
        case UPTRACE_NODE_BRIDGE:
        case UPTRACE_NODE_TABLE:
        case UPTRACE_NODE_THAW:
        case UPTRACE_NODE_BUCKET:
            s.append(round.node_text, offset, node.text_size);
            s += '\n';
            break;
        default:
            break;
        }
        offset += node.text_size;
    }
    return s;
}

} /* namespace uptrace */
