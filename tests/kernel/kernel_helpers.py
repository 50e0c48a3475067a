# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Helpers of the kernel datapath's own tests (tests/kernel/test_*.py)."""

import re

from system_ovs import NS2_IP, wait_until


def ct_state(round_):
    m = re.search(r"ct_state=([a-z|]+)", round_["flow"])
    return m.group(1) if m else None


def tp_dst(round_):
    m = re.search(r"tp_dst=(\d+)", round_["flow"])
    return int(m.group(1)) if m else None


def recircs(actions):
    """The recirculation ids in datapath actions."""
    return [int(x, 16) for x in re.findall(r"recirc\((0x[0-9a-f]+)\)",
                                           actions)]


def create_session(ovs, name, filter_, port=None):
    args = ["create", "Upcall_Trace", "name=" + name,
            "bridge=" + ovs.bridge, 'filter="%s"' % filter_]
    if port:
        args.append("port=" + port)
    ovs.vsctl(*args)
    try:
        wait_until(lambda: ovs.session_state(name) == "active", timeout=30,
                   what="session %s to be active" % name)
    except AssertionError as e:
        raise AssertionError("%s; its status: %s" % (e, ovs.vsctl(
            "get", "Upcall_Trace", name, "status").strip()))


def send_udp(ovs, ports, ns=None, cpu=None):
    """Sends one UDP datagram to each of 'ports' of NS2_IP from 'ns' (ns1),
    back to back from one process (bash's /dev/udp, no per-packet process),
    pinned to 'cpu' if given: the kernel upcalls them all before
    ovs-vswitchd handles the first."""
    script = "for p in %s; do echo x > /dev/udp/%s/$p; done" % (
        " ".join(str(p) for p in ports), NS2_IP)
    args = ["ip", "netns", "exec", ns or ovs.ns1]
    if cpu is not None:
        args += ["taskset", "-c", str(cpu)]
    ovs.cmd(*(args + ["bash", "-c", script]))


def wait_traces(ovs, session, n, rounds=None, timeout=30):
    """Waits until 'session' has at least 'n' traces (each with 'rounds'
    rounds, if given) and returns them all, in full."""
    def ready():
        listed = ovs.traces(session)
        if len(listed) < n:
            return None
        if rounds is not None and any(t["n_rounds"] < rounds
                                      for t in listed):
            return None
        return listed
    wait_until(ready, timeout=timeout,
               what="%d traces in session %s" % (n, session))
    return ovs.full_traces(session)


def normalized_flows(flows):
    """Datapath flows with their recirculation ids replaced by R: they are
    allocated afresh each time."""
    return sorted(re.sub(r"recirc(_id)?\(0x[0-9a-f]+\)", r"recirc\1(R)", f)
                  for f in flows)
