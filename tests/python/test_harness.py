# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Sanity tests of the harness itself (conftest.py)."""

import os
import signal

import pytest

from conftest import OvsSandbox

pytest_plugins = ["pytester"]


def test_daemons_run_in_the_sandbox(ovs):
    # Both daemons run, from the build tree, with everything in the
    # sandbox's folder.
    assert len(ovs.running_pids()) == 2
    for name in OvsSandbox.DAEMONS:
        assert os.path.exists(os.path.join(ovs.dir, name + ".pid"))
        assert os.path.exists(os.path.join(ovs.dir, name + ".log"))
        exe = os.path.realpath("/proc/%d/exe" % ovs.read_pid(name))
        assert exe.startswith(os.path.realpath(ovs.builddir) + os.sep)
    assert os.path.exists(ovs.db_sock)

    assert "Open vSwitch" in ovs.appctl("version")
    # The database has the Upcall_Trace table, empty.
    assert ovs.vsctl("list", "Upcall_Trace") == ""
    # ovs-vswitchd runs with the dummy datapath only.
    ovs.add_bridge("br0", ports=(1, 2))
    assert ovs.vsctl("get", "Bridge", "br0", "datapath_type").strip() == \
        "dummy"
    assert "p1 1/1: (dummy)" in ovs.appctl("dpif/show")


def test_commands_report_failures(ovs):
    from conftest import CommandError

    with pytest.raises(CommandError) as e:
        ovs.vsctl("get", "Bridge", "nonexistent", "name")
    assert e.value.returncode == 1
    assert 'no row "nonexistent" in table Bridge' in e.value.stderr
    assert ovs.vsctl("get", "Bridge", "nonexistent", "name",
                     check=False) == ""


def test_python_idl(ovs):
    ovs.add_bridge("br0")
    client = ovs.idl(["Open_vSwitch", "Bridge"])
    bridges = client.run_until(lambda: client.rows("Bridge"))
    assert [b.name for b in bridges] == ["br0"]
    assert len(client.rows("Open_vSwitch")) == 1


def test_vswitchd_crash_and_restart(ovs):
    ovs.add_bridge("br0", ports=(1,))
    old = ovs.read_pid("ovs-vswitchd")
    ovs.kill_vswitchd()
    assert not OvsSandbox.alive(old)
    ovs.start_vswitchd()
    new = ovs.read_pid("ovs-vswitchd")
    assert new != old and OvsSandbox.alive(new)
    assert "p1 1/1: (dummy)" in ovs.appctl("dpif/show")


def test_stop_kills_a_daemon_that_does_not_answer(builddir, tmp_path):
    sandbox = OvsSandbox(builddir, tmp_path)
    try:
        sandbox.start()
        pids = sandbox.running_pids()
        assert len(pids) == 2
        # A stopped process cannot answer "exit": stop() must kill it.
        os.kill(sandbox.read_pid("ovs-vswitchd"), signal.SIGSTOP)
    finally:
        sandbox.stop()
    assert sandbox.running_pids() == []
    assert not any(OvsSandbox.alive(pid) for pid in pids)


def test_teardown_after_a_failing_test(pytester):
    # Runs, in a pytest of its own, a test that records the daemons' process
    # ids and then fails, and checks that they were stopped anyway.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "conftest.py")) as f:
        pytester.makeconftest(f.read())
    pidfile = pytester.path / "pids"
    pytester.makepyfile(test_inner="""
        def test_fails(ovs):
            with open(%r, "w") as f:
                f.write(" ".join(str(p) for p in ovs.running_pids()))
            raise AssertionError("deliberate failure")
    """ % str(pidfile))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*deliberate failure*"])

    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    assert not any(OvsSandbox.alive(pid) for pid in pids)
