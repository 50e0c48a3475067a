# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""pytest harness: a real ovsdb-server and ovs-vswitchd per test.

The Open vSwitch build tree is taken from $OVS_BUILDDIR ("make check-python"
sets it).  Each test that uses the 'ovs' fixture gets, in a temporary folder
of its own:

  - a database created with ovsdb-tool from the build's vswitch.ovsschema
    (so it has the Upcall_Trace table);
  - ovsdb-server, and ovs-vswitchd started with --enable-dummy
    --disable-system, as OVS_VSWITCHD_START does in Open vSwitch's autotest
    suite, with OVS_RUNDIR, OVS_LOGDIR, OVS_DBDIR and OVS_SYSCONFDIR pointing
    to that folder, so nothing touches a system installation;
  - helpers to run ovs-vsctl, ovs-appctl and ovs-ofctl, to wait for a
    condition, and to open an OVS Python IDL connection (the build's own
    python/ovs package, imported from $OVS_BUILDDIR/python).

Both daemons are always stopped at teardown, whether the test passed,
failed or raised: first asked to exit, then killed (SIGKILL) by the process
id in their pidfile.  A test that wants to crash or restart ovs-vswitchd
uses OvsSandbox.kill_vswitchd() and start_vswitchd().
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

# How long a helper waits for ovs-vswitchd before it gives up, in seconds.
# Generous: the machines that run this may be slow and loaded.
TIMEOUT = 30


def _builddir():
    builddir = os.environ.get("OVS_BUILDDIR")
    if not builddir:
        raise pytest.UsageError(
            "OVS_BUILDDIR must name a built Open vSwitch tree "
            "(run \"make check-python\", or set it to e.g. /tmp/b/ovs)")
    builddir = os.path.abspath(builddir)
    for f in ("vswitchd/ovs-vswitchd", "ovsdb/ovsdb-server",
              "vswitchd/vswitch.ovsschema", "python/ovs/dirs.py"):
        if not os.path.exists(os.path.join(builddir, f)):
            raise pytest.UsageError(
                "%s is not a built Open vSwitch tree: %s is missing"
                % (builddir, f))
    return builddir


def pytest_configure(config):
    # Make the build's OVS Python library importable ("import ovs.db.idl")
    # before any test module is collected.
    builddir = _builddir()
    python = os.path.join(builddir, "python")
    if python not in sys.path:
        sys.path.insert(0, python)


class CommandError(Exception):
    """A command run by OvsSandbox.run() failed."""

    def __init__(self, argv, returncode, stdout, stderr):
        super().__init__("%s exited with status %d\nstdout: %s\nstderr: %s"
                         % (" ".join(argv), returncode, stdout, stderr))
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def wait_until(condition, timeout=TIMEOUT, interval=0.05, what=None):
    """Calls 'condition' until it returns a true value, and returns that
    value.  Fails the test after 'timeout' seconds, saying 'what' (or the
    condition's name) was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %g s waiting for %s"
                        % (timeout, what or getattr(condition, "__name__",
                                                    "a condition")))
        time.sleep(interval)


class OvsSandbox:
    """ovsdb-server and ovs-vswitchd running in 'directory'."""

    DAEMONS = ("ovs-vswitchd", "ovsdb-server")

    def __init__(self, builddir, directory):
        self.builddir = builddir
        self.dir = str(directory)
        self.schema = os.path.join(builddir, "vswitchd", "vswitch.ovsschema")
        self.db_sock = os.path.join(self.dir, "db.sock")
        self.remote = "unix:" + self.db_sock

        env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR",
                    "OVS_SYSCONFDIR"):
            env[var] = self.dir
        # The build's programs come first, as in Open vSwitch's own tests.
        path = [os.path.join(builddir, d)
                for d in ("utilities", "vswitchd", "ovsdb", "tests")]
        env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(builddir, "python"), env.get("PYTHONPATH", "")])
        self.env = env

        # Process ids of the daemons this sandbox started, by name, also
        # those that already exited: teardown checks each of them.
        self.pids = {name: [] for name in self.DAEMONS}
        self._idls = []

    # Running programs.

    def run(self, *argv, check=True, timeout=TIMEOUT):
        """Runs 'argv' in the sandbox and returns its standard output.
        Raises CommandError if it fails and 'check' is true."""
        p = subprocess.run(list(argv), cwd=self.dir, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=timeout)
        if check and p.returncode:
            raise CommandError(argv, p.returncode, p.stdout, p.stderr)
        return p.stdout

    def vsctl(self, *args, **kwargs):
        return self.run("ovs-vsctl", "--timeout=%d" % TIMEOUT, *args,
                        **kwargs)

    def appctl(self, *args, target="ovs-vswitchd", **kwargs):
        return self.run("ovs-appctl", "--timeout=%d" % TIMEOUT,
                        "-t", target, *args, **kwargs)

    def ofctl(self, *args, **kwargs):
        return self.run("ovs-ofctl", *args, **kwargs)

    # Daemons.

    def pidfile(self, name):
        return os.path.join(self.dir, name + ".pid")

    def read_pid(self, name):
        try:
            with open(self.pidfile(name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _started(self, name):
        pid = self.read_pid(name)
        if pid is None:
            raise RuntimeError("%s did not write %s"
                               % (name, self.pidfile(name)))
        self.pids[name].append(pid)
        return pid

    def start(self):
        """Creates the database and starts both daemons."""
        self.run("ovsdb-tool", "create",
                 os.path.join(self.dir, "conf.db"), self.schema)
        self.start_ovsdb_server()
        self.vsctl("--no-wait", "init")
        self.start_vswitchd()

    def start_ovsdb_server(self):
        try:
            self.run("ovsdb-server", "--detach", "--no-chdir", "--pidfile",
                     "--log-file", "--remote=punix:" + self.db_sock,
                     "conf.db")
        finally:
            # Even if it failed, it may have written a pidfile.
            if self.read_pid("ovsdb-server") is not None:
                self._started("ovsdb-server")

    def start_vswitchd(self):
        """Starts ovs-vswitchd, as OVS_VSWITCHD_START does.  With --detach,
        it returns once the daemon has applied the initial configuration."""
        try:
            self.run("ovs-vswitchd", "--enable-dummy", "--disable-system",
                     "--disable-system-route", "--detach", "--no-chdir",
                     "--pidfile", "--log-file", "-vvconn", "-vofproto_dpif",
                     "-vunixctl")
        finally:
            if self.read_pid("ovs-vswitchd") is not None:
                self._started("ovs-vswitchd")

    @staticmethod
    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie is not alive: it is only waiting for its parent.  But a
        # killed multithreaded daemon's main thread turns zombie while its
        # other threads still exit, holding its files (the pidfile's lock):
        # it is gone only once every thread is.
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            return False
        for task in tasks:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
                    if f.read().split(")")[-1].split()[0] != "Z":
                        return True
            except OSError:
                pass
        return False

    def kill_vswitchd(self):
        """Kills ovs-vswitchd with SIGKILL, as a crash would, and waits
        until it is gone."""
        pid = self.read_pid("ovs-vswitchd")
        assert pid is not None and self.alive(pid)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.alive(pid), what="ovs-vswitchd to die")

    def exit_vswitchd(self):
        """Asks ovs-vswitchd to exit, as OVS_APP_EXIT_AND_WAIT does."""
        pid = self.read_pid("ovs-vswitchd")
        self.appctl("exit", "--cleanup")
        wait_until(lambda: not self.alive(pid), what="ovs-vswitchd to exit")

    def stop(self):
        """Stops every daemon this sandbox started.  Never raises: asks
        each daemon to exit, then kills what is left."""
        for idl in self._idls:
            try:
                idl.close()
            except Exception:
                pass
        self._idls = []

        for name in self.DAEMONS:
            pids = [pid for pid in self.pids[name] if self.alive(pid)]
            if not pids:
                continue
            try:
                self.run("ovs-appctl", "--timeout=5", "-t", name, "exit",
                         check=False, timeout=10)
            except Exception:
                pass
            deadline = time.monotonic() + 5
            while (any(self.alive(pid) for pid in pids)
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            for pid in pids:
                if self.alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def running_pids(self):
        """The process ids, started here, that are still alive."""
        return [pid for pids in self.pids.values() for pid in pids
                if self.alive(pid)]

    # Logs.

    def log(self, name="ovs-vswitchd"):
        try:
            with open(os.path.join(self.dir, name + ".log")) as f:
                return f.read()
        except OSError:
            return ""

    def log_lines(self, level_re, name="ovs-vswitchd"):
        """Lines of the log of 'name' whose level matches 'level_re'
        (e.g. "ERR|EMER")."""
        pattern = re.compile(r"\|(?:%s)\|" % level_re)
        return [line for line in self.log(name).splitlines()
                if pattern.search(line)]

    # Configuration, as Open vSwitch's own autotest macros do it.

    def add_bridge(self, name="br0", ports=()):
        """Adds bridge 'name' on the dummy datapath, like add_of_br, with
        dummy ports p1, p2, ... numbered as 'ports' says (like
        add_of_ports)."""
        args = ["add-br", name, "--", "set", "bridge", name,
                "datapath-type=dummy", "fail-mode=secure",
                "other-config:datapath-id=fedcba9876543210",
                "protocols=[OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,"
                "OpenFlow14,OpenFlow15]"]
        for n in ports:
            args += ["--", "add-port", name, "p%d" % n, "--", "set",
                     "Interface", "p%d" % n, "type=dummy",
                     "ofport_request=%d" % n]
        self.vsctl(*args)

    def memory(self):
        """ovs-vswitchd's memory/show, as a dict of integers."""
        return {k: int(v) for k, v in
                re.findall(r"(\w+):(\d+)", self.appctl("memory/show"))}

    # The OVS Python IDL.

    def idl(self, tables=None):
        """Returns an IdlClient connected to the database, monitoring
        'tables' (all by default), with its first contents received."""
        client = IdlClient(self.remote, self.schema, tables)
        self._idls.append(client)
        return client


class IdlClient:
    """An OVS Python IDL connection, run the way a controller runs it."""

    def __init__(self, remote, schema, tables=None):
        import ovs.db.idl
        import ovs.poller

        self._poller_class = ovs.poller.Poller
        self.Transaction = ovs.db.idl.Transaction
        helper = ovs.db.idl.SchemaHelper(location=schema)
        if tables:
            for table in tables:
                helper.register_table(table)
        else:
            helper.register_all()
        self.idl = ovs.db.idl.Idl(remote, helper)
        self.run_until(self.idl.has_ever_connected,
                       what="the IDL to connect")

    def close(self):
        self.idl.close()

    def rows(self, table):
        return list(self.idl.tables[table].rows.values())

    def run_until(self, condition, timeout=TIMEOUT, what=None):
        """Runs the IDL until 'condition()' returns a true value, and
        returns that value.  Blocks in the IDL's poller between checks, as a
        controller's main loop does, but wakes up at least every 100 ms."""
        deadline = time.monotonic() + timeout
        while True:
            self.idl.run()
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail("timed out after %g s waiting for %s"
                            % (timeout, what or getattr(
                                condition, "__name__", "a condition")))
            poller = self._poller_class()
            self.idl.wait(poller)
            poller.timer_wait(100)
            poller.block()

    def transact(self, fill):
        """Runs 'fill(txn)' in a new transaction and commits it, retrying
        while the IDL says to.  Returns whatever 'fill' returned, with
        inserted rows replaced by their final version in the IDL when
        'fill' returns an inserted row."""
        import ovs.db.idl

        while True:
            self.idl.run()
            txn = self.Transaction(self.idl)
            result = fill(txn)
            status = txn.commit_block()
            if status == ovs.db.idl.Transaction.TRY_AGAIN:
                continue
            if status not in (ovs.db.idl.Transaction.SUCCESS,
                              ovs.db.idl.Transaction.UNCHANGED):
                pytest.fail("transaction failed: %s (%s)"
                            % (status, txn.get_error()))
            if isinstance(result, ovs.db.idl.Row):
                uuid = txn.get_insert_uuid(result.uuid)
                if uuid is not None:
                    self.run_until(
                        lambda: uuid in self.idl.tables[
                            result._table.name].rows,
                        what="the inserted row")
                    return self.idl.tables[result._table.name].rows[uuid]
            return result


@pytest.fixture(scope="session")
def builddir():
    return _builddir()


@pytest.fixture
def ovs(builddir, tmp_path):
    """A started OvsSandbox, stopped at teardown whatever happened."""
    sandbox = OvsSandbox(builddir, tmp_path)
    try:
        sandbox.start()
        yield sandbox
    finally:
        sandbox.stop()
        left = sandbox.running_pids()
        if left:
            # stop() sent SIGKILL: this cannot normally happen.
            pytest.fail("processes %s survived teardown" % left)


@pytest.fixture
def ovs_br0(ovs):
    """'ovs' with bridge br0 and dummy ports p1 (1) and p2 (2), with the flow
    in_port=p1 actions=output:p2, and megaflows disabled so that every
    distinct packet is an upcall."""
    ovs.add_bridge("br0", ports=(1, 2))
    ovs.ofctl("add-flow", "br0", "in_port=p1,actions=output:p2")
    ovs.appctl("upcall/disable-megaflows")
    return ovs


def icmp_packet(src_host, in_port=1):
    """The datapath flow of an ICMP echo request from 10.0.0.'src_host'
    (1..254), for netdev-dummy/receive."""
    return ("in_port(%d),eth(src=50:54:00:00:00:01,dst=50:54:00:00:00:02),"
            "eth_type(0x0800),ipv4(src=10.0.0.%d,dst=10.0.0.254,proto=1,"
            "tos=0,ttl=64,frag=no),icmp(type=8,code=0)" % (in_port, src_host))
