# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""utilities/ovs-upcall-trace against a real ovsdb-server and ovs-vswitchd
(the 'ovs' fixture of conftest.py, dummy datapath), with the conntrack rules
of the RFC cover letter and packets injected with netdev-dummy/receive."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import wait_until

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(SRCDIR, "utilities", "ovs-upcall-trace")

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


def tool(ovs, *args, env=None):
    p = subprocess.run([sys.executable, TOOL] + list(args), cwd=ovs.dir,
                       env=env or ovs.env, universal_newlines=True,
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

    text = ok(ovs, "list").out
    assert text.startswith("0x1 ") and "session=t1" in text
    traces = ok(ovs, "list", "--json").json()["traces"]
    assert [t["n_rounds"] for t in traces] == [2, 1]
    assert ok(ovs, "list", "t1", "--json").json()["traces"] == traces
    assert ok(ovs, "--json", "list", "t1").json()["traces"] == traces

    shown = ok(ovs, "show", "0x1").out
    assert shown.startswith("=== Trace 0x1 (session t1")
    assert "ct_state=new|trk" in shown
    trace = ok(ovs, "show", "0x1", "--json").json()
    assert trace["id"] == 1 and len(trace["rounds"]) == 2
    assert "ct_state=est|trk" in ok(ovs, "show", "0x2").out

    assert "2 traces, 2 distinct paths" in ok(ovs, "summary").out
    summary = ok(ovs, "summary", "t1", "--json").json()
    assert summary["n_traces"] == 2 and len(summary["paths"]) == 2

    status = ok(ovs, "status").out.splitlines()
    assert status[0].split() == ["NAME", "BRIDGE", "PORT", "FILTER",
                                 "STATE", "TRACES", "MATCHED", "OWNER"]
    wait_until(lambda: ok(ovs, "status").out.splitlines()[1].split()
               == ["t1", "br0", "p1", "icmp", "active", "2", "2",
                   "ovs-upcall-trace"], what="status with 2 traces")
    sessions = ok(ovs, "status", "--json").json()["sessions"]
    assert len(sessions) == 1
    s = sessions[0]
    assert (s["name"], s["bridge"], s["port"], s["filter"], s["owned"],
            s["max_traces"], s["status"]["state"]) == \
        ("t1", "br0", "p1", "icmp", True, 100, "active")

    ok(ovs, "clear", "t1")
    assert ok(ovs, "list", "--json").json() == {"traces": []}

    assert ok(ovs, "stop", "t1").out == "stopped t1\n"
    assert ovs.vsctl("list", "Upcall_Trace") == ""
    assert ok(ovs, "status").out == "no sessions\n"
    assert ok(ovs, "status", "--json").json() == {"sessions": []}


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


def test_unknown_bridge_is_waiting(br0):
    ovs = br0
    r = ok(ovs, "start", "nobr", "ip", "--name", "w")
    assert r.out.startswith("session w: waiting (")
    assert "nobr" in r.out
    assert ok(ovs, "start", "br0", "--port", "p9", "--json").json()[
        "state"] == "waiting"
    # It becomes active by itself when the bridge appears.
    ovs.add_bridge("nobr")
    wait_until(lambda: ovs.vsctl("get", "Upcall_Trace", "w",
                                 "status:state").strip() == "active",
               what="session w to become active")


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
    fails(ovs, "show", "0x999")
    fails(ovs, "show", "0x999", "--json")
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
    # status shows it too, with no owner.
    lines = ok(ovs, "status").out.splitlines()
    assert lines[1].split()[0] == "op" and lines[1].split()[-1] == "-"
    # By name, a row of somebody else's needs --force.
    assert "--force" in fails(ovs, "stop", "op").err
    assert ok(ovs, "stop", "op", "--force").out == "stopped op\n"
    assert ovs.vsctl("list", "Upcall_Trace") == ""
    assert ok(ovs, "stop", "--all").out == ""


def test_watch_prints_new_traces(br0):
    ovs = br0
    # Every distinct datagram an upcall, not only the first of a megaflow.
    ovs.appctl("upcall/disable-megaflows")
    send(ovs, UDP12 % 1)                # Before the session: not traced.
    ok(ovs, "start", "br0", "udp", "--port", "p1", "--name", "u")
    send(ovs, UDP12 % 2)                # Before watch: not printed.
    wait_until(lambda: ok(ovs, "list", "--json").json()["traces"],
               what="the first trace")

    def watch(*args):
        return subprocess.Popen([sys.executable, TOOL, "watch", "u",
                                 "--count", "2"] + list(args),
                                cwd=ovs.dir, env=ovs.env,
                                universal_newlines=True,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    w = watch("--json")
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
    assert [t["id"] for t in traces] == [2, 3]
    ports = ["udp(src=%d" % n for n in (3, 4)]
    for t, port in zip(traces, ports):
        assert t["n_rounds"] == 2
        assert "tp_src=%s" % port.split("=")[1] in t["rounds"][0]["flow"]

    # Text, with the traces already stored.
    w = watch("--existing", "--interval", "0.05")
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0 and err == ""
    assert out.startswith("=== Trace 0x1 (session u")
    assert "\n=== Trace 0x2 (session u" in out


def test_explicit_db_and_target(br0):
    ovs = br0
    env = dict(ovs.env)
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
    assert r.rc == 0 and r.out.startswith("0x1 ")
    # The defaults, with that run directory, reach neither daemon.
    assert "/nonexistent/db.sock" in fails(ovs, "status", env=env).err
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


def test_missing_library_is_one_line(ovs, tmp_path):
    env = {"PATH": os.environ.get("PATH", ""),
           "OVS_PYTHONPATH": str(tmp_path)}
    if subprocess.run([sys.executable, "-c", "import ovs"], env=env,
                      stderr=subprocess.DEVNULL).returncode == 0:
        pytest.skip("an Open vSwitch Python library is installed")
    copy = tmp_path / "bin" / "ovs-upcall-trace"
    copy.parent.mkdir()
    shutil.copy(TOOL, copy)
    p = subprocess.run([sys.executable, str(copy), "status"], env=env,
                       universal_newlines=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.count("\n") == 1
    assert "cannot import the Open vSwitch Python library" in p.stderr
