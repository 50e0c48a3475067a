# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Geneve on the kernel datapath: the kernel reports a received packet's
Geneve options in their raw form, as the userspace datapath does; the
trace must show them as the tun_metadataN fields of the bridge's TLV map,
as ofproto/trace does, and filters on tun_id, tun_src and tun_metadataN
must match them.  Run in the kernel tier's guest (conftest.py).

Both tunnel endpoints are on this host: the bridge sends what enters from
p1 out of Geneve port gA (10.250.0.1 -> 10.250.0.2, with an option set
from the OpenFlow table), the kernel delivers the encapsulated datagram
locally to the Geneve socket, and the packet comes back up from port gB
(10.250.0.2 <- 10.250.0.1), with its options, as from another chassis."""

import re

from system_ovs import NS2_IP, wait_until

from kernel_helpers import create_session, send_udp, wait_traces

LOCAL_IP = "10.250.0.1"
REMOTE_IP = "10.250.0.2"


def _geneve_loop(ovs):
    dev = "utgnv" + ovs.tag
    ovs.cmd("ip", "link", "add", dev, "type", "dummy")
    ovs.cleanup.push(ovs.cmd, "ip", "link", "del", dev)
    for ip in (LOCAL_IP, REMOTE_IP):
        ovs.cmd("ip", "addr", "add", ip + "/32", "dev", dev)
    ovs.cmd("ip", "link", "set", dev, "up")
    ovs.vsctl("add-port", ovs.bridge, "gA", "--", "set", "interface", "gA",
              "type=geneve", "options:local_ip=" + LOCAL_IP,
              "options:remote_ip=" + REMOTE_IP, "options:key=123",
              "ofport_request=10",
              "--", "add-port", ovs.bridge, "gB", "--", "set", "interface",
              "gB", "type=geneve", "options:local_ip=" + REMOTE_IP,
              "options:remote_ip=" + LOCAL_IP, "options:key=123",
              "ofport_request=11")
    ovs.ofctl("add-tlv-map", ovs.bridge,
              "{class=0xffff,type=0x80,len=4}->tun_metadata0")
    ovs.ofctl("del-flows", ovs.bridge)
    flows = ("priority=10,udp,in_port=%s "
             "actions=set_field:0x1234->tun_metadata0,output:gA\n"
             "priority=10,udp,in_port=gB,tun_metadata0=0x1234 "
             "actions=output:%s\n"
             "priority=0 actions=drop\n" % (ovs.p1, ovs.p2))
    ovs.ofctl("add-flows", ovs.bridge, "-", input=flows)


def test_geneve_options_and_tunnel_filters(kovs):
    ovs = kovs
    _geneve_loop(ovs)
    # What leaves through the tunnel, and what comes back from it: each a
    # packet of its own (a new upcall with recirc_id 0 from the Geneve
    # vport), traced by the session whose filter names its tunnel.
    create_session(ovs, "out", "udp", ovs.p1)
    create_session(ovs, "md", "udp,tun_metadata0=0x1234")
    create_session(ovs, "src", "udp,tun_id=123,tun_src=%s" % LOCAL_IP)
    create_session(ovs, "other", "udp,tun_metadata0=0x4321")

    send_udp(ovs, [7401])
    out = wait_traces(ovs, "out", 1)[0]
    r = out["rounds"][0]
    assert "set(tunnel(" in r["datapath_actions"], r
    assert "dst=%s" % REMOTE_IP in r["datapath_actions"], r

    for name in ("md", "src"):
        t = wait_traces(ovs, name, 1)[0]
        assert t["n_rounds"] == 1 and not t["partial"], t
        r = t["rounds"][0]
        # As ofproto/trace shows a tunnelled flow: the options named by the
        # TLV map, not the datapath's raw bytes.
        assert re.search(r"tun_id=0x7b,tun_src=%s,tun_dst=%s,"
                         % (re.escape(LOCAL_IP), re.escape(REMOTE_IP)),
                         r["flow"]), r["flow"]
        assert "tun_metadata0=0x1234" in r["flow"], r["flow"]
        assert "in_port=11" in r["flow"], r["flow"]
        # Translation does not touch the tunnel metadata.
        assert r["final_flow_unchanged"] is True, r
        assert "tun_metadata0=0x1234" in r["megaflow"], r["megaflow"]
        assert r["datapath_actions"] == str(ovs.odp_port(ovs.p2)), r

    # The packet made it through the tunnel to ns2, and nothing matched a
    # session for another option value.
    assert ovs.traces("other") == []
