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

/* Tests of the rendering of a round's translation tree
 * (upcall-trace-translation.cc): the layout of ofproto/trace's
 * oftrace_node_print_details(), and the path, from the nodes a capture
 * stored.  The autotest "rounds read as ofproto/trace" compares the same
 * rendering with ofproto/trace itself. */

#include <config.h>

#include <string>

#include <gtest/gtest.h>

#include "upcall-trace-engine.hh"

using namespace uptrace;

namespace {

void
add(Round *round, enum uptrace_node_type type, uint16_t depth,
    const std::string &text)
{
    TranslationNode node;
    node.type = type;
    node.depth = depth;
    node.text_size = text.size();
    round->nodes.push_back(node);
    round->node_text += text;
}

TEST(UpcallTraceTranslationTest, TextOnlyRoundIsItsText)
{
    Round round;
    round.translation = "\nbridge(\"br0\")\n-------------\n";
    round.path = "bridge(\"br0\")\n";
    EXPECT_EQ(round.translation, translation_text(round));
    EXPECT_EQ(round.path, path_text(round));
}

TEST(UpcallTraceTranslationTest, LastTerminalAndNestedNodesIndent)
{
    Round round;
    add(&round, UPTRACE_NODE_BRIDGE, 0, "bridge(\"br0\")");
    add(&round, UPTRACE_NODE_TABLE, 1, " 0. ip,in_port=1, priority 10");
    add(&round, UPTRACE_NODE_ACTION, 2, "ct(table=1,zone=1)");
    add(&round, UPTRACE_NODE_DETAIL, 2, "hello");
    EXPECT_EQ("\n"
              "bridge(\"br0\")\n"
              "-------------\n"
              " 0. ip,in_port=1, priority 10\n"
              "    ct(table=1,zone=1)\n"
              "     -> hello\n",
              translation_text(round));
    EXPECT_EQ("bridge(\"br0\")\n"
              " 0. ip,in_port=1, priority 10\n",
              path_text(round));
}

/* A node with a later sibling, or a terminal one, indents itself by one
 * step and its children by two. */
TEST(UpcallTraceTranslationTest, SiblingsIndentTheirChildren)
{
    Round round;
    add(&round, UPTRACE_NODE_BRIDGE, 0, "bridge(\"br0\")");
    add(&round, UPTRACE_NODE_TABLE, 1, " 0. priority 10");
    add(&round, UPTRACE_NODE_ACTION, 2, "resubmit(,1)");
    add(&round, UPTRACE_NODE_WARN, 2, "careful");
    add(&round, UPTRACE_NODE_TABLE, 1, " 1. priority 0");
    add(&round, UPTRACE_NODE_ERROR, 2, "bad");
    add(&round, UPTRACE_NODE_THAW, 0, "thaw");
    add(&round, UPTRACE_NODE_BUCKET, 1, "bucket 0");
    round.translation = "[marker]\n";
    EXPECT_EQ("\n"
              "    bridge(\"br0\")\n"
              "    -------------\n"
              "             0. priority 10\n"
              "                    resubmit(,1)\n"
              "                     >> careful\n"
              "         1. priority 0\n"
              "             >>>> bad <<<<\n"
              "thaw\n"
              "    bucket 0\n"
              "[marker]\n",
              translation_text(round));
    EXPECT_EQ("bridge(\"br0\")\n"
              " 0. priority 10\n"
              " 1. priority 0\n"
              "thaw\n"
              "bucket 0\n",
              path_text(round));
}

} /* anonymous namespace */
