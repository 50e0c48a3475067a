#!/usr/bin/env python3
# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""End-to-end benchmarks of live upcall tracing.

Runs sandboxed ovsdb-server and ovs-vswitchd (dummy datapath, no root) from
a stock Open vSwitch build and from ours, feeds them the same UDP packets of
distinct flows, with megaflows disabled so that every packet is an upcall,
and measures:

  throughput  upcalls per second until all are handled, per case, the
              median of --runs fresh daemons (cases interleaved);
  callgrind   instructions per upcall inside upcall_cb() under
              valgrind --tool=callgrind --toggle-collect=upcall_cb: counters
              zeroed after a warm-up, two packet counts, the difference,
              with the upcalls handled in the main thread;
  callgrind-pmd
              the same with the input ports of type dummy-pmd: a PMD thread
              handles the upcalls, as datapath threads do in production
              (see callgrind());
  memory      VmRSS and the engine's accounting with 10,000 and 100,000
              stored traces, and under sustained tracing at max_traces=64.

Cases: stock; ours with no session; 1 non-matching session; 1000 and
10000 non-matching sessions; 1 session matching every upcall; stock with
10,000 rows of other configuration.

The load generator connects to a dummy port's "pstream" unix socket and
writes framed packets (2-byte length, Ethernet frame; lib/netdev-dummy.c),
spread over several connections: ovs-vswitchd reads them in its main loop
and the non-PMD dummy datapath upcalls them in the main thread (or, for
callgrind-pmd, a PMD thread polls them and upcalls them).  Progress is
read from "dpctl/show" (lookups missed/lost) through a persistent unixctl
connection.

Every process started is stopped on exit, on error and on SIGINT/SIGTERM.
Results are written as JSON (--out) for bench-table.py.  The sandboxes,
their packets and their stopping are in bench_sandbox.py, next to this
script.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time


# bench_sandbox.py is next to this script, whatever the current directory.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import bench_sandbox  # noqa: E402
from bench_sandbox import (  # noqa: E402
    SINK, Sandbox, chunks_for, frames, log, on_signal, stop_all, wait_for)

# The pipeline of the RFC that started the project (and of
# utilities/upcall-trace-demo), from any input port to the sink: every
# packet is upcalled twice, before and after conntrack.
CT_FLOWS = """\
priority=20,in_port=%(sink)d actions=drop
priority=10,ip actions=ct(table=1,zone=1)
priority=1 actions=drop
table=1,priority=10,ct_state=+new+trk,ip actions=ct(commit,zone=1),output:%(sink)d
table=1,priority=10,ct_state=+est+trk,ip actions=output:%(sink)d
table=1,priority=1 actions=drop
""" % {"sink": SINK}

# One upcall per packet and no conntrack state that grows with the number
# of flows: for the sustained memory run.
PLAIN_FLOWS = """\
priority=20,in_port=%(sink)d actions=drop
priority=10,udp actions=output:%(sink)d
priority=1 actions=drop
""" % {"sink": SINK}

CASES = [
    # name, build, sessions
    ("stock", "stock", []),
    ("no session", "ours", []),
    ("1 non-matching", "ours", ["nm"]),
    ("1000 non-matching", "ours", ["nm"] * 1000),
    ("10000 non-matching", "ours", ["nm"] * 10000),
    ("1 matching all", "ours", ["all"]),
    # Stock with 10,000 rows of configuration that do nothing on the upcall
    # path (Flow_Sample_Collector_Set rows without IPFIX), to tell what any
    # 10,000 rows cost (the IDL's replica, the heap they leave) from what
    # 10,000 sessions cost.
    ("stock 10000 other rows", "stock", ["row"] * 10000),
]
DEFAULT_CASES = [c[0] for c in CASES]


def session_specs(kinds, **kw):
    specs = []
    for i, kind in enumerate(kinds):
        if kind == "nm":
            # Filters that differ only in udp_src, as in the issue that
            # set the targets; never a source port of ours (1024-51023).
            specs.append(("nm%d" % i, "udp,udp_src=%d" % (52000 + i),
                          None, None))
        else:
            specs.append(("all%d" % i, "udp", None, None))
    return specs


def build_for(args, kind):
    return args.stock if kind == "stock" else args.ours


def start_case(args, case, valgrind=False, flows=CT_FLOWS,
               port_type="dummy"):
    name, kind, kinds = case
    sb = Sandbox(build_for(args, kind), args.workdir, name, valgrind)
    try:
        sb.start()
        sb.setup_bridge(flows, port_type=port_type)
        sb.add_sessions(session_specs([k for k in kinds if k != "row"]))
        sb.add_other_rows(kinds.count("row"))
        sb.connect_load()
    except BaseException:
        sb.cleanup(keep=True)
        raise
    return sb


# Throughput.

def throughput(args, results):
    warm = chunks_for(frames(9, 0, args.warmup))
    measured_frames = frames(3, 0, args.packets)
    measured = chunks_for(measured_frames)
    per = {c[0]: [] for c in CASES}
    per_cpu = {c[0]: [] for c in CASES}
    waits = {c[0]: [] for c in CASES}
    for run in range(args.runs):
        for case in CASES:
            sb = start_case(args, case)
            try:
                sb.send(warm, 2 * args.warmup)
                elapsed, upcalls, hits, lost, cpu, wait = sb.send(
                    measured, 2 * args.packets)
                if hits:
                    raise RuntimeError("%s: %d datapath hits: not every "
                                       "packet was an upcall" % (case[0],
                                                                 hits))
                rate = upcalls / elapsed
                per[case[0]].append(rate)
                per_cpu[case[0]].append(upcalls / cpu)
                waits[case[0]].append(wait / elapsed)
                if lost:
                    log("%s: %d upcalls did not install a flow" % (case[0],
                                                                  lost))
                log("throughput run %d/%d %-18s %8.0f upcalls/s, %8.0f per "
                    "CPU s (%d upcalls, %.2f s, waited for a CPU %.0f%%)"
                    % (run + 1, args.runs, case[0], rate, upcalls / cpu,
                       upcalls, elapsed, 100 * wait / elapsed))
            finally:
                sb.cleanup()
    results["throughput"] = {
        "packets": args.packets, "upcalls": 2 * args.packets,
        "runs": args.runs,
        "cases": {name: {"runs": rates, "median": statistics.median(rates),
                         "cpu_runs": per_cpu[name],
                         "cpu_median": statistics.median(per_cpu[name]),
                         "cpu_wait": statistics.median(waits[name])}
                  for name, rates in per.items()}}


# Callgrind.

def callgrind_total(sb, before):
    """Total Ir of the newest dump not in 'before'."""
    files = set(glob.glob(os.path.join(sb.dir, "callgrind.out*")))
    new = sorted(files - before, key=os.path.getmtime)
    if not new:
        raise RuntimeError("no callgrind dump")
    with open(new[-1]) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]), new[-1]
    raise RuntimeError("no totals in " + new[-1])


def callgrind_control(sb, flag):
    subprocess.run(["callgrind_control", flag, str(sb.pid())],
                   capture_output=True, check=True, timeout=300)


def callgrind(args, results, port_type="dummy", key="callgrind"):
    """Instructions per upcall inside upcall_cb().  With 'port_type'
    "dummy", the main thread handles the upcalls; with "dummy-pmd", a PMD
    thread does, as it does for real ports of the userspace datapath (and a
    handler thread for the kernel's): its allocations then come from its own
    malloc arena, not from the main thread's, which holds the configuration
    (the IDL's replica, the sessions) and whose state after a large
    reconfiguration changes what every allocation there costs."""
    a, b = args.cg_packets
    warm = chunks_for(frames(9, 0, args.cg_warmup))
    first = chunks_for(frames(4, 0, a))
    second = chunks_for(frames(5, 0, b))
    out = {}
    for case in CASES:
        sb = start_case(args, case, valgrind=True, port_type=port_type)
        try:
            sb.send(warm, 2 * args.cg_warmup)
            points = []
            for chunks, n in ((first, a), (second, b)):
                callgrind_control(sb, "-z")
                before = set(glob.glob(os.path.join(sb.dir,
                                                    "callgrind.out*")))
                upcalls = sb.send(chunks, 2 * n)[1]
                callgrind_control(sb, "-d")
                wait_for(lambda: callgrind_total(sb, before), 120,
                         "callgrind dump")
                total, path = callgrind_total(sb, before)
                points.append((upcalls, total))
                if case[0] in args.cg_profile:
                    keep = os.path.join(args.workdir, "%s.%s.out"
                                        % (key, re.sub(r"\W", "_", case[0])))
                    shutil.copy(path, keep)
            (u1, i1), (u2, i2) = points
            per_upcall = (i2 - i1) / (u2 - u1)
            out[case[0]] = {"points": points, "per_upcall": per_upcall}
            log("%s %-18s %8.0f instructions/upcall (%s)"
                % (key, case[0], per_upcall, points))
        finally:
            sb.cleanup()
    results[key] = {"packets": [a, b], "cases": out}


def callgrind_pmd(args, results):
    callgrind(args, results, "dummy-pmd", "callgrind-pmd")


# Memory.

def memory_stored(args, n_traces, max_trace_size):
    """RSS and engine accounting with 'n_traces' stored traces: two
    sessions (a session holds at most 65536), each matching half of the
    packets (UDP port 53 or 54), max_traces = n_traces / 2, so nothing is evicted.  The same
    packets through a daemon with no session give the RSS growth that is
    not the traces' (datapath flows, ukeys, conntrack)."""
    half = n_traces // 2
    pkts = [f for pair in zip(frames(1, 0, half, 53),
                              frames(2, 0, half, 54))
            for f in pair]
    chunks = chunks_for(pkts)
    warm = chunks_for(frames(9, 0, 2000, 99))   # Matches no session.
    out = {}
    for label, specs in (
            ("baseline", []),
            ("traced", [("m1", "udp,udp_dst=53", half,
                         {"max-trace-size": max_trace_size}),
                        ("m2", "udp,udp_dst=54", half,
                         {"max-trace-size": max_trace_size})])):
        sb = Sandbox(args.ours, args.workdir, "memory %d %s"
                     % (n_traces, label))
        try:
            sb.start()
            sb.setup_bridge(CT_FLOWS)
            sb.add_sessions(specs)
            sb.connect_load()
            sb.send(warm, 4000)
            rss0 = sb.rss_kb()
            sb.send(chunks, 2 * len(pkts))
            time.sleep(1)
            rss1 = sb.rss_kb()
            mem = sb.memory_show()
            show = json.loads(sb.appctl_json("upcall/trace/show"))
            out[label] = {
                "rss_before_kb": rss0, "rss_after_kb": rss1,
                "rss_growth_kb": rss1 - rss0, "memory_show": mem,
                "n_traces": sum(s["counters"]["n_traces"]
                                for s in show["sessions"]),
                "n_evicted": sum(s["counters"]["n_evicted"]
                                 for s in show["sessions"]),
                "n_truncated": sum(s["counters"]["n_truncated"]
                                   for s in show["sessions"]),
                "engine_bytes": sum(s["bytes"] for s in show["sessions"])}
            log("memory %d %s: RSS %d -> %d kB, %s" % (
                n_traces, label, rss0, rss1,
                {k: v for k, v in mem.items() if k.startswith("upcall")}))
        finally:
            sb.cleanup()
    out["bound_bytes"] = 2 * half * max_trace_size
    out["sessions"] = 2
    out["max_traces"] = half
    out["max_trace_size"] = max_trace_size
    return out


def memory_sustained(args, max_trace_size):
    """RSS sampled every tenth of 'args.sustained' upcalls with one session
    tracing every upcall at max_traces=64 (circular), and the same packets
    through a daemon with no session.  One upcall per packet (no
    conntrack), datapath flows idle out after 1 s, so that only tracing
    could make memory grow."""
    total = args.sustained
    step = max(total // 10, 1)
    out = {"upcalls": total, "max_traces": 64,
           "max_trace_size": max_trace_size,
           "bound_bytes": 64 * max_trace_size}
    for label, specs in (
            ("traced", [("sustained", "udp", 64,
                         {"max-trace-size": max_trace_size})]),
            ("baseline", [])):
        sb = Sandbox(args.ours, args.workdir, "sustained " + label)
        try:
            sb.start()
            sb.setup_bridge(PLAIN_FLOWS, max_idle=1000)
            sb.add_sessions(specs)
            sb.connect_load()
            sb.send(chunks_for(frames(9, 0, 2000)), 2000)
            samples = [(0, sb.rss_kb(), 0)]
            t0 = time.monotonic()
            for start in range(0, total, step):
                n = min(step, total - start)
                sb.send(chunks_for(frames(6, start, n)), n)
                mem = sb.memory_show()
                samples.append((start + n, sb.rss_kb(),
                                mem.get("upcall_trace_kbytes", 0)))
            elapsed = time.monotonic() - t0
            show = (json.loads(sb.appctl_json("upcall/trace/show"))
                    if specs else {"sessions": []})
            out[label] = {
                "samples": samples, "seconds": elapsed,
                "n_traces_total": sum(s["counters"]["n_traces_total"]
                                      for s in show["sessions"]),
                "n_traces": sum(s["counters"]["n_traces"]
                                for s in show["sessions"]),
                "engine_bytes": sum(s["bytes"] for s in show["sessions"])}
            log("sustained %s: %d upcalls in %.0f s, RSS samples %s"
                % (label, total, elapsed, [s[1] for s in samples]))
        finally:
            sb.cleanup()
    return out


def memory_shared(args, n_packets, n_sessions=4):
    """memory/show against RSS when sessions share what they store:
    'n_sessions' sessions with the same filter, so that every traced packet
    is one trace in each of them (the rounds are shared), against the same
    packets through a daemon with no session."""
    pkts = frames(7, 0, n_packets)
    chunks = chunks_for(pkts)
    warm = chunks_for(frames(9, 0, 2000, 99))
    out = {"packets": n_packets, "sessions": n_sessions}
    for label, specs in (
            ("baseline", []),
            ("shared", [("s%d" % i, "udp,udp_dst=53", n_packets, {})
                        for i in range(n_sessions)])):
        sb = Sandbox(args.ours, args.workdir, "memory shared " + label)
        try:
            sb.start()
            sb.setup_bridge(CT_FLOWS)
            sb.add_sessions(specs)
            sb.connect_load()
            sb.send(warm, 4000)
            rss0 = sb.rss_kb()
            sb.send(chunks, 2 * n_packets)
            time.sleep(1)
            rss1 = sb.rss_kb()
            mem = sb.memory_show()
            out[label] = {"rss_growth_kb": rss1 - rss0, "memory_show": mem}
            log("memory shared %s: RSS %d -> %d kB, %s" % (
                label, rss0, rss1,
                {k: v for k, v in mem.items() if k.startswith("upcall")}))
        finally:
            sb.cleanup()
    return out


def memory(args, results):
    out = {"stored": {}}
    for n in args.mem_traces:
        out["stored"][str(n)] = memory_stored(args, n, args.max_trace_size)
    out["shared"] = memory_shared(args, args.mem_shared)
    out["sustained"] = memory_sustained(args, args.max_trace_size)
    results["memory"] = out


# Reading.

def reads(args, results):
    """Time of upcall/trace/list, summary and get (text, through
    ovs-appctl) with args.read_traces stored two-round traces in one
    session: what reading costs the main thread, which also handles the
    dummy datapath's upcalls, and how long a reader waits."""
    n = args.read_traces
    out = {"traces": n}
    sb = Sandbox(args.ours, args.workdir, "reads")
    try:
        sb.start()
        sb.setup_bridge(CT_FLOWS)
        sb.add_sessions([("reads", "udp", n, {})])
        sb.connect_load()
        sb.send(chunks_for(frames(3, 0, n)), 2 * n)
        show = json.loads(sb.appctl_json("upcall/trace/show"))
        session = show["sessions"][0]
        out["stored"] = session["counters"]["n_traces"]
        for name, cmd in (
                ("list", ["upcall/trace/list"]),
                ("summary", ["upcall/trace/summary"]),
                ("get", ["upcall/trace/get",
                         "0x%x" % session["last_trace_id"]])):
            times = []
            for _ in range(args.read_runs):
                t0 = time.monotonic()
                text = sb.tool("ovs-appctl", *cmd)
                times.append(time.monotonic() - t0)
            out[name] = {"seconds": statistics.median(times),
                         "runs": times, "bytes": len(text)}
            log("reads %s over %d traces: %.3f s (%d bytes)"
                % (name, out["stored"], out[name]["seconds"], len(text)))
    finally:
        sb.cleanup()
    results["reads"] = out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stock", required=True, help="stock OVS build tree")
    p.add_argument("--ours", required=True, help="our OVS build tree")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True, help="JSON results")
    p.add_argument("--phases",
                   default="throughput,callgrind,callgrind-pmd,memory,reads")
    p.add_argument("--packets", type=int, default=60000,
                   help="packets per throughput run (2 upcalls each)")
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--cg-packets", default="200,1000",
                   help="the two packet counts under callgrind")
    p.add_argument("--cg-warmup", type=int, default=100)
    p.add_argument("--cg-toggle",
                   default=bench_sandbox.CALLGRIND_TOGGLE,
                   help="function whose inclusive cost is counted, for "
                   "profiling (the table's targets assume upcall_cb)")
    p.add_argument("--cg-profile", default="1 matching all,no session",
                   help="cases whose callgrind dump is kept")
    p.add_argument("--cases", default=",".join(DEFAULT_CASES),
                   help="throughput and callgrind cases (stock is needed "
                   "for ratios)")
    p.add_argument("--mem-traces", default="10000,100000")
    p.add_argument("--mem-shared", type=int, default=10000,
                   help="packets for the memory run with shared rounds")
    p.add_argument("--read-traces", type=int, default=65536)
    p.add_argument("--read-runs", type=int, default=3)
    p.add_argument("--max-trace-size", type=int, default=16384)
    p.add_argument("--sustained", type=int, default=1000000,
                   help="traced upcalls in the sustained memory run")
    args = p.parse_args()
    args.cg_packets = [int(x) for x in args.cg_packets.split(",")]
    args.cg_profile = args.cg_profile.split(",")
    args.mem_traces = [int(x) for x in args.mem_traces.split(",")]
    # Read by Sandbox.start() for sandboxes under callgrind.
    bench_sandbox.CALLGRIND_TOGGLE = args.cg_toggle
    wanted = args.cases.split(",")
    CASES[:] = [c for c in CASES if c[0] in wanted]
    args.stock = os.path.abspath(args.stock)
    args.ours = os.path.abspath(args.ours)
    os.makedirs(args.workdir, exist_ok=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    results = {"args": {k: v for k, v in vars(args).items()}}
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        results.update({k: v for k, v in old.items() if k != "args"})
    try:
        for phase in args.phases.split(","):
            t0 = time.monotonic()
            {"throughput": throughput, "callgrind": callgrind,
             "callgrind-pmd": callgrind_pmd, "memory": memory,
             "reads": reads}[phase](args, results)
            results.setdefault("seconds", {})[phase] = time.monotonic() - t0
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
