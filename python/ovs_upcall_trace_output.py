# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
#
# The output of ovs-upcall-trace(8): JSON, text and tables on standard
# output, and the pcapng blocks of "ovs-upcall-trace pcap".  The script
# (utilities/ovs-upcall-trace.in) imports this module from where it finds
# the Open vSwitch Python library: "make install" puts both under
# pkgdatadir, and the build links this file next to the "ovs" package of
# the build tree.

import json
import struct
import sys


def print_json(obj, compact=False):
    if compact:
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    else:
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def print_text(text):
    if text and not text.endswith("\n"):
        text += "\n"
    sys.stdout.write(text)
    sys.stdout.flush()


def print_table(headings, rows):
    widths = [max([len(h)] + [len(r[i]) for r in rows])
              for i, h in enumerate(headings)]
    for r in [headings] + rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths))
        sys.stdout.write(line.rstrip() + "\n")


# pcapng (draft-ietf-opsawg-pcapng): a section header, one Ethernet
# interface, then one enhanced packet block per kept packet, with its trace
# and round in the packet's comment.
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
LINKTYPE_ETHERNET = 1


def _pcapng_block(block_type, body):
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return (struct.pack("<II", block_type, length) + body
            + struct.pack("<I", length))


def _pcapng_option(code, value):
    return (struct.pack("<HH", code, len(value)) + value
            + b"\0" * (-len(value) % 4))


def pcapng_header():
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    idb = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 0)
    return _pcapng_block(PCAPNG_SHB, shb) + _pcapng_block(PCAPNG_IDB, idb)


def pcapng_packet(time_ms, data, orig_len, comment):
    usec = time_ms * 1000
    body = struct.pack("<IIIII", 0, usec >> 32, usec & 0xffffffff,
                       len(data), orig_len)
    body += data + b"\0" * (-len(data) % 4)
    body += _pcapng_option(1, comment.encode()) + _pcapng_option(0, b"")
    return _pcapng_block(PCAPNG_EPB, body)


def pcapng_packets(traces):
    """The enhanced packet blocks of the packets that 'traces' (as
    upcall/trace/get gives them in JSON) kept, in order, each with its
    trace id and round in its comment."""
    blocks = []
    for t in traces:
        for r in t["rounds"]:
            if r.get("packet") is None:
                continue
            comment = ("upcall trace 0x%x round %d (session %s, bridge %s, "
                       "in_port %s, recirc_id 0x%x)"
                       % (t["id"], r["index"], t["session"], r["bridge"],
                          r["in_port_name"] or r["in_port"],
                          r["recirc_id"]))
            blocks.append(pcapng_packet(r["time_ms"],
                                        bytes.fromhex(r["packet"]),
                                        r["packet_len"], comment))
    return blocks
