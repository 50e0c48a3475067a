# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Fixtures of the kernel datapath's own tests (tests/kernel/test_*.py).

They run as root in the kernel tier's QEMU guest ("make check-kernel",
tests/kernel/guest-tier), on the topology of the system tier
(tests/system/system_ovs.py) with datapath_type=system: real packets
through the openvswitch module and the kernel's conntrack.  Elsewhere they
skip, saying why (no openvswitch module)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "system"))
import system_ovs  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    system_ovs.terminal_summary(terminalreporter)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    system_ovs.add_vswitchd_log(item, outcome.get_result())


@pytest.fixture
def kovs(request):
    """A SystemOvs on the kernel datapath (system@ovs-system), set up, with
    permanent neighbour entries in both namespaces (no ARP: the datapath
    flows depend only on the packets a test sends); torn down completely at
    the end."""
    for ovs in system_ovs.sysovs_fixture(request, "system"):
        ovs.static_neighbours()
        yield ovs
