# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Fixtures of the system tier (root): see system_ovs.py."""

import pytest

import system_ovs
from system_ovs import selected_datapaths


def pytest_generate_tests(metafunc):
    # Every test that uses 'sysovs' runs once per selected datapath type.
    if "sysovs" in metafunc.fixturenames:
        metafunc.parametrize("datapath", selected_datapaths())


def pytest_terminal_summary(terminalreporter):
    system_ovs.terminal_summary(terminalreporter)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    system_ovs.add_vswitchd_log(item, outcome.get_result())


@pytest.fixture
def sysovs(request, datapath):
    """A SystemOvs on 'datapath', set up; torn down completely at the end."""
    yield from system_ovs.sysovs_fixture(request, datapath)
