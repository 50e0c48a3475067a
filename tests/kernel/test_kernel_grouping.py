# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Grouping of rounds where the kernel datapath differs from the userspace
one (tests/autotest/upcall-trace-grouping.at covers the rest): a patch port
into a bridge that rewrites before the kernel's conntrack, two identical
packets whose rounds are in flight together, IP fragments that the
kernel's conntrack reassembles, the kernel's SNAT and an ICMP error about
a SNATed flow, two trips through conntrack of one packet and its clone.
Run in the kernel tier's guest (conftest.py)."""

import re

from system_ovs import NS1_IP, NS2_IP, wait_until

from kernel_helpers import create_session, ct_state, recircs, tp_dst


def _replace_flows(ovs, bridge, flows):
    ovs.ofctl("del-flows", bridge)
    flows = flows.replace("P1", ovs.p1).replace("P2", ovs.p2)
    ovs.ofctl("add-flows", bridge, "-", input=flows)


def _traces(ovs, session):
    return ovs.full_traces(session)


def _nw(round_, field):
    m = re.search(r",%s=([0-9.]+)" % field, round_["flow"])
    return m.group(1) if m else None


def test_patch_port_and_rewrite_before_ct(kovs):
    ovs = kovs
    br1 = ovs.bridge + "b"
    ovs.vsctl("add-br", br1, "--", "set", "bridge", br1,
              "datapath_type=system", "fail-mode=secure",
              "--", "add-port", ovs.bridge, "pt0", "--", "set", "interface",
              "pt0", "type=patch", "options:peer=pt1", "ofport_request=3",
              "--", "add-port", br1, "pt1", "--", "set", "interface", "pt1",
              "type=patch", "options:peer=pt0", "ofport_request=1")
    ovs.cleanup.push(ovs.vsctl, "--if-exists", "del-br", br1)
    _replace_flows(ovs, ovs.bridge, "in_port=P1 actions=output:pt0\n"
                   "in_port=pt0 actions=output:P2\n")
    _replace_flows(ovs, br1, "priority=10,ip actions=mod_nw_src:192.0.2.1,"
                   "ct(table=1,zone=5)\n"
                   "table=1,priority=10,ip actions=ct(commit,zone=5),"
                   "output:pt1\n")
    create_session(ovs, "patch", "udp", ovs.p1)
    ovs.ns(ovs.ns1, "bash", "-c", "echo x > /dev/udp/%s/7301" % NS2_IP)

    wait_until(lambda: [t for t in ovs.traces("patch") if t["n_rounds"] >= 2],
               timeout=30, what="a trace with two rounds")
    traces = _traces(ovs, "patch")
    assert len(traces) == 1, traces
    t = traces[0]
    assert t["n_rounds"] == 2 and not t["partial"], t
    r1, r2 = t["rounds"]
    assert recircs(r1["datapath_actions"]) == [r2["recirc_id"]], t
    # Frozen on br1 after the rewrite, in the kernel's conntrack zone 5.
    assert r2["bridge"] == br1, r2
    assert _nw(r1, "nw_src") == NS1_IP and _nw(r2, "nw_src") == "192.0.2.1"
    assert ct_state(r2) == "new|trk" and tp_dst(r2) == 7301, r2
    assert t["missing_rounds"] == [], t


# An Ethernet frame from ns1 to ns2, built and sent twice, back to back,
# through an AF_PACKET socket: same addresses, ports, IP identification
# and payload.
_SEND_TWICE = r"""
import socket, struct, sys
src, dst, ip_src, ip_dst = sys.argv[1:5]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
data = b"twins!"
udp = struct.pack("!HHHH", 5000, 7302, 8 + len(data), 0) + data
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 77, 0, 64, 17, 0,
                 socket.inet_aton(ip_src), socket.inet_aton(ip_dst))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
frame = (bytes.fromhex(dst.replace(":", "")) +
         bytes.fromhex(src.replace(":", "")) + b"\x08\x00" + ip + udp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
s.send(frame)
s.send(frame)
"""


def _mac(ovs, ns):
    words = ovs.ns(ns, "ip", "-o", "link", "show", "eth0").stdout.split()
    return words[words.index("link/ether") + 1]


def test_two_identical_packets_in_flight(kovs):
    ovs = kovs
    # No datapath flow is installed (a flow limit of 0), so that the kernel
    # upcalls both passes of both packets: otherwise the second packet's
    # recirculation may or may not hit the flow that the first one's
    # installed, depending on which handler gets there first.  Both
    # recirculations wait with equal fingerprints; each claims one
    # expectation, and each trace gets its two rounds.
    ovs.vsctl("set", "Open_vSwitch", ".", "other_config:flow-limit=0")
    ovs.appctl("upcall/set-flow-limit", "0")
    create_session(ovs, "twins", "udp,udp_dst=7302", ovs.p1)
    ovs.ns(ovs.ns1, "python3", "-c", _SEND_TWICE, _mac(ovs, ovs.ns1),
           _mac(ovs, ovs.ns2), NS1_IP, NS2_IP)

    wait_until(lambda: len(ovs.traces("twins")) == 2
               and all(t["n_rounds"] == 2 for t in ovs.traces("twins")),
               timeout=30, what="two traces with two rounds each")
    traces = _traces(ovs, "twins")
    for t in traces:
        assert t["n_rounds"] == 2 and not t["partial"], t
        assert t["missing_rounds"] == [], t
        r1, r2 = t["rounds"]
        assert recircs(r1["datapath_actions"]) == [r2["recirc_id"]], t
        assert ct_state(r2) == "new|trk", t
        assert not r1["installed"] and not r2["installed"], t


def test_fragments_reassembled_by_conntrack(kovs):
    ovs = kovs
    # A 2000-byte datagram leaves ns1 in two fragments.  The kernel's
    # conntrack keeps the first, and recirculates the datagram reassembled
    # from both: another packet than either fragment.
    create_session(ovs, "frag", "udp", ovs.p1)
    ovs.ns(ovs.ns1, "bash", "-c",
           "head -c 2000 /dev/zero > /dev/udp/%s/7303" % NS2_IP)

    def ready():
        listed = ovs.traces("frag")
        return len(listed) >= 3 and listed
    wait_until(ready, timeout=30, what="three traces")
    # The fragments' traces report their missing round once it is overdue.
    def missing():
        ts = _traces(ovs, "frag")
        return all(t["missing_rounds"] for t in ts if not t["partial"]) and ts
    wait_until(missing, timeout=10, what="the missing rounds")
    traces = _traces(ovs, "frag")
    assert len(traces) == 3, traces

    fragments = [t for t in traces if not t["partial"]]
    datagram, = [t for t in traces if t["partial"]]
    assert sorted(re.search(r"nw_frag=(\w+)", t["rounds"][0]["flow"]).group(1)
                  for t in fragments) == ["first", "later"], traces
    recirc_id = datagram["rounds"][0]["recirc_id"]
    for t in fragments:
        assert t["n_rounds"] == 1, t
        assert recircs(t["rounds"][0]["datapath_actions"]) == [recirc_id]
        assert [m["recirc_id"] for m in t["missing_rounds"]] == [recirc_id]
    r = datagram["rounds"][0]
    assert datagram["n_rounds"] == 1 and datagram["missing_rounds"] == []
    assert "nw_frag=no" in r["flow"] and tp_dst(r) == 7303, r
    assert ct_state(r) == "new|trk", r


def test_snat_and_an_icmp_error_about_it(kovs):
    ovs = kovs
    # ns1's datagrams leave SNATed to NAT_IP by the kernel's conntrack;
    # ns2 has no listener and answers with an ICMP port unreachable to
    # NAT_IP, which conntrack relates to the connection and translates
    # back, its quoted header included.  Each packet's rounds before and
    # after conntrack form one trace, though NAT changed the addresses
    # (and, for the error, the header it quotes) between them.
    nat_ip = "172.31.250.100"
    _replace_flows(ovs, ovs.bridge,
                   "priority=10,ip,in_port=P1 actions="
                   "ct(commit,zone=1,nat(src=%s),table=1)\n"
                   "priority=10,ip,in_port=P2 actions=ct(zone=1,nat,table=2)\n"
                   "table=1,priority=10,ip actions=output:P2\n"
                   "table=2,priority=10,ct_state=+rel+trk,ip "
                   "actions=output:P1\n" % nat_ip)
    ovs.ns(ovs.ns2, "ip", "neigh", "replace", nat_ip, "lladdr",
           _mac(ovs, ovs.ns1), "dev", "eth0", "nud", "permanent")
    create_session(ovs, "out", "udp", ovs.p1)
    create_session(ovs, "err", "icmp", ovs.p2)
    ovs.ns(ovs.ns1, "bash", "-c", "echo x > /dev/udp/%s/7310" % NS2_IP)

    def two_rounds(session):
        listed = ovs.traces(session)
        return len(listed) == 1 and listed[0]["n_rounds"] == 2 and listed
    wait_until(lambda: two_rounds("out") and two_rounds("err"), timeout=30,
               what="a trace of two rounds in each session")

    out, = _traces(ovs, "out")
    r1, r2 = out["rounds"]
    assert not out["partial"] and out["missing_rounds"] == [], out
    assert recircs(r1["datapath_actions"]) == [r2["recirc_id"]], out
    assert _nw(r1, "nw_src") == NS1_IP and _nw(r2, "nw_src") == nat_ip, out
    assert "snat" in ct_state(r2), r2

    err, = _traces(ovs, "err")
    e1, e2 = err["rounds"]
    assert not err["partial"] and err["missing_rounds"] == [], err
    assert recircs(e1["datapath_actions"]) == [e2["recirc_id"]], err
    assert "icmp_type=3" in e1["flow"] and _nw(e1, "nw_dst") == nat_ip, e1
    assert "rel" in ct_state(e2) and _nw(e2, "nw_dst") == NS1_IP, e2
    assert e2["datapath_actions"].endswith(str(ovs.odp_port(ovs.p1))), e2


def test_ct_forks_and_a_clone(kovs):
    ovs = kovs
    # One packet, two trips through the kernel's conntrack: itself in zone
    # 1, and a clone rewritten (another destination) in zone 2.  The kernel
    # recirculates both; each comes back as its own upcall, in either
    # order, and each is a round of the same trace.
    _replace_flows(ovs, ovs.bridge,
                   "priority=10,udp,in_port=P1 actions=ct(zone=1,table=1),"
                   "clone(mod_nw_dst:172.31.250.99,ct(zone=2,table=2))\n"
                   "table=1,priority=10,udp actions=output:P2\n"
                   "table=2,priority=10,udp actions=drop\n")
    create_session(ovs, "forks", "udp", ovs.p1)
    ovs.ns(ovs.ns1, "bash", "-c", "echo x > /dev/udp/%s/7320" % NS2_IP)

    wait_until(lambda: [t for t in ovs.traces("forks") if t["n_rounds"] >= 3],
               timeout=30, what="a trace with three rounds")
    traces = _traces(ovs, "forks")
    assert len(traces) == 1, traces
    t = traces[0]
    assert t["n_rounds"] == 3 and not t["partial"], t
    assert t["missing_rounds"] == [], t
    r1 = t["rounds"][0]
    later = {r["recirc_id"]: r for r in t["rounds"][1:]}
    ids = recircs(r1["datapath_actions"])
    assert len(ids) == 2 and set(ids) == set(later), t
    own, clone = later[ids[0]], later[ids[1]]
    assert "ct_zone=1" in own["flow"] and _nw(own, "nw_dst") == NS2_IP, own
    assert own["datapath_actions"] == str(ovs.odp_port(ovs.p2)), own
    assert "ct_zone=2" in clone["flow"], clone
    assert _nw(clone, "nw_dst") == "172.31.250.99", clone
    assert clone["drop"], clone
