# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Fixtures of the system tier (root): see system_ovs.py."""

import os

import pytest

from system_ovs import Cleanup, SystemOvs, missing_tools


@pytest.fixture
def sysovs():
    """A SystemOvs, set up; torn down completely at the end."""
    if os.geteuid() != 0:
        pytest.skip("the system tier needs root (namespaces, veths)")
    builddir = os.environ.get("OVS_BUILDDIR")
    if not builddir or not os.path.isfile(
            os.path.join(builddir, "vswitchd", "ovs-vswitchd")):
        pytest.skip("OVS_BUILDDIR (an Open vSwitch build) is not set")
    missing = missing_tools()
    if missing:
        pytest.skip("missing tools: %s (build-aux/install-deps test)"
                    % " ".join(missing))
    cleanup = Cleanup()
    try:
        yield SystemOvs(os.path.abspath(builddir), cleanup).setup()
    finally:
        cleanup.run()
