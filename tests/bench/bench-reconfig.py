#!/usr/bin/env python3
# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""The cost of one unrelated reconfiguration with and without sessions.

On a bridge with --ports dummy ports, times one reconfiguration that has
nothing to do with tracing (an Interface's external_ids changed, with
ovs-vsctl, which waits for ovs-vswitchd to apply it: what a controller such
as OVN does all the time) with no session, with --sessions sessions (each on
its own port, with a filter), and with no session again.  A second series
changes an Interface's other_config instead, which, unlike external_ids,
makes ovs-vswitchd look at the interfaces again (so our code resolves the
sessions' ports again).

Two figures per case, medians of --runs reconfigurations: the wall time of
the ovs-vsctl command, and the CPU time of ovs-vswitchd's main thread per
reconfiguration (which excludes ovs-vsctl and ovsdb-server and is steadier
on a loaded machine), and that of all its threads.  The target, for
ovs-vswitchd's main thread, where reconfiguration runs, is sessions/no
sessions <= 1.10.

A benchmark, not a test: it fails only on an error.  It stops what it
started.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

TARGET = 1.10
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Sandbox:
    def __init__(self, ours, workdir):
        self.ours = ours
        self.dir = os.path.join(workdir, "reconfig")
        os.makedirs(self.dir, exist_ok=True)
        env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR",
                    "OVS_SYSCONFDIR"):
            env[var] = self.dir
        env["PATH"] = os.pathsep.join(
            [os.path.join(ours, d) for d in ("utilities", "vswitchd",
                                             "ovsdb")] + [env["PATH"]])
        self.env = env

    def run(self, *argv, **kwargs):
        return subprocess.run(list(argv), cwd=self.dir, env=self.env,
                              check=True, universal_newlines=True,
                              stdout=subprocess.PIPE, **kwargs).stdout

    def vsctl(self, *args):
        return self.run("ovs-vsctl", "--timeout=120", *args)

    def start(self):
        self.run("ovsdb-tool", "create", "conf.db",
                 os.path.join(self.ours, "vswitchd", "vswitch.ovsschema"))
        self.run("ovsdb-server", "--detach", "--no-chdir", "--pidfile",
                 "--log-file", "--remote=punix:%s/db.sock" % self.dir,
                 "conf.db")
        self.vsctl("--no-wait", "init")
        self.run("ovs-vswitchd", "--enable-dummy", "--disable-system",
                 "--disable-system-route", "--detach", "--no-chdir",
                 "--pidfile", "--log-file", "-vconsole:off")

    def pid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read())

    def stop(self):
        for name in ("ovs-vswitchd", "ovsdb-server"):
            try:
                pid = self.pid(name)
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)


def main_thread_cpu(pid):
    """CPU time of the main thread of 'pid', in seconds: from schedstat
    (nanoseconds) when the kernel has it, else from stat (clock ticks)."""
    try:
        with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_cpu(pid):
    """CPU time of every thread of 'pid', in seconds (clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def warm_up(sb, ports):
    """Reconfigures until ovs-vswitchd settles after a big change (1000 new
    ports or sessions): until two batches of 10 cost about the same."""
    previous = None
    for _ in range(20):
        cpu = measure(sb, 10, ports, "external_ids")["cpu_ms"]
        if previous is not None and abs(cpu - previous) <= 0.2 * max(
                previous, 0.05):
            return
        previous = cpu


_serial = [0]


def measure(sb, runs, ports, column):
    """Medians of 'runs' reconfigurations, each changing 'column' (a map of
    Interface) of one port.  Each value is new: ovs-vsctl does not make
    ovs-vswitchd reconfigure for a change that changes nothing."""
    pid = sb.pid("ovs-vswitchd")
    walls = []
    n0 = int(sb.run("ovs-appctl", "coverage/read-counter",
                    "bridge_reconfigure"))
    cpu0 = main_thread_cpu(pid)
    all0 = process_cpu(pid)
    for i in range(runs):
        port = "p%d" % (1 + i % ports)
        _serial[0] += 1
        t0 = time.monotonic()
        sb.vsctl("set", "Interface", port,
                 "%s:bench=%d" % (column, _serial[0]))
        walls.append(time.monotonic() - t0)
    cpu = (main_thread_cpu(pid) - cpu0) / runs
    all_cpu = (process_cpu(pid) - all0) / runs
    n = int(sb.run("ovs-appctl", "coverage/read-counter",
                   "bridge_reconfigure")) - n0
    if n < runs:
        sys.exit("bench-reconfig: %d changes made only %d reconfigurations"
                 % (runs, n))
    return {"wall_ms": statistics.median(walls) * 1000,
            "cpu_ms": cpu * 1000, "all_cpu_ms": all_cpu * 1000}


def wait_sessions(sb, n, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        states = sb.vsctl("--bare", "--columns=status", "list",
                          "Upcall_Trace")
        active = states.count("state=active")
        if active == n:
            return
        if time.monotonic() > deadline:
            sys.exit("bench-reconfig: only %d of %d sessions active"
                     % (active, n))
        time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", required=True,
                        help="our built Open vSwitch tree")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args()

    sb = Sandbox(os.path.abspath(args.ours), os.path.abspath(args.workdir))
    results = {}
    try:
        sb.start()
        cmd = ["add-br", "br0", "--", "set", "bridge", "br0",
               "datapath-type=dummy", "fail-mode=secure"]
        for n in range(1, args.ports + 1):
            cmd += ["--", "add-port", "br0", "p%d" % n, "--", "set",
                    "Interface", "p%d" % n, "type=dummy",
                    "ofport_request=%d" % n]
        sb.vsctl(*cmd)
        warm_up(sb, args.ports)

        for column in ("external_ids", "other_config"):
            results[column] = {"0 sessions": measure(sb, args.runs,
                                                     args.ports, column)}
        cmd = []
        for n in range(1, args.sessions + 1):
            cmd += ["--", "create", "Upcall_Trace", "name=s%d" % n,
                    "bridge=br0", "port=p%d" % (1 + (n - 1) % args.ports),
                    "filter=\"udp,udp_dst=%d\"" % n]
        sb.vsctl(*cmd[1:])
        wait_sessions(sb, args.sessions)
        warm_up(sb, args.ports)
        for column in ("external_ids", "other_config"):
            results[column]["%d sessions" % args.sessions] = measure(
                sb, args.runs, args.ports, column)
        sb.vsctl("--", "--all", "destroy", "Upcall_Trace")
        warm_up(sb, args.ports)
        for column in ("external_ids", "other_config"):
            results[column]["0 sessions again"] = measure(
                sb, args.runs, args.ports, column)
    finally:
        sb.stop()

    print("Reconfiguration of a bridge with %d ports (median of %d; "
          "target: with %d sessions <= %.2f x without)"
          % (args.ports, args.runs, args.sessions, TARGET))
    print("%-14s %-18s %10s %14s %14s" % ("change", "case", "wall ms",
                                           "main thr CPU", "all thr CPU"))
    summary = {}
    for column, cases in results.items():
        for case, r in cases.items():
            print("%-14s %-18s %10.2f %14.2f %14.2f" % (
                column, case, r["wall_ms"], r["cpu_ms"], r["all_cpu_ms"]))
        base = [cases["0 sessions"], cases["0 sessions again"]]
        many = cases["%d sessions" % args.sessions]
        ratios = {}
        for key in ("wall_ms", "cpu_ms", "all_cpu_ms"):
            ref = statistics.mean(b[key] for b in base)
            ratios[key] = many[key] / ref if ref else float("nan")
        summary[column] = ratios
        print("%-14s %-18s %9.3fx %13.3fx %13.3fx  %s" % (
            column, "ratio", ratios["wall_ms"], ratios["cpu_ms"],
            ratios["all_cpu_ms"],
            "met" if ratios["cpu_ms"] <= TARGET else "MISSED"))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"ports": args.ports, "sessions": args.sessions,
                       "runs": args.runs, "target": TARGET,
                       "results": results, "ratios": summary}, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit("bench-reconfig: %s failed with status %d"
                 % (" ".join(e.cmd[:4]) + " ...", e.returncode))
