# Live upcall tracing: the build of our files inside the Open vSwitch tree.
#
# build-aux/prepare-ovs-tree links this file to the top of the Open vSwitch
# tree, and patches/0001 includes it from Open vSwitch's Makefile.am, after
# every other fragment, so it can add to their variables.

# C++ for the engine.  Open vSwitch's warning flags only go to AM_CFLAGS.
AM_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -fno-strict-aliasing

# The engine, behind its pure C header, and the C shim that connects it to
# the upcall path.  The shim's filter index and blob formatter are modules of
# their own, which need only lib/, so that the benchmarks can use them.
# The engine's files are listed in ofproto/upcall-trace-engine.cc.
UPCALL_TRACE_ENGINE_SOURCES = \
	ofproto/upcall-trace-engine.cc \
	ofproto/upcall-trace-engine-read.cc \
	ofproto/upcall-trace-engine-render.cc \
	ofproto/upcall-trace-engine-render-json.cc \
	ofproto/upcall-trace-expectations.cc \
	ofproto/upcall-trace-flows.cc \
	ofproto/upcall-trace-registry.cc \
	ofproto/upcall-trace-round.cc \
	ofproto/upcall-trace-session.cc \
	ofproto/upcall-trace-translation.cc \
	ofproto/upcall-trace-truncate.cc
UPCALL_TRACE_ENGINE_HDRS = \
	ofproto/upcall-trace-engine.hh \
	ofproto/upcall-trace-engine-render.hh \
	ofproto/upcall-trace-engine-util.hh \
	ofproto/upcall-trace-expectations.hh \
	ofproto/upcall-trace-flows.hh \
	ofproto/upcall-trace-registry.hh \
	ofproto/upcall-trace-session.hh
ofproto_libofproto_la_SOURCES += \
	ofproto/upcall-trace.h \
	$(UPCALL_TRACE_ENGINE_SOURCES) \
	$(UPCALL_TRACE_ENGINE_HDRS) \
	ofproto/upcall-trace-blob.c \
	ofproto/upcall-trace-blob.h \
	ofproto/upcall-trace-grouping.c \
	ofproto/upcall-trace-grouping.h \
	ofproto/upcall-trace-index.c \
	ofproto/upcall-trace-index.h \
	ofproto/upcall-trace-nodes.c \
	ofproto/upcall-trace-nodes.h \
	ofproto/upcall-trace-purge.c \
	ofproto/upcall-trace-revalidate.c \
	ofproto/upcall-trace-unixctl.c \
	ofproto/upcall-trace-unixctl.h \
	ofproto/upcall-trace-purge.h \
	ofproto/upcall-trace-rules.c \
	ofproto/upcall-trace-rules.h \
	ofproto/upcall-trace-tunnel.c \
	ofproto/upcall-trace-tunnel.h \
	ofproto/ofproto-dpif-upcall-trace.c \
	ofproto/ofproto-dpif-upcall-trace.h

# Documentation: the ovs-vswitchd(8) section (patches/0007 includes it) and
# the topic document (listed in Documentation/topics/index.rst).
MAN_FRAGMENTS += ofproto/upcall-trace-unixctl.man
DOC_SOURCE += Documentation/topics/upcall-tracing.rst

# The Upcall_Trace table: reconciliation into the engine and status.
vswitchd_ovs_vswitchd_SOURCES += \
	vswitchd/upcall-trace-config.c \
	vswitchd/upcall-trace-config.h \
	vswitchd/upcall-trace-row.h \
	vswitchd/upcall-trace-status.c \
	vswitchd/upcall-trace-target.c \
	vswitchd/upcall-trace-target.h

# libofproto now holds C++ objects: programs that link it must be linked by
# the C++ compiler driver.  Automake picks the linker from a program's own
# sources, so give each of them a C++ source that is never built.
nodist_EXTRA_vswitchd_ovs_vswitchd_SOURCES = dummy.cxx
nodist_EXTRA_utilities_ovs_ofctl_SOURCES = dummy.cxx

# Unit tests, built and run by "make check-upcall-trace-unit": one GoogleTest
# program per engine source file, a C program that proves
# ofproto/upcall-trace.h is C, and one C program per module of the shim that
# needs only lib/ (the filter index, the blob formatter, grouping, the
# translation tree's arena).  The engine is compiled again, once, into a
# convenience library that every engine test links, so that the sanitizer
# build (UPCALL_TRACE_SANITIZE) can instrument it.
UPCALL_TRACE_GTEST_LIBS = -lgmock -lgtest -lgtest_main -lpthread
UPCALL_TRACE_ENGINE_GTESTS = \
	tests/upcall-trace-engine-test \
	tests/upcall-trace-engine-read-test \
	tests/upcall-trace-engine-render-test \
	tests/upcall-trace-engine-render-json-test \
	tests/upcall-trace-expectations-test \
	tests/upcall-trace-flows-test \
	tests/upcall-trace-registry-test \
	tests/upcall-trace-round-test \
	tests/upcall-trace-session-test \
	tests/upcall-trace-translation-test \
	tests/upcall-trace-truncate-test
UPCALL_TRACE_UNIT_TESTS = \
	$(UPCALL_TRACE_ENGINE_GTESTS) \
	tests/upcall-trace-header-test \
	tests/upcall-trace-index-test \
	tests/upcall-trace-blob-test \
	tests/upcall-trace-grouping-test \
	tests/upcall-trace-nodes-test
EXTRA_PROGRAMS += $(UPCALL_TRACE_UNIT_TESTS)
CLEANFILES += $(UPCALL_TRACE_UNIT_TESTS)
UPCALL_TRACE_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/ofproto
UPCALL_TRACE_TEST_CXXFLAGS = $(AM_CXXFLAGS) $(UPCALL_TRACE_SANITIZE)

EXTRA_LTLIBRARIES = tests/libupcall-trace-engine-test.la
CLEANFILES += tests/libupcall-trace-engine-test.la
tests_libupcall_trace_engine_test_la_SOURCES = \
	$(UPCALL_TRACE_ENGINE_SOURCES) $(UPCALL_TRACE_ENGINE_HDRS)
tests_libupcall_trace_engine_test_la_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_libupcall_trace_engine_test_la_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
UPCALL_TRACE_ENGINE_TEST_LIBS = tests/libupcall-trace-engine-test.la \
	lib/libopenvswitch.la

tests_upcall_trace_engine_test_SOURCES = \
	tests/upcall-trace-engine-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_engine_read_test_SOURCES = \
	tests/upcall-trace-engine-read-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_engine_render_test_SOURCES = \
	tests/upcall-trace-engine-render-test.cc \
	tests/upcall-trace-engine-render-test.hh
tests_upcall_trace_engine_render_json_test_SOURCES = \
	tests/upcall-trace-engine-render-json-test.cc \
	tests/upcall-trace-engine-render-test.hh
tests_upcall_trace_expectations_test_SOURCES = \
	tests/upcall-trace-expectations-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_flows_test_SOURCES = \
	tests/upcall-trace-flows-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_registry_test_SOURCES = \
	tests/upcall-trace-registry-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_round_test_SOURCES = \
	tests/upcall-trace-round-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_session_test_SOURCES = \
	tests/upcall-trace-session-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_truncate_test_SOURCES = \
	tests/upcall-trace-truncate-test.cc tests/upcall-trace-engine-test.hh
tests_upcall_trace_translation_test_SOURCES = \
	tests/upcall-trace-translation-test.cc
tests_upcall_trace_engine_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_engine_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_engine_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_engine_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_engine_read_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_engine_read_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_engine_read_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_engine_read_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_engine_render_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_engine_render_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_engine_render_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_engine_render_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_engine_render_json_test_CPPFLAGS = \
	$(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_engine_render_json_test_CXXFLAGS = \
	$(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_engine_render_json_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_engine_render_json_test_LDADD = \
	$(UPCALL_TRACE_ENGINE_TEST_LIBS) $(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_expectations_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_expectations_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_expectations_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_expectations_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_flows_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_flows_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_flows_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_flows_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_registry_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_registry_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_registry_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_registry_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_round_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_round_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_round_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_round_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_session_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_session_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_session_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_session_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_truncate_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_truncate_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_truncate_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_truncate_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS) \
	$(UPCALL_TRACE_GTEST_LIBS)
tests_upcall_trace_translation_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_translation_test_CXXFLAGS = $(UPCALL_TRACE_TEST_CXXFLAGS)
tests_upcall_trace_translation_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_translation_test_LDADD = \
	$(UPCALL_TRACE_ENGINE_TEST_LIBS) $(UPCALL_TRACE_GTEST_LIBS)

tests_upcall_trace_header_test_SOURCES = tests/upcall-trace-header-test.c
nodist_EXTRA_tests_upcall_trace_header_test_SOURCES = dummy.cxx
tests_upcall_trace_header_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_header_test_CFLAGS = $(AM_CFLAGS) -std=gnu99 \
	$(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_header_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_header_test_LDADD = $(UPCALL_TRACE_ENGINE_TEST_LIBS)

# The index test stands in for the engine's session reference counting.
tests_upcall_trace_index_test_SOURCES = \
	tests/upcall-trace-index-test.c \
	ofproto/upcall-trace-index.c \
	ofproto/upcall-trace-index.h
tests_upcall_trace_index_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_index_test_CFLAGS = $(AM_CFLAGS) $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_index_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_index_test_LDADD = lib/libopenvswitch.la

tests_upcall_trace_blob_test_SOURCES = \
	tests/upcall-trace-blob-test.c \
	ofproto/upcall-trace-blob.c \
	ofproto/upcall-trace-blob.h
tests_upcall_trace_blob_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_blob_test_CFLAGS = $(AM_CFLAGS) $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_blob_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_blob_test_LDADD = lib/libopenvswitch.la

tests_upcall_trace_nodes_test_SOURCES = \
	tests/upcall-trace-nodes-test.c \
	ofproto/upcall-trace-nodes.c \
	ofproto/upcall-trace-nodes.h
tests_upcall_trace_nodes_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_nodes_test_CFLAGS = $(AM_CFLAGS) $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_nodes_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_nodes_test_LDADD = lib/libopenvswitch.la

# The grouping test stands in for the engine's expectations.
tests_upcall_trace_grouping_test_SOURCES = \
	tests/upcall-trace-grouping-test.c \
	ofproto/upcall-trace-grouping.c \
	ofproto/upcall-trace-grouping.h
tests_upcall_trace_grouping_test_CPPFLAGS = $(UPCALL_TRACE_TEST_CPPFLAGS)
tests_upcall_trace_grouping_test_CFLAGS = $(AM_CFLAGS) \
	$(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_grouping_test_LDFLAGS = $(UPCALL_TRACE_SANITIZE)
tests_upcall_trace_grouping_test_LDADD = lib/libopenvswitch.la

check-upcall-trace-unit: $(UPCALL_TRACE_UNIT_TESTS) check-upcall-trace-clang
	@set -e; for t in $(UPCALL_TRACE_UNIT_TESTS); do \
	    echo "== $$t"; ./$$t; \
	done

# GCC ignores the thread-safety annotations (OVS_GUARDED_BY, OVS_ACQUIRES,
# ...) of the engine; clang checks them.
UPCALL_TRACE_CLANGXX = clang++
check-upcall-trace-clang:
	@echo "== clang++ -Wthread-safety $(UPCALL_TRACE_ENGINE_SOURCES)"
	@set -e; for f in $(UPCALL_TRACE_ENGINE_SOURCES); do \
	    $(UPCALL_TRACE_CLANGXX) -fsyntax-only -std=c++17 -Wall -Wextra \
	        -Werror -Wthread-safety -Wno-unused-parameter \
	        -Wno-missing-field-initializers $(DEFS) $(DEFAULT_INCLUDES) \
	        $(INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) -I$(srcdir)/ofproto \
	        $(srcdir)/$$f; \
	done

# Autotest suite of our own, on top of Open vSwitch's macros: it includes
# tests/ovs-macros.at, tests/ofproto-macros.at, ... from this tree.
UPCALL_TRACE_TESTSUITE_AT = \
	tests/upcall-trace-testsuite.at \
	$(wildcard $(srcdir)/tests/upcall-trace-*.at)
UPCALL_TRACE_TESTSUITE = $(srcdir)/tests/upcall-trace-testsuite
$(UPCALL_TRACE_TESTSUITE): package.m4 $(UPCALL_TRACE_TESTSUITE_AT) \
		$(COMMON_MACROS_AT)
	$(AM_V_GEN)$(AUTOTEST) -I '$(srcdir)' -o $@.tmp $@.at && mv $@.tmp $@
CLEANFILES += $(UPCALL_TRACE_TESTSUITE)

check-upcall-trace-autotest: all tests/ovstest tests/atlocal \
		$(UPCALL_TRACE_TESTSUITE)
	$(SHELL) '$(UPCALL_TRACE_TESTSUITE)' -C tests \
	    AUTOTEST_PATH='$(AUTOTEST_PATH)' $(TESTSUITEFLAGS)

# The sanitizer build of the unit tests (make check-asan at the top) must not
# reuse objects built without it, nor leave its own behind.
clean-upcall-trace-unit:
	rm -f $(UPCALL_TRACE_UNIT_TESTS) */tests_upcall_trace_*.o \
	    tests/libupcall-trace-engine-test.la \
	    */tests_libupcall_trace_engine_test_la-*.lo \
	    */tests_libupcall_trace_engine_test_la-*.o
	rm -rf tests/.libs/libupcall-trace-engine-test.* \
	    */.libs/tests_libupcall_trace_engine_test_la-*

# Benchmarks.
#
# The engine's micro-benchmarks (Google Benchmark, Debian libbenchmark-dev),
# built only on request by "make tests/upcall-trace-engine-bench" and run by
# "make bench" at the top (tests/bench/run-bench), never by "make check".
# tests/bench/run-bench links the sources from our tests/bench/ into tests/
# before building.  The engine is compiled into the program, as in the unit
# tests, and so are the shim's filter index and blob formatter, which are
# what the benchmarks measure; upcall-trace-bench-ovs.c holds the rest of the
# C side (flows, datapath actions, filters).
UPCALL_TRACE_BENCHMARKS = tests/upcall-trace-engine-bench
EXTRA_PROGRAMS += $(UPCALL_TRACE_BENCHMARKS)
CLEANFILES += $(UPCALL_TRACE_BENCHMARKS)
tests_upcall_trace_engine_bench_SOURCES = \
	tests/upcall-trace-engine-bench.cc \
	tests/upcall-trace-bench-ovs.c \
	tests/upcall-trace-bench-ovs.h \
	ofproto/upcall-trace-blob.c \
	ofproto/upcall-trace-blob.h \
	ofproto/upcall-trace-index.c \
	ofproto/upcall-trace-index.h \
	$(UPCALL_TRACE_ENGINE_SOURCES)
tests_upcall_trace_engine_bench_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(srcdir)/ofproto -I$(srcdir)/tests
tests_upcall_trace_engine_bench_CXXFLAGS = $(AM_CXXFLAGS) -O2
tests_upcall_trace_engine_bench_LDADD = lib/libopenvswitch.la \
	-lbenchmark -lpthread

# ---------------------------------------------------------------------------
# ovs-upcall-trace(8): the command-line tool (a Python 3 script that uses the
# Open vSwitch Python library) and its manual.  The script is generated from
# utilities/ovs-upcall-trace.in by Open vSwitch's own ".in" rule, as
# ovs-tcpdump is: it learns @PYTHON3@, the build tree (@abs_builddir@), whose
# Python library it uses when run from there, and @pkgdatadir@, where
# "make install" puts that library for the installed script.  The manual is
# checked by "manpage-check" with the others; the script by flake8 when it
# is present.  Its output (JSON, text, tables, pcapng) is a module of its
# own, python/ovs_upcall_trace_output.py, which the script imports from
# where it finds the Open vSwitch Python library: the build tree's python/
# (the module is linked there) or, installed, $(pkgdatadir)/python.
bin_SCRIPTS += utilities/ovs-upcall-trace
CLEANFILES += utilities/ovs-upcall-trace
dist_man_MANS += utilities/ovs-upcall-trace.8
EXTRA_DIST += utilities/ovs-upcall-trace.in
FLAKE8_PYFILES += utilities/ovs-upcall-trace.in
upcalltracepythondir = $(pkgdatadir)/python
dist_upcalltracepython_DATA = python/ovs_upcall_trace_output.py
FLAKE8_PYFILES += python/ovs_upcall_trace_output.py
