# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""The packets of traces: options:packet-bytes keeps the first bytes of
each traced packet, and "ovs-upcall-trace pcap" writes them to a pcapng
file that tcpdump reads, each packet commented with its trace and round."""

import os
import shutil
import struct
import subprocess

import pytest

from conftest import wait_until
from test_ovs_upcall_trace import (ICMP12, ICMP21, fails, ok, send,  # noqa
                                   br0)


def pcapng_comments(path):
    """The comments of the enhanced packet blocks of pcapng file 'path', and
    their captured and original lengths."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    pos = 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            caplen, origlen = struct.unpack_from("<II", data, pos + 20)
            opt = pos + 28 + caplen + (-caplen % 4)
            comment = None
            while opt < pos + blen - 4:
                code, olen = struct.unpack_from("<HH", data, opt)
                if code == 1:
                    comment = data[opt + 4:opt + 4 + olen].decode()
                if code == 0:
                    break
                opt += 4 + olen + (-olen % 4)
            out.append((comment, caplen, origlen))
        pos += blen
    return out


def traces(ovs, session):
    return ok(ovs, "list", session, "--json").json()["traces"]


def test_packet_bytes_and_pcap(br0, tmp_path):
    ovs = br0
    ok(ovs, "start", "br0", "icmp", "--port", "p1", "--name", "t1",
       "--packet-bytes", "64")
    ok(ovs, "start", "br0", "icmp", "--port", "p2", "--name", "nopkt")
    send(ovs, ICMP12)
    send(ovs, ICMP21, "p2")
    wait_until(lambda: len(traces(ovs, "t1")) == 1
               and traces(ovs, "t1")[0]["n_rounds"] == 2
               and len(traces(ovs, "nopkt")) == 1)
    trace = ok(ovs, "get", str(traces(ovs, "t1")[0]["id"]),
               "--json").json()
    for r in trace["rounds"]:
        assert r["packet_len"] > 64, r
        assert len(r["packet"]) == 2 * 64, r
        # The Ethernet header as injected.
        assert r["packet"].startswith("505400000002" "505400000001" "0800")
    text = ok(ovs, "get", str(trace["id"])).out
    assert text.count("Packet: 64 of %d bytes kept" %
                      trace["rounds"][0]["packet_len"]) == 2
    # A session without packet-bytes keeps none; its text has no Packet:.
    other = traces(ovs, "nopkt")[0]["id"]
    assert all(r["packet"] is None for r in
               ok(ovs, "get", str(other), "--json").json()["rounds"])
    assert "Packet:" not in ok(ovs, "get", str(other)).out
    # Nothing of it goes into the database.
    assert "5054" not in ovs.vsctl("list", "Upcall_Trace")

    path = str(tmp_path / "t1.pcapng")
    r = ok(ovs, "pcap", "--session", "t1", "-w", path)
    assert r.out == "wrote 2 packets of 1 traces to %s\n" % path
    comments = pcapng_comments(path)
    assert comments == [
        ("upcall trace %#x round %d (session t1, bridge br0, in_port p1, "
         "recirc_id %#x)" % (trace["id"], r["index"], r["recirc_id"]),
         64, r["packet_len"]) for r in trace["rounds"]]

    if not shutil.which("tcpdump"):
        pytest.skip("tcpdump is not installed (build-aux/install-deps test)")
    p = subprocess.run(["tcpdump", "-n", "-r", path], universal_newlines=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2, p.stdout
    assert all("10.0.0.1 > 10.0.0.2: ICMP echo request" in l for l in lines)

    # By trace id, to standard output: the same file.
    r = subprocess.run([os.path.join(os.environ["OVS_BUILDDIR"], "utilities",
                                     "ovs-upcall-trace"),
                        "pcap", hex(trace["id"]), "-w", "-"],
                       cwd=ovs.dir, env=dict(ovs.env), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(path, "rb") as f:
        assert r.stdout == f.read()

    # No packet kept: an error that says how to keep them.
    e = fails(ovs, "pcap", str(other), "-w", str(tmp_path / "none.pcapng"))
    assert "options:packet-bytes" in e.err
    assert not os.path.exists(str(tmp_path / "none.pcapng"))
    fails(ovs, "start", "br0", "icmp", "--name", "big",
          "--packet-bytes", "65536")
