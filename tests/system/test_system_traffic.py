# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Live upcall tracing of real traffic between two network namespaces,
through the userspace datapath and its conntrack, with the rules of the RFC
cover letter (see conftest.py).  Root only."""

import json
import os
import re
import subprocess
import time

from system_ovs import NS1_IP, NS2_IP, wait_until


def ct_state(round_):
    m = re.search(r"ct_state=([a-z|]+)", round_["flow"])
    return m.group(1) if m else None


def create_session(ovs, name, port=None, filter_="ip", *extra):
    args = ["create", "Upcall_Trace", "name=" + name,
            "bridge=" + ovs.bridge, "filter=" + filter_]
    if port:
        args.append("port=" + port)
    ovs.vsctl(*(args + list(extra)))
    wait_until(lambda: ovs.session_state(name) == "active",
               what="session %s to be active" % name)


def test_ping_rounds_grouped_and_replies_not_traced(sysovs):
    ovs = sysovs
    create_session(ovs, "ping", ovs.p1, "icmp")

    out = ovs.ping(ovs.ns1, NS2_IP, count=2).stdout
    assert "2 received" in out, out

    traces = ovs.full_traces("ping")
    # Every trace entered on p1: the replies, on p2, are not traced.
    assert traces
    for t in traces:
        for r in t["rounds"]:
            assert r["in_port_name"] == ovs.p1, t
    p2 = ovs.odp_port(ovs.p2)

    # The first echo request: its first pass and the thawed round, grouped,
    # with the conntrack state the datapath really saw.
    first = traces[0]
    assert not first["partial"]
    assert first["n_rounds"] == 2 and len(first["rounds"]) == 2
    r1, r2 = first["rounds"]
    assert r1["recirc_id"] == 0 and ct_state(r1) is None
    assert "ct(zone=1)" in r1["datapath_actions"]
    assert "recirc(" in r1["datapath_actions"]
    assert r2["recirc_id"] != 0
    assert ct_state(r2) == "new|trk"
    assert "ct_state=+new+trk" in r2["translation"]
    assert r2["datapath_actions"].endswith(",%d" % p2)
    assert not r2["drop"]

    # The second request: its first pass hit the installed megaflow, its
    # recirculation missed (+est now): a partial trace that starts at the
    # thaw.
    later = traces[1:]
    assert later, traces
    est = [t for t in later if any(ct_state(r) == "est|trk"
                                   for r in t["rounds"])]
    assert est, later
    assert est[0]["partial"]
    assert est[0]["rounds"][0]["recirc_id"] == r2["recirc_id"]
    assert "ct_state=+est+trk" in est[0]["rounds"][0]["translation"]

    # The same through ovs-upcall-trace.
    listed = json.loads(ovs.tool("list", "--json", "ping").stdout)
    assert [t["id"] for t in listed["traces"]] == [t["id"] for t in traces]
    assert "new|trk" in ovs.tool("show", hex(first["id"])).stdout


def test_ping_traced_on_the_other_port_sees_only_replies(sysovs):
    ovs = sysovs
    create_session(ovs, "replies", ovs.p2, "icmp")
    ovs.ping(ovs.ns1, NS2_IP, count=2)
    traces = ovs.full_traces("replies")
    assert traces
    for t in traces:
        for r in t["rounds"]:
            assert r["in_port_name"] == ovs.p2
            assert "icmp_type=0" in r["flow"]        # Echo replies only.
    states = [ct_state(r) for t in traces for r in t["rounds"]]
    assert "est|rpl|trk" in states, states


def test_tcp_syn_synack_and_data(sysovs):
    ovs = sysovs
    # Every distinct microflow an upcall, so that the data segments are
    # traced too, not only the first packet of each megaflow.
    ovs.appctl("upcall/disable-megaflows")
    create_session(ovs, "tcp", None, "tcp")

    server = ["ip", "netns", "exec", ovs.ns2, "socat", "-T", "5",
              "TCP-LISTEN:5001,bind=%s,reuseaddr" % NS2_IP,
              "SYSTEM:'read line; echo pong-$line'"]
    srv = subprocess.Popen(server, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: ":5001" in ovs.ns(ovs.ns2, "ss", "-ltn").stdout,
                   what="the TCP server")
        # -t 10: once its input is sent, the client waits for the reply
        # until the server closes (socat's default, half a second, is less
        # than the server takes to start its shell in the kernel tier's
        # guest).
        out = ovs.cmd("ip", "netns", "exec", ovs.ns1, "socat", "-T", "5",
                      "-t", "10", "-", "TCP:%s:5001" % NS2_IP,
                      input="ping\n", timeout=20).stdout
        assert "pong-ping" in out
    finally:
        srv.kill()
        srv.wait()

    traces = ovs.full_traces("tcp")
    seen = {}
    for t in traces:
        for r in t["rounds"]:
            m = re.search(r"tcp_flags=([a-z|]+)", r["flow"])
            state = ct_state(r)
            if m and state:
                seen.setdefault((r["in_port_name"], m.group(1)),
                                set()).add(state)
    p1, p2 = ovs.p1, ovs.p2
    # The SYN from the client is new; the SYN-ACK from the server is an
    # established reply; the data from both sides is established.
    assert seen.get((p1, "syn")) == {"new|trk"}, seen
    assert seen.get((p2, "syn|ack")) == {"est|rpl|trk"}, seen
    assert "est|trk" in seen.get((p1, "psh|ack"), set()), seen
    assert "est|rpl|trk" in seen.get((p2, "psh|ack"), set()), seen
    # Each traced packet's rounds are grouped: the SYN's trace holds its
    # first pass and its thawed round.
    syn = [t for t in traces
           if "tcp_flags=syn," in t["rounds"][0]["flow"] + ","
           and t["rounds"][0]["in_port_name"] == p1]
    assert syn and syn[0]["n_rounds"] == 2, syn


def test_udp_exchange(sysovs):
    ovs = sysovs
    create_session(ovs, "udp", None, "udp")
    srv = subprocess.Popen(
        ["ip", "netns", "exec", ovs.ns2, "socat", "-T", "5",
         "UDP-LISTEN:5002,bind=%s" % NS2_IP, "SYSTEM:'read l; echo re-$l'"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: ":5002" in ovs.ns(ovs.ns2, "ss", "-lun").stdout,
                   what="the UDP server")
        out = ovs.cmd("ip", "netns", "exec", ovs.ns1, "socat", "-T", "3",
                      "-", "UDP:%s:5002" % NS2_IP, input="hi\n",
                      timeout=20).stdout
        assert "re-hi" in out
    finally:
        srv.kill()
        srv.wait()
    traces = ovs.full_traces("udp")
    by_port = {}
    for t in traces:
        assert t["n_rounds"] == 2 and not t["partial"], t
        by_port.setdefault(t["rounds"][0]["in_port_name"], []).append(
            ct_state(t["rounds"][1]))
    assert by_port.get(ovs.p1) == ["new|trk"], by_port
    assert by_port.get(ovs.p2) == ["est|rpl|trk"], by_port


def test_drop_outcome_in_list_and_summary(sysovs):
    ovs = sysovs
    # A connection started from p2 is +new there: no rule allows it, table
    # 1's last rule drops it.
    create_session(ovs, "drops", ovs.p2, "icmp")
    r = ovs.ping(ovs.ns2, NS1_IP, count=1, check=False)
    assert r.returncode != 0        # Dropped.

    listed = ovs.traces("drops")
    assert listed and all(t["drop"] for t in listed), listed
    text = ovs.appctl("upcall/trace/list", "drops")
    assert "-> DROP" in text, text

    t = ovs.trace(listed[0]["id"])
    assert t["n_rounds"] == 2
    assert ct_state(t["rounds"][1]) == "new|trk"
    assert t["rounds"][1]["drop"]
    assert t["rounds"][1]["datapath_actions"] == "drop"

    summary = ovs.appctl_json("upcall/trace/summary", "drops")
    assert summary["n_traces"] == len(listed)
    path = summary["paths"][0]
    assert path["drop"]
    assert "priority 1" in path["rounds"][-1]["path"], path
    assert "DROP" in ovs.appctl("upcall/trace/summary", "drops")
    assert "DROP" in ovs.tool("summary", "drops").stdout


def _restart(ovs, how):
    name = "survivor"
    create_session(ovs, name, ovs.p1, "icmp")
    ovs.ping(ovs.ns1, NS2_IP, count=1)
    assert ovs.traces(name)
    old_pid = ovs.pids["ovs-vswitchd"]

    ovs.stop_vswitchd(how)
    ovs.start_vswitchd()
    assert ovs.pids["ovs-vswitchd"] != old_pid
    # OpenFlow rules are not in the database: put them back, as a
    # controller would.  The session needs nothing: it comes back from its
    # row by itself.
    wait_until(lambda: ovs.cmd("ovs-ofctl", "show", ovs.bridge,
                               check=False).returncode == 0,
               what="the bridge after the restart")
    ovs.add_flows()
    wait_until(lambda: ovs.session_state(name) == "active",
               what="the session after the restart")
    assert ovs.traces(name) == []     # Traces live in ovs-vswitchd.

    # Conntrack (userspace) restarted too: the next ping is +new again.
    out = wait_until(lambda: "1 received" in ovs.ping(
        ovs.ns1, NS2_IP, count=1, check=False).stdout and "ok",
        timeout=20, what="a ping through the restarted ovs-vswitchd")
    assert out
    traces = ovs.full_traces(name)
    assert traces
    states = [ct_state(r) for t in traces for r in t["rounds"]]
    assert "new|trk" in states, states
    # And ovs-vswitchd reports it in the database again.
    wait_until(lambda: ovs.vsctl("get", "Upcall_Trace", name,
                                 "status:state").strip() == "active"
               and int(ovs.vsctl("get", "Upcall_Trace", name,
                                 "statistics:n_traces").strip().strip('"'))
               >= 1, what="the status column after the restart")


def test_session_survives_graceful_restart(sysovs):
    _restart(sysovs, "exit")


def test_session_survives_kill_9(sysovs):
    _restart(sysovs, "kill")


def test_watch_prints_traces_as_they_arrive(sysovs):
    ovs = sysovs
    out = ovs.tool("start", ovs.bridge, "icmp", "--port", ovs.p1,
                   "--name", "w").stdout
    assert out.strip() == "session w: active"
    polls = 'received request upcall/trace/list["w"]'
    n_polls = ovs.sb.log().count(polls)
    watcher = subprocess.Popen(
        [os.path.join(ovs.builddir, "utilities", "ovs-upcall-trace"), "watch",
         "--json", "--count", "2", "w"], env=ovs.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Only traces that arrive after it started: wait for its first poll
        # (ovs-vswitchd logs every unixctl request), however slowly Python
        # starts (seconds in the kernel tier's guest).
        wait_until(lambda: ovs.sb.log().count(polls) > n_polls, timeout=30,
                   what="the first poll of ovs-upcall-trace watch")
        ovs.ping(ovs.ns1, NS2_IP, count=2)
        out, err = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    lines = [ovs.check_datapath(json.loads(line))
             for line in out.splitlines()]
    assert len(lines) == 2
    assert [ct_state(r) for r in lines[0]["rounds"]] == [None, "new|trk"]
    assert [ct_state(r) for r in lines[1]["rounds"]] == ["est|trk"]
    assert ovs.tool("stop", "--all").stdout.strip() == "stopped w"
