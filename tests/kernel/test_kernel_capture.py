# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Capture on the Linux kernel datapath, with real packets through the
openvswitch module and the kernel's conntrack (zone 1, the rules of the RFC
cover letter): rounds grouped under one trace id, partial traces, no
observer effect, flows sharing a frozen state.  Run in the kernel tier's
guest (conftest.py)."""

from system_ovs import NS2_IP, wait_until

from kernel_helpers import (create_session, ct_state, normalized_flows,
                            recircs, send_udp, tp_dst, wait_traces)


def test_ct_rounds_grouped_under_one_trace_id(kovs):
    ovs = kovs
    create_session(ovs, "grp", "icmp", ovs.p1)
    assert "1 received" in ovs.ping(ovs.ns1, NS2_IP, count=1).stdout

    traces = wait_traces(ovs, "grp", 1, rounds=2)
    assert len(traces) == 1, traces         # The reply came in on p2.
    t = traces[0]
    assert t["n_rounds"] == 2 and not t["partial"], t
    r1, r2 = t["rounds"]
    # The first pass sent the packet through the kernel's conntrack and
    # recirculated it; the thawed round, with the state conntrack gave it,
    # is in the same trace.
    assert r1["recirc_id"] == 0 and ct_state(r1) is None
    assert "ct(zone=1)" in r1["datapath_actions"]
    assert recircs(r1["datapath_actions"]) == [r2["recirc_id"]], t
    assert ct_state(r2) == "new|trk"
    assert r2["datapath_actions"].endswith(",%d" % ovs.odp_port(ovs.p2))
    # Both megaflows are in the kernel, under the UFIDs the rounds give.
    dumped = ovs.appctl("dpctl/dump-flows", "-m", ovs.dp_name)
    for r in (r1, r2):
        assert r["installed"] is True, r
        assert r["ufid"] and r["ufid"] in dumped, (r["ufid"], dumped)


def test_partial_trace_from_a_frozen_state_of_untraced_packets(kovs):
    ovs = kovs
    # Untraced: the first pass and the +new megaflows get installed, with
    # the frozen state of the recirculation.
    assert "1 received" in ovs.ping(ovs.ns1, NS2_IP, count=1).stdout
    # recirc_id(0),in_port(P1),...,actions:ct(zone=1),recirc(R)
    first_pass = [f for f in ovs.dp_flows()
                  if f.startswith("recirc_id(0),in_port(%d),"
                                  % ovs.odp_port(ovs.p1))]
    assert len(first_pass) == 1, ovs.dp_flows()
    recirc_id, = recircs(first_pass[0])

    create_session(ovs, "part", "icmp", ovs.p1)
    # A new ping: its first request is +new, handled by those megaflows in
    # the kernel; its second is +est, which no megaflow covers yet: traced
    # from the thaw on, as a partial trace.
    assert "2 received" in ovs.ping(ovs.ns1, NS2_IP, count=2).stdout
    traces = wait_traces(ovs, "part", 1)
    assert len(traces) == 1, traces
    t = traces[0]
    assert t["partial"] and t["n_rounds"] == 1, t
    r = t["rounds"][0]
    assert r["recirc_id"] == recirc_id
    assert ct_state(r) == "est|trk"
    assert "ct_state=+est+trk" in r["translation"]
    assert r["datapath_actions"].endswith(str(ovs.odp_port(ovs.p2)))


def _traffic(ovs):
    assert "2 received" in ovs.ping(ovs.ns1, NS2_IP, count=2).stdout
    send_udp(ovs, [7001])


def test_no_observer_effect_on_the_kernel_flows(kovs):
    ovs = kovs
    _traffic(ovs)
    untraced = normalized_flows(ovs.dp_flows())
    assert untraced

    # The same traffic again from scratch (no flows, no connections), now
    # traced: the kernel must get exactly the same flows.
    ovs.appctl("revalidator/purge")
    ovs.appctl("dpctl/flush-conntrack", ovs.dp_name)
    wait_until(lambda: not ovs.dp_flows(), what="the datapath to be empty")
    create_session(ovs, "obs", "ip")
    _traffic(ovs)
    traced = normalized_flows(ovs.dp_flows())
    assert traced == untraced
    traces = ovs.full_traces("obs")
    assert any(tp_dst(r) == 7001 for t in traces for r in t["rounds"])
    assert any("icmp" in r["flow"] for t in traces for r in t["rounds"])


def test_traced_packet_reuses_frozen_state_of_untraced_one(kovs):
    ovs = kovs
    # Every microflow misses, so the traced packet's first pass is upcalled
    # even though an untraced packet of the same megaflow came first.
    ovs.appctl("upcall/disable-megaflows")
    send_udp(ovs, [7001])               # Untraced.
    wait_until(lambda: [f for f in ovs.dp_flows()
                        if f.startswith("recirc_id(0)") and "dst=7001" in f],
               what="the untraced packet's flow")
    flow, = [f for f in ovs.dp_flows()
             if f.startswith("recirc_id(0)") and "dst=7001" in f]
    recirc_id, = recircs(flow)

    create_session(ovs, "reuse", "udp,udp_dst=7002", ovs.p1)
    send_udp(ovs, [7002])
    traces = wait_traces(ovs, "reuse", 1, rounds=2)
    assert len(traces) == 1, traces
    t = traces[0]
    # Its recirculation thawed the frozen state the untraced packet
    # created, and its round there is still linked to its trace.
    assert t["n_rounds"] == 2 and not t["partial"], t
    r1, r2 = t["rounds"]
    assert recircs(r1["datapath_actions"]) == [recirc_id]
    assert r2["recirc_id"] == recirc_id
    assert tp_dst(r1) == tp_dst(r2) == 7002
    assert ct_state(r2) == "new|trk"


def test_two_udp_flows_share_a_frozen_state(kovs):
    ovs = kovs
    ovs.appctl("upcall/disable-megaflows")
    create_session(ovs, "two", "udp", ovs.p1)
    # Both first passes are upcalled before either recirculation: two
    # expectations wait on the same recirc_id at once.
    send_udp(ovs, [7011, 7012])
    traces = wait_traces(ovs, "two", 2, rounds=2)
    assert len(traces) == 2, traces
    by_port = {}
    for t in traces:
        assert t["n_rounds"] == 2 and not t["partial"], t
        ports = {tp_dst(r) for r in t["rounds"]}
        assert len(ports) == 1, t           # Not mixed.
        by_port[ports.pop()] = t
        assert ct_state(t["rounds"][1]) == "new|trk"
    assert sorted(by_port) == [7011, 7012]
    shared = {t["rounds"][1]["recirc_id"] for t in traces}
    assert len(shared) == 1, traces         # One frozen state.
