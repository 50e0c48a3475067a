# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""utilities/ovs-upcall-trace against a real ovsdb-server and ovs-vswitchd
(the 'ovs' fixture of conftest.py, dummy datapath), with the conntrack rules
of the RFC cover letter and packets injected with netdev-dummy/receive."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import wait_until

# The script as built (generated from utilities/ovs-upcall-trace.in), run
# as it is, by its own "#!" line, with no PYTHONPATH or OVS_PYTHONPATH: it
# must find the Open vSwitch Python library of its build by itself.
TOOL = os.path.join(os.environ.get("OVS_BUILDDIR", "/nonexistent"),
                    "utilities", "ovs-upcall-trace")

FLOWS = """\
priority=100,arp actions=NORMAL
priority=10,ip,in_port=p1 actions=ct(table=1,zone=1)
priority=10,ip,in_port=p2 actions=ct(table=1,zone=1)
priority=1 actions=drop
table=1,priority=10,ct_state=+new+trk,ip,in_port=p1 \
actions=ct(commit,zone=1),output:p2
table=1,priority=10,ct_state=+est+trk,ip,in_port=p1 actions=output:p2
table=1,priority=10,ct_state=+est+trk,ip,in_port=p2 actions=output:p1
table=1,priority=1 actions=drop
"""

ETH12 = "eth(src=50:54:00:00:00:01,dst=50:54:00:00:00:02)"
ICMP12 = ("in_port(1),%s,eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,"
          "proto=1,tos=0,ttl=64,frag=no),icmp(type=8,code=0)" % ETH12)
ETH21 = "eth(src=50:54:00:00:00:02,dst=50:54:00:00:00:01)"
ICMP21 = ("in_port(2),%s,eth_type(0x0800),ipv4(src=10.0.0.2,dst=10.0.0.1,"
          "proto=1,tos=0,ttl=64,frag=no),icmp(type=0,code=0)" % ETH21)
UDP12 = ("in_port(1),%s,eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,"
         "proto=17,tos=0,ttl=64,frag=no),udp(src=%%d,dst=53)" % ETH12)


class Result(object):
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json(self):
        return json.loads(self.out)


def tool_env(ovs):
    """The sandbox's environment without any Python path."""
    env = dict(ovs.env)
    env.pop("PYTHONPATH", None)
    env.pop("OVS_PYTHONPATH", None)
    return env


def tool(ovs, *args, env=None):
    p = subprocess.run([TOOL] + list(args), cwd=ovs.dir,
                       env=env or tool_env(ovs), universal_newlines=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return Result(p)


def ok(ovs, *args):
    r = tool(ovs, *args)
    assert r.rc == 0, r.err
    assert r.err == ""
    return r


def fails(ovs, *args, env=None):
    """Runs a command that must fail with one line on stderr."""
    r = tool(ovs, *args, env=env)
    assert r.rc != 0
    assert r.err.startswith("ovs-upcall-trace: ")
    assert r.err.count("\n") == 1, r.err
    return r


@pytest.fixture
def br0(ovs):
    """'ovs' with br0, dummy ports p1 (1) and p2 (2) and the ct rules."""
    ovs.add_bridge("br0", ports=(1, 2))
    path = os.path.join(ovs.dir, "flows.txt")
    with open(path, "w") as f:
        f.write(FLOWS)
    ovs.ofctl("add-flows", "br0", path)
    return ovs


def send(ovs, packet, port="p1"):
    ovs.appctl("netdev-dummy/receive", port, packet)


def owner(ovs, name):
    return ovs.vsctl("get", "Upcall_Trace", name,
                     "external_ids:owner").strip().strip('"')


def test_start_list_show_summary_clear_stop(br0):
    ovs = br0
    r = ok(ovs, "start", "br0", "icmp", "--port", "p1", "--name", "t1",
           "--max", "100", "--retention", "600", "--duration", "3600")
    assert r.out == "session t1: active\n"
    assert owner(ovs, "t1") == "ovs-upcall-trace"
    row = ovs.vsctl("--columns=bridge,port,filter,max_traces,retention,"
                    "options", "list", "Upcall_Trace", "t1")
    assert row.split("\n")[:-1] == [
        "bridge              : br0", "port                : p1",
        "filter              : icmp", "max_traces          : 100",
        "retention           : 600",
        'options             : {duration="3600"}']

    send(ovs, ICMP12)
    send(ovs, ICMP21, "p2")     # The reply, on p2: not traced.
    send(ovs, ICMP12)           # +est now.
    send(ovs, UDP12 % 5000)     # Not icmp: not traced.

    traces = ok(ovs, "list", "--json").json()["traces"]
    text = ok(ovs, "list").out
    assert text.startswith("%#x " % traces[0]["id"]) and "session=t1" in text
    assert [t["n_rounds"] for t in traces] == [2, 1]
    assert ok(ovs, "list", "t1", "--json").json()["traces"] == traces
    assert ok(ovs, "--json", "list", "t1").json()["traces"] == traces

    first, second = traces[0]["id"], traces[1]["id"]
    shown = ok(ovs, "get", hex(first)).out
    assert shown.startswith("=== Trace %#x (session t1" % first)
    assert "ct_state=new|trk" in shown
    # "show ID" is the old name of "get ID".
    assert ok(ovs, "show", hex(first)).out == shown
    trace = ok(ovs, "get", hex(first), "--json").json()
    assert trace["id"] == first and len(trace["rounds"]) == 2
    assert "ct_state=est|trk" in ok(ovs, "get", str(second)).out

    assert "2 traces, 2 distinct paths" in ok(ovs, "summary").out
    summary = ok(ovs, "summary", "t1", "--json").json()
    assert summary["n_traces"] == 2 and len(summary["paths"]) == 2

    status = ok(ovs, "show").out.splitlines()
    assert status[0].split() == ["NAME", "BRIDGE", "PORT", "FILTER",
                                 "STATE", "TRACES", "MATCHED", "OWNER"]
    wait_until(lambda: ok(ovs, "show").out.splitlines()[1].split()
               == ["t1", "br0", "p1", "icmp", "active", "2", "2",
                   "ovs-upcall-trace"], what="show with 2 traces")
    # "status" is the old name of "show".
    assert ok(ovs, "status").out == ok(ovs, "show").out
    sessions = ok(ovs, "show", "--json").json()["sessions"]
    assert len(sessions) == 1
    s = sessions[0]
    assert (s["name"], s["bridge"], s["port"], s["filter"], s["owned"],
            s["max_traces"], s["status"]["state"]) == \
        ("t1", "br0", "p1", "icmp", True, 100, "active")
    # The same JSON types everywhere: counters and trace ids are integers,
    # as in "list --json".
    assert s["statistics"]["n_traces"] == 2
    assert s["statistics"]["n_matched"] == 2
    assert s["status"]["last_trace_id"] == second
    assert type(s["status"]["last_trace_time"]) is int
    assert type(s["expires_at"]) is int

    ok(ovs, "clear", "t1")
    assert ok(ovs, "list", "--json").json()["traces"] == []

    assert ok(ovs, "stop", "t1").out == "stopped t1\n"
    assert ovs.vsctl("list", "Upcall_Trace") == ""
    assert ok(ovs, "show").out == "no sessions\n"
    assert ok(ovs, "show", "--json").json() == {"sessions": []}


def test_start_json_default_names_and_duplicates(br0):
    ovs = br0
    r = ok(ovs, "start", "br0", "--json").json()
    assert r["name"] == "br0-1" and r["state"] == "active"
    assert r["error"] is None and len(r["uuid"]) == 36
    assert ok(ovs, "start", "br0", "udp").out == "session br0-2: active\n"
    assert "already exists" in fails(ovs, "start", "br0", "--name",
                                     "br0-1").err
    assert ok(ovs, "stop", "--all", "--json").json() == {
        "stopped": ["br0-1", "br0-2"]}


def test_start_refuses_a_max_trace_size_below_one_round(br0):
    ovs = br0
    r = fails(ovs, "start", "br0", "--max-trace-size", "4095")
    assert r.err.endswith(
        "--max-trace-size must be between 4096 and 1073741824\n"), r.err
    assert ovs.vsctl("list", "Upcall_Trace") == ""
    r = ok(ovs, "start", "br0", "--max-trace-size", "4096", "--json")
    assert r.json()["state"] == "active"


def test_missing_bridge_or_port_fails(br0):
    """A mistyped bridge or port is an error, and leaves no row behind."""
    ovs = br0
    r = fails(ovs, "start", "nobr", "ip", "--name", "w")
    assert 'bridge "nobr" does not exist' in r.err
    assert "--wait-active" in r.err and r.out == ""
    r = fails(ovs, "start", "br0", "--port", "p9", "--json")
    assert 'port "p9" does not exist on bridge "br0"' in r.err
    r = fails(ovs, "start", "br0", "--iface-id", "lsp9")
    assert 'iface-id="lsp9"' in r.err
    assert ovs.vsctl("list", "Upcall_Trace") == ""

    # --no-wait starts it anyway: it becomes active by itself when the
    # bridge appears.
    r = ok(ovs, "start", "nobr", "ip", "--name", "w", "--no-wait", "--json")
    assert r.json()["state"] is None
    ovs.add_bridge("nobr")
    wait_until(lambda: ovs.vsctl("get", "Upcall_Trace", "w",
                                 "status:state").strip() == "active",
               what="session w to become active")

    # --wait-active waits for the port, up to --timeout.
    adder = threading.Timer(1.0, lambda: ovs.vsctl(
        "add-port", "br0", "p9", "--", "set", "Interface", "p9",
        "type=dummy"))
    adder.start()
    try:
        r = ok(ovs, "start", "br0", "--port", "p9", "--name", "p9",
               "--wait-active", "--timeout", "20")
    finally:
        adder.join()
    assert r.out == "session p9: active\n"
    # And gives up, leaving nothing, when it does not come.
    r = fails(ovs, "start", "br0", "--port", "p10", "--wait-active",
              "--timeout", "2")
    assert "did not become active within 2 s" in r.err
    assert sorted(ovs.vsctl("--bare", "--columns=name", "list",
                            "Upcall_Trace").split()) == ["p9", "w"]
    assert "--no-wait and --wait-active" in fails(
        ovs, "start", "br0", "--no-wait", "--wait-active").err


def test_targets_port_and_iface_id(br0):
    ovs = br0
    ovs.vsctl("set", "Interface", "p2", "external_ids:iface-id=lsp2")
    assert ok(ovs, "start", "br0", "--iface-id", "lsp2", "--name",
              "vif").out == "session vif: active\n"
    lines = ok(ovs, "show").out.splitlines()
    assert lines[1].split()[:3] == ["vif", "br0", "iface-id=lsp2"]
    s = ok(ovs, "show", "--json").json()["sessions"][0]
    assert (s["iface_id"], s["port"]) == ("lsp2", None)
    assert "cannot both" in fails(ovs, "start", "br0", "--port", "p1",
                                  "--iface-id", "x").err


def test_bad_filter_fails_and_leaves_no_row(br0):
    ovs = br0
    r = fails(ovs, "start", "br0", "tcp,tp_dst=http", "--name", "bad")
    assert r.err.startswith("ovs-upcall-trace: session bad: filter ")
    assert "tp_dst=http" in r.err
    assert r.out == ""
    assert ovs.vsctl("list", "Upcall_Trace") == ""


def test_bad_values_fail_before_writing(br0):
    ovs = br0
    assert "--max" in fails(ovs, "start", "br0", "--max", "0").err
    assert "--retention" in fails(ovs, "start", "br0", "--retention",
                                  "-1").err
    assert ovs.vsctl("list", "Upcall_Trace") == ""


def test_unknown_trace_and_session(br0):
    ovs = br0
    ok(ovs, "start", "br0", "--name", "t")
    fails(ovs, "get", "0x999")
    fails(ovs, "get", "0x999", "--json")
    fails(ovs, "list", "nosuchsession")
    assert "no session named nope" in fails(ovs, "stop", "nope").err
    assert "NAME or --all" in fails(ovs, "stop").err


def test_stop_all_leaves_rows_of_others(br0):
    ovs = br0
    ovs.vsctl("create", "Upcall_Trace", "name=op", "bridge=br0",
              "filter=ip")
    ok(ovs, "start", "br0", "--name", "mine1")
    ok(ovs, "start", "br0", "udp", "--name", "mine2")
    assert ok(ovs, "stop", "--all").out == "stopped mine1\nstopped mine2\n"
    assert ovs.vsctl("--bare", "--columns=name", "list",
                     "Upcall_Trace").split() == ["op"]
    # show shows it too, with no owner.
    lines = ok(ovs, "show").out.splitlines()
    assert lines[1].split()[0] == "op" and lines[1].split()[-1] == "-"
    # By name, a row of somebody else's needs --force.
    assert "--force" in fails(ovs, "stop", "op").err
    assert ok(ovs, "stop", "op", "--force").out == "stopped op\n"
    assert ovs.vsctl("list", "Upcall_Trace") == ""
    assert ok(ovs, "stop", "--all").out == ""


def _watch(ovs, *args):
    return subprocess.Popen([TOOL, "watch"] + list(args), cwd=ovs.dir,
                            env=tool_env(ovs), universal_newlines=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_watch_prints_new_traces(br0):
    ovs = br0
    # Every distinct datagram an upcall, not only the first of a megaflow.
    ovs.appctl("upcall/disable-megaflows")
    send(ovs, UDP12 % 1)                # Before the session: not traced.
    ok(ovs, "start", "br0", "udp", "--port", "p1", "--name", "u")
    send(ovs, UDP12 % 2)                # Before watch: not printed.
    first = wait_until(lambda: ok(ovs, "list", "--json").json()["traces"],
                       what="the first trace")[0]["id"]

    w = _watch(ovs, "u", "--count", "2", "--json")
    try:
        time.sleep(1)
        send(ovs, UDP12 % 3)
        send(ovs, UDP12 % 4)
        out, err = w.communicate(timeout=30)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    assert w.returncode == 0 and err == ""
    traces = [json.loads(line) for line in out.splitlines()]
    ids = [t["id"] for t in ok(ovs, "list", "u", "--json").json()["traces"]]
    assert [t["id"] for t in traces] == ids[1:] and ids[0] == first
    for t, port in zip(traces, (3, 4)):
        assert len(t["rounds"]) == 2
        assert "tp_src=%d," % port in t["rounds"][0]["flow"]

    # Text, with the traces already stored.
    w = _watch(ovs, "u", "--count", "2", "--existing", "--interval", "0.05")
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0 and err == ""
    assert out.startswith("=== Trace %#x (session u" % ids[0])
    assert "\n=== Trace %#x (session u" % ids[1] in out


def test_watch_burst_overflowing_max_traces(br0):
    """Bursts of 12 traces into a session that keeps 4: watch prints each
    trace it could read once, in order, and "missed N traces" for the
    others, so that printed plus missed is every trace, exactly."""
    ovs = br0
    ovs.appctl("upcall/disable-megaflows")
    ok(ovs, "start", "br0", "udp", "--name", "b", "--max", "4")
    w = _watch(ovs, "b", "--json", "--interval", "0.05", "--settle", "0.2")
    try:
        time.sleep(1)
        sport = 100
        for burst in range(3):
            for _ in range(12):
                send(ovs, UDP12 % sport)
                sport += 1
            time.sleep(1.5)
        wait_until(lambda: ovs.vsctl("get", "Upcall_Trace", "b",
                                     "statistics:n_traces_total").strip()
                   == "36", what="36 traces")
        time.sleep(2)
    finally:
        w.terminate()
        out, err = w.communicate(timeout=30)
    assert err == ""
    printed = []
    missed = 0
    for line in out.splitlines():
        if line.startswith("missed "):
            n, word = line.split()[1:]
            assert word in ("trace", "traces")
            missed += int(n)
        else:
            printed.append(json.loads(line)["id"])
    assert printed == sorted(set(printed))      # Once each, in order.
    assert missed > 0                           # 12 into 4: some missed.
    assert len(printed) + missed == 36, (printed, missed)
    # The last four of the last burst are still stored, and were printed.
    stored = [t["id"] for t in ok(ovs, "list", "b", "--json").json()[
        "traces"]]
    assert printed[-4:] == stored


def test_explicit_db_and_target(br0):
    ovs = br0
    env = tool_env(ovs)
    env["OVS_RUNDIR"] = "/nonexistent"
    pid = ovs.read_pid("ovs-vswitchd")
    ctl = os.path.join(ovs.dir, "ovs-vswitchd.%d.ctl" % pid)
    r = tool(ovs, "start", "br0", "--name", "x", "--db", ovs.remote,
             env=env)
    assert r.rc == 0 and r.out == "session x: active\n", r.err
    send(ovs, ICMP12)
    r = tool(ovs, "list", "--json", "--target", ctl, env=env)
    assert r.rc == 0 and len(r.json()["traces"]) == 1
    r = tool(ovs, "-t", "unix:" + ctl, "list", env=env)
    assert r.rc == 0 and r.out.startswith("0x")
    # The defaults, with that run directory, reach neither daemon.
    assert "/nonexistent/db.sock" in fails(ovs, "show", env=env).err
    assert "pidfile" in fails(ovs, "list", env=env).err
    assert "cannot connect" in fails(ovs, "list", "--target",
                                     "/nonexistent.ctl").err


def test_start_times_out_without_vswitchd(br0):
    ovs = br0
    ovs.exit_vswitchd()
    r = fails(ovs, "start", "br0", "--name", "later", "--timeout", "1")
    assert "did not report its state" in r.err
    # The row stays: ovs-vswitchd takes it up when it starts.
    ovs.start_vswitchd()
    wait_until(lambda: ovs.vsctl("get", "Upcall_Trace", "later",
                                 "status:state").strip() == "active",
               what="the session once ovs-vswitchd runs")
    assert ok(ovs, "start", "br0", "--no-wait", "--json").json()[
        "state"] is None


def test_runs_from_the_build_with_no_environment(ovs, builddir):
    """The script of the build tree, run with nothing but PATH and the run
    directory set, finds the Open vSwitch Python library of its build."""
    env = {"PATH": os.environ.get("PATH", ""), "OVS_RUNDIR": ovs.dir}
    p = subprocess.run([TOOL, "show", "--json"], env=env, cwd="/",
                       universal_newlines=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"sessions": []}
    # Generated: no placeholder is left, and the first line names the
    # Python 3 that configure found.
    with open(TOOL) as f:
        text = f.read()
    assert "@" + "abs_builddir@" not in text and "@pkgdatadir" + "@" \
        not in text
    assert text.startswith("#! /") and "python3" in text.splitlines()[0]
    assert os.access(TOOL, os.X_OK)
    assert '"%s"' % builddir in text


def test_installed_copy_uses_pkgdatadir(ovs, builddir, tmp_path):
    """A copy outside the build tree (as "make install" puts it in
    BINDIR) looks for the library where "make install" puts it, under
    pkgdatadir, and not in the build tree; when it is missing there, it
    says so in one line."""
    with open(TOOL) as f:
        installed = re.search(r'^INSTALLED_PYTHON = "(.*)"$', f.read(),
                              re.M).group(1)
    assert installed.startswith("/") and installed.endswith(
        "/openvswitch/python")
    assert not installed.startswith(builddir)
    pkgdatadir = os.path.dirname(installed)
    env = {"PATH": os.environ.get("PATH", "")}
    if subprocess.run([sys.executable, "-c", "import ovs"], env=env,
                      stderr=subprocess.DEVNULL).returncode == 0:
        pytest.skip("an Open vSwitch Python library is installed")
    if os.path.exists(os.path.join(pkgdatadir, "python", "ovs")):
        pytest.skip("Open vSwitch is installed in %s" % pkgdatadir)
    copy = tmp_path / "bin" / "ovs-upcall-trace"
    copy.parent.mkdir()
    shutil.copy(TOOL, copy)
    p = subprocess.run([str(copy), "show"], env=env,
                       universal_newlines=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.count("\n") == 1
    assert "cannot import the Open vSwitch Python library" in p.stderr
    assert os.path.join(pkgdatadir, "python") in p.stderr
    assert builddir not in p.stderr

    # OVS_PYTHONPATH still overrides.
    env["OVS_PYTHONPATH"] = os.path.join(builddir, "python")
    env["OVS_RUNDIR"] = ovs.dir
    p = subprocess.run([str(copy), "show"], env=env,
                       universal_newlines=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 0 and p.stdout == "no sessions\n", p.stderr
