# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""The datapath flows of traces on the kernel datapath: their life as the
revalidators see it (counters from the kernel's flow stats, deletion),
lookup by UFID, and upcall/trace/purge removing only a session's flows.
Run in the kernel tier's guest (conftest.py)."""

import re

from system_ovs import NS2_IP, wait_until

from kernel_helpers import create_session, send_udp, wait_traces


def _flow_lives(ovs, trace_id):
    return ovs.trace(trace_id)["datapath_flows"]


def test_flow_life_ufid_and_purge(kovs):
    ovs = kovs
    create_session(ovs, "life", "udp", ovs.p1)
    send_udp(ovs, [7301])
    trace = wait_traces(ovs, "life", 1, rounds=2)[0]
    installed = [(i + 1, r["ufid"]) for i, r in enumerate(trace["rounds"])
                 if r["installed"]]
    assert installed, trace
    lives = trace["datapath_flows"]
    assert [(f["round"], f["ufid"]) for f in lives] == installed, lives
    assert all(f["in_datapath"] for f in lives), lives

    # The kernel holds the flows the rounds installed, under those UFIDs.
    dump = ovs.appctl("dpctl/dump-flows", "-m", ovs.dp_name)
    for _, ufid in installed:
        assert ufid in dump, (ufid, dump)
        # Each UFID leads back to the trace.
        assert ovs.appctl_json("upcall/trace/get", ufid)["id"] \
            == trace["id"]

    # More datagrams of other source ports hit the first round's megaflow
    # in the kernel: the revalidators count them into its life.
    send_udp(ovs, [7301, 7301, 7301])
    wait_until(lambda: _flow_lives(ovs, trace["id"])[0]["n_packets"] >= 3,
               timeout=20, what="the kernel's counters in the flow's life")

    # A ping's replies enter from p2: flows the session (on p1) cannot
    # match, which the purge leaves in the kernel.
    ovs.ping(ovs.ns1, NS2_IP, count=1)
    from_p2 = "in_port(%d)" % ovs.odp_port(ovs.p2)
    assert any(from_p2 in f for f in ovs.dp_flows()), ovs.dp_flows()

    out = ovs.appctl("upcall/trace/purge", "life")
    n = int(re.match(r"removed (\d+) of (\d+) datapath flows", out).group(1))
    assert n >= 1, out

    def gone():
        lives = _flow_lives(ovs, trace["id"])
        return all(not f["in_datapath"] for f in lives) and lives
    lives = wait_until(gone, timeout=20, what="the purge in the flow's life")
    for f in lives:
        assert f["events"][-1]["change"] == "deleted", f
        assert f["events"][-1]["detail"] == "purge", f
    dump = ovs.appctl("dpctl/dump-flows", "-m", ovs.dp_name)
    for _, ufid in installed:
        assert ufid not in dump, (ufid, dump)
        # Still found by UFID once the flow is gone.
        assert ovs.appctl_json("upcall/trace/get", ufid)["id"] \
            == trace["id"]
    assert any(from_p2 in f for f in ovs.dp_flows()), ovs.dp_flows()
