# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""The system tier: real traffic, as root (helpers; fixtures in conftest.py).

Two network namespaces, each with one end of a veth pair, whose other ends
are ports p1 and p2 of a bridge in an ovsdb-server and ovs-vswitchd started
from $OVS_BUILDDIR in a temporary directory by the pytest harness's
OvsSandbox (tests/python/conftest.py), with the OpenFlow rules of the RFC
cover letter.  Every test runs on each datapath named in
$UPCALL_TRACE_DATAPATHS (default "netdev"):

  netdev   the userspace datapath and its conntrack, on the host
           ("make check-system");
  system   the Linux kernel datapath (system@ovs-system) and the kernel's
           conntrack, in the QEMU guest of the kernel tier ("make
           check-kernel", tests/kernel/), the only place here with an
           openvswitch module.  Traffic stays between the two namespaces (172.31.250.0/24 on
the veths only).  Every namespace, veth, tap and daemon made here is removed
at the end of each test, whatever happens.

Skipped, with the reason, when not root, when $OVS_BUILDDIR is not set, when
a tool is missing, when namespaces or veths cannot be made, when another
userspace datapath already runs on this machine (its "ovs-netdev" tap would
clash with ours), or, for "system", when the openvswitch module is not
loaded or a kernel datapath already exists.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

NS1_IP = "172.31.250.1"
NS2_IP = "172.31.250.2"

# The rules of the RFC cover letter: conntrack in zone 1, commit on +new from
# p1, allow +est both ways, drop the rest; ARP normal.
FLOWS = """\
priority=100,arp actions=NORMAL
priority=10,ip,in_port=p1 actions=ct(table=1,zone=1)
priority=10,ip,in_port=p2 actions=ct(table=1,zone=1)
priority=0 actions=NORMAL
priority=1 actions=drop
table=1,priority=10,ct_state=+new+trk,ip,in_port=p1 \
actions=ct(commit,zone=1),output:p2
table=1,priority=10,ct_state=+est+trk,ip,in_port=p1 actions=output:p2
table=1,priority=10,ct_state=+est+trk,ip,in_port=p2 actions=output:p1
table=1,priority=1 actions=drop
"""


def harness():
    """The pytest harness of tests/python (its conftest.py), as a module of
    its own name: its OvsSandbox runs the daemons here too."""
    global _harness
    if _harness is None:
        path = os.path.join(SRCDIR, "tests", "python", "conftest.py")
        spec = importlib.util.spec_from_file_location(
            "upcall_trace_harness", path)
        _harness = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_harness)
    return _harness


_harness = None


def wait_until(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.1)


def run(*args, check=True, env=None, timeout=60, input=None):
    return subprocess.run(args, check=check, env=env, timeout=timeout,
                          input=input, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


def _can(*args):
    try:
        return subprocess.run(args, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def _link_exists(name):
    return _can("ip", "link", "show", "dev", name)


class Cleanup(object):
    """Undo actions, run in reverse order; each failure is ignored."""

    def __init__(self):
        self.actions = []

    def push(self, fn, *args):
        self.actions.append((fn, args))

    def run(self):
        while self.actions:
            fn, args = self.actions.pop()
            try:
                fn(*args)
            except Exception:
                pass


DATAPATHS = ("netdev", "system")

# The datapath name that traces and dpif/show report for each type.
DATAPATH_NAMES = {"netdev": "netdev@ovs-netdev", "system": "system@ovs-system"}


def selected_datapaths():
    """The datapath types to run the tests on: $UPCALL_TRACE_DATAPATHS."""
    names = os.environ.get("UPCALL_TRACE_DATAPATHS", "netdev").split()
    for name in names:
        if name not in DATAPATHS:
            raise pytest.UsageError("UPCALL_TRACE_DATAPATHS: unknown "
                                    "datapath %r (%s)"
                                    % (name, ", ".join(DATAPATHS)))
    return names


def _sandbox_class(datapath):
    base = harness().OvsSandbox
    if datapath != "system":
        return base

    class KernelSandbox(base):
        """OvsSandbox whose ovs-vswitchd may open the kernel datapath:
        without --disable-system (which OVS_VSWITCHD_START passes for the
        dummy datapath)."""

        def start_vswitchd(self):
            try:
                self.run("ovs-vswitchd", "--detach", "--no-chdir",
                         "--pidfile", "--log-file", "-vvconn",
                         "-vofproto_dpif", "-vunixctl")
            finally:
                if self.read_pid("ovs-vswitchd") is not None:
                    self._started("ovs-vswitchd")

    return KernelSandbox


class SystemOvs(object):
    """ovsdb-server and ovs-vswitchd in a sandbox, a bridge with p1 and p2
    on 'datapath' ("netdev" or "system"), and the two namespaces."""

    def __init__(self, builddir, cleanup, datapath="netdev"):
        self.builddir = builddir
        self.cleanup = cleanup
        self.datapath = datapath
        self.dp_name = DATAPATH_NAMES[datapath]
        self.tag = uuid.uuid4().hex[:4]
        self.sandbox = tempfile.mkdtemp(prefix="upcall-trace-system.")
        cleanup.push(shutil.rmtree, self.sandbox, True)
        self.sb = _sandbox_class(datapath)(builddir, self.sandbox)
        self.env = dict(self.sb.env)
        self.env["OVS_PYTHONPATH"] = os.path.join(builddir, "python")
        self.bridge = "utbr" + self.tag
        self.ns1 = "utns%s1" % self.tag
        self.ns2 = "utns%s2" % self.tag
        # The host ends of the veths are the bridge's ports.
        self.p1 = "ut%sp1" % self.tag
        self.p2 = "ut%sp2" % self.tag
        self.pids = {}
        # The datapath names of the rounds trace() checked, printed at the
        # end of each test.
        self.checked_datapaths = set()

    # Commands.
    def cmd(self, *args, check=True, input=None, timeout=60):
        r = run(*args, check=False, env=self.env, input=input,
                timeout=timeout)
        if check and r.returncode:
            raise AssertionError("%s failed (%d): %s%s"
                                 % (" ".join(args), r.returncode, r.stdout,
                                    r.stderr))
        return r

    def vsctl(self, *args, **kw):
        return self.cmd("ovs-vsctl", "--timeout=20", *args, **kw).stdout

    def appctl(self, *args, **kw):
        return self.cmd("ovs-appctl", *args, **kw).stdout

    def appctl_json(self, *args):
        return json.loads(self.appctl("-f", "json", *args))

    def ofctl(self, *args, **kw):
        return self.cmd("ovs-ofctl", *args, **kw).stdout

    def tool(self, *args, check=True):
        """ovs-upcall-trace as built (generated from
        utilities/ovs-upcall-trace.in), run by its own "#!" line."""
        return self.cmd(os.path.join(self.builddir, "utilities",
                                     "ovs-upcall-trace"), *args, check=check)

    def ns(self, ns, *args, check=True, timeout=60):
        return self.cmd("ip", "netns", "exec", ns, *args, check=check,
                        timeout=timeout)

    # Daemons: the pytest harness's OvsSandbox (tests/python/conftest.py).
    def start_daemons(self):
        self.cleanup.push(self.sb.stop)
        self.sb.start()
        self.pids["ovs-vswitchd"] = self.sb.read_pid("ovs-vswitchd")

    def start_vswitchd(self):
        self.sb.start_vswitchd()
        self.pids["ovs-vswitchd"] = self.sb.read_pid("ovs-vswitchd")

    def stop_vswitchd(self, how="exit"):
        """Stops ovs-vswitchd gracefully ("exit", without --cleanup, as
        "ovs-ctl restart" does) or with SIGKILL ("kill"), and waits until it
        is gone."""
        if how == "kill":
            self.sb.kill_vswitchd()
            return
        pid = self.sb.read_pid("ovs-vswitchd")
        self.appctl("exit")
        wait_until(lambda: not self.sb.alive(pid),
                   what="ovs-vswitchd to exit")

    # The topology.
    def make_namespaces(self):
        for ns in (self.ns1, self.ns2):
            r = self.cmd("ip", "netns", "add", ns, check=False)
            if r.returncode:
                pytest.skip("cannot create a network namespace: %s"
                            % r.stderr.strip())
            self.cleanup.push(self.cmd, "ip", "netns", "del", ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
            # No IPv6 chatter (router solicitations, MLD) in the traces.
            self.ns(ns, "sysctl", "-q", "-w",
                    "net.ipv6.conf.all.disable_ipv6=1", check=False)
            self.ns(ns, "sysctl", "-q", "-w",
                    "net.ipv6.conf.default.disable_ipv6=1", check=False)
        for port, ns, ip in ((self.p1, self.ns1, NS1_IP),
                             (self.p2, self.ns2, NS2_IP)):
            r = self.cmd("ip", "link", "add", port, "type", "veth", "peer",
                         "name", "eth0", "netns", ns, check=False)
            if r.returncode:
                pytest.skip("cannot create a veth pair: %s"
                            % r.stderr.strip())
            self.cleanup.push(self.cmd, "ip", "link", "del", port)
            self.cmd("sysctl", "-q", "-w",
                     "net.ipv6.conf.%s.disable_ipv6=1" % port, check=False)
            self.cmd("ip", "link", "set", port, "up")
            # AF_PACKET, which the userspace datapath reads veths with, does
            # not get along with TX offloads (see CONFIGURE_VETH_OFFLOADS in
            # Open vSwitch's tests/system-userspace-macros.at).
            self.ns(ns, "ethtool", "-K", "eth0", "tx", "off", check=False)
            self.ns(ns, "ip", "addr", "add", ip + "/24", "dev", "eth0")
            self.ns(ns, "ip", "link", "set", "eth0", "up")

    def make_bridge(self):
        self.vsctl("add-br", self.bridge, "--", "set", "bridge", self.bridge,
                   "datapath_type=" + self.datapath, "fail-mode=secure",
                   "--", "add-port", self.bridge, self.p1,
                   "--", "set", "interface", self.p1, "ofport_request=1",
                   "--", "add-port", self.bridge, self.p2,
                   "--", "set", "interface", self.p2, "ofport_request=2")
        self.add_flows()

    def add_flows(self):
        flows = FLOWS.replace("in_port=p1", "in_port=" + self.p1) \
                     .replace("in_port=p2", "in_port=" + self.p2) \
                     .replace("output:p1", "output:" + self.p1) \
                     .replace("output:p2", "output:" + self.p2)
        self.ofctl("add-flows", self.bridge, "-", input=flows)

    def _remove_bridge(self):
        self.vsctl("--if-exists", "del-br", self.bridge, check=False)

    def _remove_taps(self):
        # Taps that ovs-vswitchd made persistent and could not remove (after
        # a SIGKILL, for example).  They did not exist before us.
        for tap in (self.bridge, "ovs-netdev"):
            if _link_exists(tap):
                self.cmd("ip", "link", "del", tap, check=False)

    def _remove_kernel_datapath(self):
        # ovs-vswitchd leaves the kernel datapath (and its flows) behind
        # when it exits without --cleanup or is killed; we made it.
        if _link_exists("ovs-system"):
            self.cmd("ovs-dpctl", "del-dp", "system@ovs-system",
                     check=False)

    def setup(self):
        if self.datapath == "system":
            if not os.path.isdir("/sys/module/openvswitch"):
                pytest.skip("the kernel datapath needs the openvswitch "
                            "module (make check-kernel runs these tests in "
                            "a QEMU guest that has it)")
            if _link_exists("ovs-system"):
                pytest.skip("a kernel datapath (ovs-system) already exists "
                            "on this machine")
            self.cleanup.push(self._remove_kernel_datapath)
        elif _link_exists("ovs-netdev"):
            pytest.skip("another userspace datapath runs on this machine "
                        "(the ovs-netdev tap exists)")
        if _link_exists(self.bridge):
            pytest.skip("a link named %s exists" % self.bridge)
        self.cleanup.push(self._remove_taps)
        self.make_namespaces()
        self.start_daemons()
        self.cleanup.push(self._remove_bridge)
        self.make_bridge()
        return self

    def static_neighbours(self):
        """Permanent neighbour entries for each other's address in both
        namespaces, so that no ARP crosses the bridge."""
        macs = {}
        for ns in (self.ns1, self.ns2):
            words = self.ns(ns, "ip", "-o", "link", "show", "eth0") \
                .stdout.split()
            macs[ns] = words[words.index("link/ether") + 1]
        for ns, ip, peer in ((self.ns1, NS2_IP, self.ns2),
                             (self.ns2, NS1_IP, self.ns1)):
            self.ns(ns, "ip", "neigh", "replace", ip, "lladdr", macs[peer],
                    "dev", "eth0", "nud", "permanent")

    def dp_flows(self):
        """The datapath's flows (dpctl/dump-flows), one string each, without
        their statistics."""
        out = self.appctl("dpctl/dump-flows", self.dp_name)
        flows = []
        for line in out.splitlines():
            line = re.sub(r", packets:\d+, bytes:\d+, used:[^,]*"
                          r"(, flags:[^,]*)?, actions:", ", actions:", line)
            flows.append(line.strip())
        return flows

    # Traffic and traces.
    def ping(self, src_ns, dst_ip, count=2, check=True):
        return self.ns(src_ns, "ping", "-q", "-c", str(count), "-i", "0.3",
                       "-W", "2", dst_ip, check=check, timeout=30)

    def traces(self, session=None):
        return self.appctl_json("upcall/trace/list",
                                *([session] if session else []))["traces"]

    def trace(self, trace_id):
        """Trace 'trace_id'; asserts that every round of it came from this
        test's datapath (system@ovs-system in the kernel tier)."""
        return self.check_datapath(
            self.appctl_json("upcall/trace/get", str(trace_id)))

    def check_datapath(self, trace):
        """Asserts that every round of 'trace' (a trace as JSON) came from
        this test's datapath, and returns it."""
        for r in trace["rounds"]:
            assert r["datapath"] == self.dp_name, (r["datapath"], trace)
        self.checked_datapaths.add(self.dp_name)
        return trace

    def full_traces(self, session=None):
        return [self.trace(t["id"]) for t in self.traces(session)]

    def session_state(self, name):
        for s in self.appctl_json("upcall/trace/show")["sessions"]:
            if s["name"] == name:
                return s["state"]
        return None

    def odp_port(self, port):
        """The datapath port number of 'port' (what datapath actions
        print), from dpif/show's "NAME OFPORT/ODPPORT: (TYPE)" lines."""
        for line in self.appctl("dpif/show").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == port:
                return int(words[1].rstrip(":").split("/")[1])
        raise AssertionError("%s is not in dpif/show" % port)


def missing_tools():
    return [t for t in ("ip", "ping", "ethtool", "socat")
            if shutil.which(t) is None]


# The fixture and the hooks, shared by tests/system/conftest.py and
# tests/kernel/conftest.py.

# (test id, datapath names of the rounds it checked), for the summary.
_CHECKED = []


def sysovs_fixture(request, datapath):
    """Generator of the 'sysovs' fixture: a SystemOvs on 'datapath', set
    up, torn down completely at the end, whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("the system tier needs root (namespaces, veths)")
    builddir = os.environ.get("OVS_BUILDDIR")
    if not builddir or not os.path.isfile(
            os.path.join(builddir, "vswitchd", "ovs-vswitchd")):
        pytest.skip("OVS_BUILDDIR (an Open vSwitch build) is not set")
    missing = missing_tools()
    if missing:
        pytest.skip("missing tools: %s (build-aux/install-deps test)"
                    % " ".join(missing))
    cleanup = Cleanup()
    try:
        ovs = SystemOvs(os.path.abspath(builddir), cleanup, datapath)
        request.node.upcall_trace_sysovs = ovs
        yield ovs.setup()
        _CHECKED.append((request.node.nodeid,
                         sorted(ovs.checked_datapaths)))
    finally:
        cleanup.run()


def terminal_summary(terminalreporter):
    """Says which datapath the traces each test checked came from."""
    if not _CHECKED:
        return
    terminalreporter.section("datapaths of the checked traces")
    for nodeid, names in _CHECKED:
        terminalreporter.write_line("%s: %s" % (
            nodeid, ", ".join(names) or "(no trace read)"))


def add_vswitchd_log(item, report):
    """On a failure, adds the end of ovs-vswitchd's log of the failing test
    to its report: the daemons' folder is removed at teardown (and in the
    kernel tier, it is on the guest's tmpfs)."""
    ovs = getattr(item, "upcall_trace_sysovs", None)
    if ovs is None or not report.failed:
        return
    # Each line cut short: the unixctl replies are long.
    lines = [line if len(line) <= 400 else line[:400] + "..."
             for line in ovs.sb.log("ovs-vswitchd").splitlines()[-200:]]
    report.sections.append(("ovs-vswitchd log (%s), last %d lines"
                            % (ovs.dp_name, len(lines)),
                            "\n".join(lines) or "(empty)"))

