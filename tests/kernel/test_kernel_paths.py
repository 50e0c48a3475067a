# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""What only the kernel datapath's upcall path has: upcalls received and
handled in batches by handler threads (recv_upcalls(), handle_upcalls(),
one dpif_operate() per batch), flow puts that the kernel can refuse, the
flow limit, several handler threads.  Run in the kernel tier's guest
(conftest.py)."""

import os
import threading

import pytest

from system_ovs import NS2_IP, wait_until

from kernel_helpers import (create_session, ct_state, recircs, send_udp,
                            tp_dst, wait_traces)


def _check_one_flow_per_trace(traces, ports):
    """Each trace has both rounds of one packet, +new after conntrack, and
    there is one trace per port in 'ports'."""
    seen = []
    for t in traces:
        assert t["n_rounds"] == 2 and not t["partial"], t
        dsts = {tp_dst(r) for r in t["rounds"]}
        assert len(dsts) == 1, t            # Rounds of one packet only.
        assert ct_state(t["rounds"][0]) is None
        assert ct_state(t["rounds"][1]) == "new|trk", t
        assert recircs(t["rounds"][0]["datapath_actions"]) \
            == [t["rounds"][1]["recirc_id"]], t
        seen.append(dsts.pop())
    assert sorted(seen) == sorted(ports), seen


def test_batch_of_upcalls_each_traced(kovs):
    ovs = kovs
    ovs.appctl("upcall/disable-megaflows")
    create_session(ovs, "batch", "udp", ovs.p1)
    ports = list(range(7101, 7109))
    # Eight flows at once: the kernel queues eight upcalls, which a handler
    # receives and handles together, then their eight recirculations.
    send_udp(ovs, ports)
    traces = wait_traces(ovs, "batch", len(ports), rounds=2)
    assert len(traces) == len(ports), traces
    _check_one_flow_per_trace(traces, ports)


@pytest.fixture
def no_module_autoload():
    """The kernel cannot load modules on demand meanwhile: its modprobe is
    /bin/false.  Restored at the end."""
    path = "/proc/sys/kernel/modprobe"
    with open(path) as f:
        saved = f.read().strip()
    with open(path, "w") as f:
        f.write("/bin/false")
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)


def test_flow_refused_by_the_kernel(kovs, no_module_autoload):
    ovs = kovs
    # A conntrack action with the TFTP helper, whose module the kernel cannot
    # load: ovs-vswitchd does not probe helpers, the kernel refuses the
    # flow (EINVAL, "Unknown helper"), and the execute with it.
    if os.path.isdir("/sys/module/nf_conntrack_tftp"):
        r = ovs.cmd("rmmod", "nf_conntrack_tftp", check=False)
        if r.returncode:
            pytest.skip("nf_conntrack_tftp is loaded and in use")
    ovs.ofctl("add-flow", ovs.bridge,
              "table=1,priority=20,ct_state=+new+trk,udp,udp_dst=7201,"
              "in_port=%s actions=ct(commit,zone=1,alg=tftp),output:%s"
              % (ovs.p1, ovs.p2))
    create_session(ovs, "refused", "udp", ovs.p1)
    send_udp(ovs, [7201])
    traces = wait_traces(ovs, "refused", 1, rounds=2)
    assert len(traces) == 1, traces
    r1, r2 = traces[0]["rounds"]
    assert r1["installed"] is True, r1
    assert "helper=tftp" in r2["datapath_actions"], r2
    assert r2["installed"] is False, r2
    assert r2["install_reason"] == \
        "the datapath refused the flow (Invalid argument)", r2
    # Indeed not in the kernel.
    assert not [f for f in ovs.dp_flows() if "helper=tftp" in f
                or "alg=tftp" in f], ovs.dp_flows()
    # The packet was not executed either: the round says so.
    assert r1["execute_error"] is None, r1
    assert r2["execute_error"] == \
        "the datapath failed to execute the actions (Invalid argument)", r2
    text = ovs.appctl("upcall/trace/get", str(traces[0]["id"]))
    assert "not installed: the datapath refused the flow" in text, text
    assert ("\nExecute: the datapath failed to execute the actions "
            "(Invalid argument)\n") in text, text


def test_disabled_megaflows_record_the_exact_flow(kovs):
    ovs = kovs
    # ukey_create_from_upcall() gives the kernel no mask: the flow matches
    # every field of the packet, not xlate's wildcards ("ip,in_port=1,
    # nw_frag=no" for the first round of this pipeline).
    ovs.appctl("upcall/disable-megaflows")
    create_session(ovs, "exact", "udp", ovs.p1)
    send_udp(ovs, [7301])
    traces = wait_traces(ovs, "exact", 1, rounds=2)
    for r in traces[0]["rounds"]:
        assert r["installed"] is True, r
        for field in ("udp", "nw_src=", "nw_dst=%s" % NS2_IP, "tp_dst=7301",
                      "nw_ttl=", "dl_src="):
            assert field in r["megaflow"], r


def test_upcall_while_the_flow_limit_is_reached(kovs):
    ovs = kovs
    # The revalidators raise the limit back to at least 1000 after each
    # dump unless the configured maximum is lower: set both.
    ovs.vsctl("set", "Open_vSwitch", ".", "other_config:flow-limit=0")
    ovs.appctl("upcall/set-flow-limit", "0")
    create_session(ovs, "limit", "icmp", ovs.p1)
    # Handled (executed) but not installed.
    assert "1 received" in ovs.ping(ovs.ns1, NS2_IP, count=1).stdout
    traces = wait_traces(ovs, "limit", 1, rounds=2)
    r1, r2 = traces[0]["rounds"]
    assert r1["installed"] is False, r1
    assert r1["install_reason"] == "datapath flow limit reached", r1
    # The first pass's flow was not installed, so its frozen state is kept
    # only while its upcall is handled: the thawed round, handled by the
    # handler of the CPU that recirculated it, finds the limit reached or,
    # if the first upcall is done already, its frozen state gone (the
    # reason should_install_flow() checks first).
    assert r2["installed"] is False, r2
    assert r2["install_reason"] in ("datapath flow limit reached",
                                    "recirculation context is gone"), r2
    assert not [f for f in ovs.dp_flows() if "icmp" in f]

    # Back to normal: installed again.
    ovs.vsctl("remove", "Open_vSwitch", ".", "other_config", "flow-limit")
    ovs.appctl("upcall/set-flow-limit", "10000")
    ovs.appctl("upcall/trace/clear", "limit")
    assert "1 received" in ovs.ping(ovs.ns1, NS2_IP, count=1).stdout
    traces = wait_traces(ovs, "limit", 1, rounds=2)
    assert [r["installed"] for r in traces[0]["rounds"]] == [True, True]


def _handler_threads(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            names.append(f.read().strip())
    return sorted(n for n in names if n.startswith("handler"))


def test_several_handler_threads(kovs):
    ovs = kovs
    if os.cpu_count() < 2:
        pytest.skip("one CPU: the kernel dispatches every upcall to one "
                    "handler")
    ovs.vsctl("set", "Open_vSwitch", ".", "other_config:n-handler-threads=4")
    pid = ovs.sb.read_pid("ovs-vswitchd")
    # With the kernel's per-CPU upcall dispatch (Linux 5.16 and later),
    # there is one handler per CPU, whatever n-handler-threads says; with
    # per-vport dispatch, n-handler-threads of them.
    handlers = wait_until(lambda: len(_handler_threads(pid)) >= 2
                          and _handler_threads(pid),
                          what="several handler threads")
    ovs.appctl("upcall/disable-megaflows")
    create_session(ovs, "threads", "udp", ovs.p1)
    # Packets sent from two CPUs at once: each CPU's upcalls go to its own
    # handler, which traces them concurrently with the other.
    groups = ((0, [7301, 7302, 7303]), (1, [7311, 7312, 7313]))
    errors = []

    def send(cpu, ports):
        try:
            send_udp(ovs, ports, cpu=cpu)
        except Exception as e:
            errors.append(e)
    senders = [threading.Thread(target=send, args=g) for g in groups]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    assert not errors, errors
    ports = [p for _, group in groups for p in group]
    traces = wait_traces(ovs, "threads", len(ports), rounds=2)
    assert len(traces) == len(ports), traces
    _check_one_flow_per_trace(traces, ports)
    print("handler threads: %s" % " ".join(handlers))
