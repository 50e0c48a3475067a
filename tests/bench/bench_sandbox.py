# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Sandboxed Open vSwitch daemons and their load, for bench-e2e.py.

Sandbox runs ovsdb-server and ovs-vswitchd (dummy datapath, no root) from
an Open vSwitch build tree in a temporary directory, optionally under
callgrind, feeds them framed UDP packets (frames(), chunks_for()) through
the dummy ports' "pstream" unix sockets, and reads their counters through
a persistent unixctl connection (Unixctl).  Every sandbox is listed in
SANDBOXES until it is stopped, so that stop_all(), or on_signal() as a
signal handler, stops whatever is left.

CALLGRIND_TOGGLE names the function whose inclusive cost callgrind counts:
bench-e2e.py sets it from --cg-toggle before starting any sandbox.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SANDBOXES = []

# The dummy datapath handles at most one packet per port per main loop
# iteration (netdev-dummy's receive returns one packet), and netdev-dummy
# reads a frame's length and its body in two iterations, and drops packets
# beyond 100 queued.  So: N_PORTS input ports, each fed by two connections,
# gives N_PORTS packets per iteration with no drop.
N_PORTS = 16
CONNS_PER_PORT = 2
CONNECTIONS = N_PORTS * CONNS_PER_PORT
SINK = 50                   # OpenFlow number of the output port.
FLOW_LIMIT = 2000000
CALLGRIND_TOGGLE = "upcall_cb"


def log(msg):
    print("bench-e2e: " + msg, file=sys.stderr, flush=True)


# Packets.

def ip_checksum(header):
    s = sum(struct.unpack("!10H", header))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frame(subnet, i, dport=53):
    """UDP 10.<subnet>.x.y:sport -> 10.0.0.2:dport, distinct for
    every 'i' < 3,276,800,000 within a subnet."""
    src = (10 << 24) | (subnet << 16) | ((i // 50000) & 0xffff)
    sport = 1024 + i % 50000
    payload = struct.pack("!I", i) + bytes(14)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff,
                      0, 64, 17, 0, struct.pack("!I", src),
                      bytes([10, 0, 0, 2]))
    hdr = hdr[:10] + struct.pack("!H", ip_checksum(hdr)) + hdr[12:]
    eth = bytes.fromhex("505400000002505400000001") + b"\x08\x00"
    return eth + hdr + udp


def frames(subnet, start, n, dport=53):
    return [frame(subnet, i, dport) for i in range(start, start + n)]


def chunks_for(frame_list, k=CONNECTIONS):
    """Splits 'frame_list' into 'k' framed byte strings, one per
    connection."""
    return [b"".join(struct.pack("!H", len(f)) + f
                     for f in frame_list[j::k]) for j in range(k)]


# Processes.

class Unixctl:
    """A persistent JSON-RPC connection to a unixctl server."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.id = 0
        self.decoder = json.JSONDecoder()

    def call(self, method, *params):
        self.id += 1
        msg = {"method": method, "params": list(params), "id": self.id}
        self.sock.sendall(json.dumps(msg).encode())
        while True:
            try:
                text = self.buf.decode()
                reply, end = self.decoder.raw_decode(text.lstrip())
                self.buf = text.lstrip()[end:].encode()
                if reply.get("id") != self.id:
                    continue
                if reply.get("error") is not None:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]
            except (ValueError, UnicodeDecodeError):
                data = self.sock.recv(65536)
                if not data:
                    raise RuntimeError("unixctl connection closed")
                self.buf += data

    def close(self):
        self.sock.close()


class Sandbox:
    """ovsdb-server and ovs-vswitchd from 'builddir' in a temporary
    directory."""

    def __init__(self, builddir, root, name, valgrind=False):
        self.builddir = builddir
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=re.sub(r"\W", "_", name) + ".",
                                    dir=root)
        d = self.dir
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d,
                        OVS_SYSCONFDIR=d, OVS_PKGDATADIR=d)
        self.env["PATH"] = ":".join(
            [os.path.join(builddir, x)
             for x in ("utilities", "vswitchd", "ovsdb")]
            + [self.env.get("PATH", "")])
        self.valgrind = valgrind
        self.procs = []
        self.vswitchd = None
        self.ctl = None
        SANDBOXES.append(self)

    def tool(self, name, *args, stdin=None, check=True, timeout=600):
        prog = {"ovs-vsctl": "utilities", "ovs-ofctl": "utilities",
                "ovs-appctl": "utilities", "ovsdb-tool": "ovsdb"}[name]
        cmd = [os.path.join(self.builddir, prog, name)] + list(args)
        r = subprocess.run(cmd, env=self.env, input=stdin, text=True,
                           capture_output=True, timeout=timeout)
        if check and r.returncode:
            raise RuntimeError("%s failed: %s" % (" ".join(cmd[:4]),
                                                  r.stderr.strip()))
        return r.stdout

    def spawn(self, cmd, logname):
        err = open(os.path.join(self.dir, logname), "w")
        p = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                             stdout=err, stderr=err, start_new_session=True,
                             cwd=self.dir)
        self.procs.append(p)
        return p

    def start(self):
        d = self.dir
        self.tool("ovsdb-tool", "create", os.path.join(d, "conf.db"),
                  os.path.join(self.builddir, "vswitchd",
                               "vswitch.ovsschema"))
        self.spawn([os.path.join(self.builddir, "ovsdb", "ovsdb-server"),
                    "--no-chdir", "--pidfile", "--log-file",
                    "--remote=punix:" + os.path.join(d, "db.sock"),
                    os.path.join(d, "conf.db")], "ovsdb-server.err")
        wait_for(lambda: os.path.exists(os.path.join(d, "db.sock")), 30,
                 "ovsdb-server")
        # The socket exists before ovsdb-server listens on it: retry.
        wait_for(lambda: self.tool("ovs-vsctl", "--no-wait", "init") or True,
                 30, "ovsdb-server connection")
        cmd = [os.path.join(self.builddir, "vswitchd", "ovs-vswitchd"),
               "--enable-dummy", "--disable-system", "--no-chdir",
               "--pidfile", "--log-file", "-vconsole:off"]
        if self.valgrind:
            cmd = ["valgrind", "--tool=callgrind",
                   "--toggle-collect=" + CALLGRIND_TOGGLE,
                   "--callgrind-out-file=" + os.path.join(d, "callgrind.out")
                   ] + cmd
        self.vswitchd = self.spawn(cmd, "ovs-vswitchd.err")
        ctl = os.path.join(d, "ovs-vswitchd.%d.ctl" % self.vswitchd.pid)
        # The socket exists before ovs-vswitchd listens on it: retry.
        conn = []
        wait_for(lambda: conn.append(Unixctl(ctl)) or True,
                 300 if self.valgrind else 30, "ovs-vswitchd")
        self.ctl = conn[0]

    def setup_bridge(self, flows, max_idle=None, port_type="dummy"):
        args = ["--timeout=600", "add-br", "br0", "--", "set", "bridge",
                "br0", "datapath-type=dummy", "fail-mode=secure",
                "--", "add-port", "br0", "sink", "--", "set", "interface",
                "sink", "type=dummy", "ofport_request=%d" % SINK]
        for i in range(1, N_PORTS + 1):
            args += ["--", "add-port", "br0", "p%d" % i, "--", "set",
                     "interface", "p%d" % i, "type=" + port_type,
                     "ofport_request=%d" % i,
                     "options:pstream=punix:%s/p%d.sock" % (self.dir, i)]
        # No datapath flow limit: a flow not installed makes a cheaper
        # upcall, and the dynamic limit depends on revalidation timing.
        args += ["--", "set", "Open_vSwitch", ".",
                 "other_config:flow-limit=%d" % FLOW_LIMIT]
        if max_idle:
            args += ["--", "set", "Open_vSwitch", ".",
                     "other_config:max-idle=%d" % max_idle]
        self.tool("ovs-vsctl", *args)
        self.tool("ovs-ofctl", "add-flows", "br0", "-", stdin=flows)
        self.ctl.call("upcall/disable-megaflows")
        self.ctl.call("upcall/set-flow-limit", str(FLOW_LIMIT))
        wait_for(lambda: all(os.path.exists("%s/p%d.sock" % (self.dir, i))
                             for i in range(1, N_PORTS + 1)), 60, "sockets")

    def add_sessions(self, specs, timeout=600):
        """'specs': (name, filter, max_traces or None, options dict)."""
        if not specs:
            return
        args = ["--timeout=%d" % timeout]
        for name, flt, max_traces, options in specs:
            args += ["--", "create", "Upcall_Trace", "name=" + name,
                     "bridge=br0", "filter=" + json.dumps(flt)]
            if max_traces:
                args.append("max_traces=%d" % max_traces)
            for k, v in (options or {}).items():
                args.append("options:%s=%s" % (k, v))
        self.tool("ovs-vsctl", *args, timeout=timeout + 60)

        def all_active():
            show = json.loads(self.appctl_json("upcall/trace/show"))
            states = [s["state"] for s in show["sessions"]]
            for s in show["sessions"]:
                if s["state"] == "error":
                    raise SystemExit("session %s: %s" % (s["name"],
                                                         s["error"]))
            return (len(states) == len(specs)
                    and all(s == "active" for s in states))
        wait_for(all_active, timeout, "active sessions")

    def add_other_rows(self, n, timeout=600):
        """'n' Flow_Sample_Collector_Set rows on br0 without IPFIX."""
        if not n:
            return
        args = ["--timeout=%d" % timeout, "--id=@br", "get", "Bridge", "br0"]
        for i in range(n):
            args += ["--", "create", "Flow_Sample_Collector_Set",
                     "id=%d" % (i + 1), "bridge=@br"]
        self.tool("ovs-vsctl", *args, timeout=timeout + 60)

    def appctl_json(self, *args):
        return self.tool("ovs-appctl", "-f", "json", *args)

    def pid(self):
        return self.vswitchd.pid

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid()) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def main_thread_ns(self):
        """Time the main thread (which handles the dummy datapath's
        upcalls) has run on a CPU, and has waited for one, in ns."""
        with open("/proc/%d/task/%d/schedstat"
                  % (self.pid(), self.pid())) as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)

    def lookups(self):
        out = self.ctl.call("dpctl/show")
        m = re.search(r"lookups: hit:(\d+) missed:(\d+) lost:(\d+)", out)
        if not m:
            raise RuntimeError("dpctl/show: " + out)
        return tuple(int(x) for x in m.groups())

    def memory_show(self):
        out = self.ctl.call("memory/show")
        return {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", out)}

    def connect_load(self):
        conns = []
        for _ in range(CONNS_PER_PORT):
            for i in range(1, N_PORTS + 1):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect("%s/p%d.sock" % (self.dir, i))
                conns.append(s)
        self.conns = conns
        time.sleep(0.5 if not self.valgrind else 5)

    def send(self, chunks, n_upcalls, timeout=3600):
        """Sends 'chunks' (one per connection) and waits until 'n_upcalls'
        more upcalls were handled ("missed" or "lost", which counts the
        upcalls whose flow was not installed too).  Returns (seconds,
        upcalls, hits, lost, main thread CPU seconds, main thread seconds
        waiting for a CPU)."""
        hit0, missed0, lost0 = self.lookups()
        run0, wait0 = self.main_thread_ns()
        threads = [threading.Thread(target=c.sendall, args=(data,))
                   for c, data in zip(self.conns, chunks)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        target = missed0 + lost0 + n_upcalls
        deadline = t0 + timeout
        last, last_change = missed0 + lost0, t0
        while True:
            hit, missed, lost = self.lookups()
            now = time.monotonic()
            done = missed + lost
            if done >= target:
                break
            if done != last:
                last, last_change = done, now
            elif now - last_change > (120 if self.valgrind else 20):
                raise RuntimeError(
                    "%s: stalled at %d of %d upcalls (packets dropped?)"
                    % (self.name, done - missed0 - lost0, n_upcalls))
            if now > deadline:
                raise RuntimeError("%s: timeout" % self.name)
            remaining = target - done
            time.sleep(0.001 if remaining < n_upcalls * 0.05 else 0.02)
        elapsed = time.monotonic() - t0
        run1, wait1 = self.main_thread_ns()
        for t in threads:
            t.join()
        return (elapsed, done - missed0 - lost0, hit - hit0, lost - lost0,
                (run1 - run0) / 1e9, (wait1 - wait0) / 1e9)

    def stop(self):
        if self.ctl:
            try:
                self.ctl.call("exit")
            except Exception:
                pass
            self.ctl.close()
            self.ctl = None
        for c in getattr(self, "conns", []):
            c.close()
        self.conns = []
        for p in reversed(self.procs):
            if p.poll() is None and p is not self.vswitchd:
                p.terminate()
            try:
                p.wait(timeout=120 if self.valgrind else 10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        if self in SANDBOXES:
            SANDBOXES.remove(self)

    def cleanup(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def stop_all(*_):
    for sb in list(SANDBOXES):
        try:
            sb.stop()
        except Exception as e:
            log("stopping %s: %s" % (sb.name, e))
            for p in sb.procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (OSError, RuntimeError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)
