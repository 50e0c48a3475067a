# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""A controller that drives upcall tracing through the OVS Python IDL.

It does what an orchestration agent would: creates Upcall_Trace rows tagged
with external_ids, follows their status as ovs-vswitchd writes it, changes
and deletes them, and does so for many sessions while packets flow.
"""

import json
import os
import re
import subprocess
import threading

import pytest

from conftest import icmp_packet, wait_until

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


class Controller:
    """Upcall_Trace rows managed through the OVS Python IDL."""

    def __init__(self, ovs):
        self.ovs = ovs
        self.client = ovs.idl(["Upcall_Trace"])

    def rows(self):
        return self.client.rows("Upcall_Trace")

    def find(self, name):
        for row in self.rows():
            if row.name == name:
                return row
        return None

    def create(self, name, bridge="br0", filter_="", port=None,
               max_traces=None, options=None, external_ids=None):
        def fill(txn):
            row = txn.insert(self.client.idl.tables["Upcall_Trace"])
            row.name = name
            row.bridge = bridge
            row.filter = filter_
            row.port = [port] if port else []
            row.max_traces = [max_traces] if max_traces else []
            row.options = options or {}
            row.external_ids = external_ids or {}
            return row
        return self.client.transact(fill)

    def update(self, name, **columns):
        def fill(txn):
            row = self.find(name)
            for column, value in columns.items():
                setattr(row, column, value)
        self.client.transact(fill)

    def delete(self, *names):
        def fill(txn):
            for name in names:
                self.find(name).delete()
        self.client.transact(fill)

    def status(self, name):
        row = self.find(name)
        return dict(row.status) if row is not None else None

    def stats(self, name):
        row = self.find(name)
        return dict(row.statistics) if row is not None else None

    def wait_stats(self, name, **expected):
        """Runs the IDL until the statistics of session 'name' have every
        key of 'expected' with the given value, and returns them."""
        def matches():
            stats = self.stats(name)
            if stats is not None and all(stats.get(k) == v
                                         for k, v in expected.items()):
                return stats
            return None
        return self.client.run_until(
            matches, what="%s statistics %s" % (name, expected))

    def wait_status(self, name, what=None, **expected):
        """Runs the IDL until the status of session 'name' has every key of
        'expected' with the given value, and returns the status."""
        def matches():
            status = self.status(name)
            if status is not None and all(status.get(k) == v
                                          for k, v in expected.items()):
                return status
            return None
        return self.client.run_until(
            matches, what=what or "%s status %s" % (name, expected))


def send_icmp(ovs, src_host, port="p1"):
    ovs.appctl("netdev-dummy/receive", port, icmp_packet(src_host))


def upcall_trace_memory(ovs):
    """Every figure of memory/show about live upcall tracing: what sessions
    hold, the rule texts they share and the lives of the datapath flows
    their rounds installed."""
    return {k: v for k, v in ovs.memory().items() if "upcall_trace" in k}


def test_controller_follows_a_session(ovs_br0):
    ovs = ovs_br0
    ctl = Controller(ovs)
    ids = {"owner": "pytest-controller", "ticket": "4242"}

    ctl.create("ctl1", filter_="icmp", port="p1", max_traces=4,
               external_ids=ids)
    status = ctl.wait_status("ctl1", state="active")
    assert status["datapath"] == "dummy@ovs-dummy"
    assert "error" not in status
    assert "last_trace_id" not in status
    # The counters are integers in their own column; the status has none.
    stats = ctl.wait_stats("ctl1", n_matched=0, n_traces=0)
    assert sorted(stats) == [
        "n_dropped_full", "n_evicted", "n_expired", "n_matched",
        "n_rate_limited", "n_traces", "n_traces_total", "n_truncated"]
    assert all(type(v) is int for v in stats.values())
    assert sorted(status) == ["datapath", "state"]

    # Three upcalls: the counters move.
    for host in (1, 2, 3):
        send_icmp(ovs, host)
    stats = ctl.wait_stats("ctl1", n_traces_total=3)
    assert stats["n_matched"] == 3
    assert stats["n_traces"] == 3
    assert stats["n_evicted"] == 0
    status = ctl.wait_status("ctl1", state="active")
    assert re.fullmatch(r"0x[0-9a-f]+", status["last_trace_id"])
    assert int(status["last_trace_time"]) > 1500000000000
    trace = ovs.appctl("upcall/trace/get", status["last_trace_id"])
    assert "10.0.0.3" in trace

    # ovs-vswitchd wrote the status and nothing else: the controller's
    # external_ids are intact.
    assert ctl.find("ctl1").external_ids == ids

    # A smaller max_traces applies in place: the oldest trace is evicted.
    ctl.update("ctl1", max_traces=[2])
    stats = ctl.wait_stats("ctl1", n_traces=2)
    assert stats["n_evicted"] == 1
    assert stats["n_traces_total"] == 3

    # A packet from p2 does not match the session's port.
    send_icmp(ovs, 9, port="p2")
    wait_until(lambda: "10.0.0.9" in ovs.appctl("dpctl/dump-flows"),
               what="the packet from p2 to be handled")
    ovs.appctl("time/warp", "1100", "100")
    assert ctl.stats("ctl1")["n_matched"] == 3

    # Deleted: gone from the database and from ovs-vswitchd.
    ctl.delete("ctl1")
    ctl.client.run_until(lambda: ctl.find("ctl1") is None,
                         what="ctl1 to be deleted")
    wait_until(lambda: "ctl1" not in ovs.appctl("upcall/trace/show"),
               what="ovs-vswitchd to drop session ctl1")
    assert upcall_trace_memory(ovs) == {}
    assert ovs.log_lines("WARN|ERR|EMER") == []


def test_controller_sees_errors(ovs_br0):
    ovs = ovs_br0
    ctl = Controller(ovs)

    ctl.create("bad", filter_="icmp", options={"max-rate": "fast"})
    status = ctl.wait_status("bad", state="error")
    assert status["error"] == \
        'options:max-rate "fast" is not a positive integer'

    # Fixed by the controller: active, with no error left in the status.
    ctl.update("bad", options={"max-rate": "10"})
    status = ctl.wait_status("bad", state="active")
    assert "error" not in status

    ctl.update("bad", port=["p7"])
    status = ctl.wait_status("bad", state="waiting")
    assert status["error"] == 'port "p7" does not exist on bridge "br0"'
    ctl.delete("bad")


class PacketPump(threading.Thread):
    """Injects ICMP packets into p1 until stopped, from sources 10.0.0.2 to
    10.0.0.254 in turn, purging the datapath flows at each wrap so that every
    packet is an upcall."""

    def __init__(self, ovs):
        super().__init__(daemon=True)
        self.ovs = ovs
        self.stop_event = threading.Event()
        self.n_sent = 0
        self.error = None

    def run(self):
        host = 2
        try:
            while not self.stop_event.is_set():
                send_icmp(self.ovs, host)
                self.n_sent += 1
                host += 1
                if host > 254:
                    host = 2
                    self.ovs.appctl("revalidator/purge")
        except Exception as e:
            self.error = e

    def stop(self):
        self.stop_event.set()
        self.join(60)
        assert not self.is_alive()
        assert self.error is None, self.error


N_SESSIONS = 200
N_ALIVE = 20        # Sessions alive at once during the churn.


def test_many_sessions_while_packets_flow(ovs_br0):
    ovs = ovs_br0
    ctl = Controller(ovs)

    # A session that stays: it traces only 10.0.0.1, which the pump never
    # sends, so its memory is a fixed point to compare with.
    ctl.create("base", filter_="icmp,nw_src=10.0.0.1", max_traces=8,
               external_ids={"owner": "pytest-controller"})
    ctl.wait_status("base", state="active")
    send_icmp(ovs, 1)
    ctl.wait_stats("base", n_traces=1)
    wait_until(lambda: upcall_trace_memory(ovs).get("upcall_traces") == 1,
               what="the base trace in memory/show")
    before = upcall_trace_memory(ovs)
    assert before["upcall_trace_sessions"] == 1

    pump = PacketPump(ovs)
    pump.start()
    max_matched = 0
    try:
        for i in range(N_SESSIONS):
            ctl.create("churn-%d" % i, filter_="icmp", max_traces=4,
                       options={"mode": "circular" if i % 2 else "stop"},
                       external_ids={"owner": "pytest-controller",
                                     "batch": str(i // N_ALIVE)})
            if i >= N_ALIVE:
                ctl.delete("churn-%d" % (i - N_ALIVE))
            ctl.client.idl.run()
            for row in ctl.rows():
                max_matched = max(max_matched,
                                  row.statistics.get("n_matched", 0))
        # Let the last sessions see traffic before they go.
        ctl.client.run_until(
            lambda: (ctl.stats("churn-%d" % (N_SESSIONS - 1)) or {})
            .get("n_matched", 0) > 0,
            what="the last session to match a packet")
        ctl.delete(*["churn-%d" % i
                     for i in range(N_SESSIONS - N_ALIVE, N_SESSIONS)])
    finally:
        pump.stop()

    assert pump.n_sent > 0
    assert max_matched > 0, "no churned session ever matched a packet"

    # ovs-vswitchd survived and answers.
    assert "Open vSwitch" in ovs.appctl("version")
    assert "p1 1/1: (dummy)" in ovs.appctl("dpif/show")

    # Consistent final state: only "base" is left, in the database and in
    # ovs-vswitchd, with its status intact.
    ctl.client.run_until(lambda: [r.name for r in ctl.rows()] == ["base"],
                         what="only base to be left")
    ctl.wait_status("base", state="active")
    stats = ctl.wait_stats("base", n_traces=1)
    assert stats["n_matched"] == 1
    assert stats["n_traces_total"] == 1
    show = ovs.appctl("upcall/trace/show")
    assert "base" in show and "churn-" not in show

    # No leak: the trace memory is back where it was.
    wait_until(lambda: upcall_trace_memory(ovs) == before,
               what="memory/show upcall trace figures %s (now %s)"
               % (before, upcall_trace_memory(ovs)))

    errors = ovs.log_lines("ERR|EMER")
    assert errors == []
    warnings = [line for line in ovs.log_lines("WARN")
                if "upcall_trace" in line]
    assert warnings == []


def test_duplicate_names_refused(ovs_br0):
    """The database, not ovs-vswitchd, keeps names unique: a controller's
    transaction that would duplicate one fails, and the first session is
    untouched."""
    from ovs.db.idl import Transaction

    ovs = ovs_br0
    ctl = Controller(ovs)
    ctl.create("dup", filter_="icmp")
    ctl.wait_status("dup", state="active")
    send_icmp(ovs, 1)
    ctl.wait_stats("dup", n_traces=1)

    for _ in range(3):
        ctl.client.idl.run()
        txn = ctl.client.Transaction(ctl.client.idl)
        row = txn.insert(ctl.client.idl.tables["Upcall_Trace"])
        row.name = "dup"
        row.bridge = "br0"
        assert txn.commit_block() == Transaction.ERROR
        assert "constraint violation" in txn.get_error()
    assert [r.name for r in ctl.rows()] == ["dup"]
    ovs.appctl("time/warp", "1100", "100")
    assert ctl.stats("dup")["n_traces"] == 1
    assert "10.0.0.1" in ovs.appctl("upcall/trace/list", "dup")


def _schema(builddir, tmp_path, version, fragment=None):
    """Writes the stock schema of the build (8.8.0), or it with the tables
    of 'fragment' added and the version 'version', and returns its path."""
    with open(os.path.join(builddir, "vswitchd",
                           "vswitch.ovsschema.pristine")) as f:
        schema = json.load(f)
    assert schema["version"] == "8.8.0"
    if fragment:
        with open(fragment) as f:
            schema["tables"].update(json.load(f))
    schema["version"] = version
    path = str(tmp_path / ("vswitch-%s.ovsschema" % version))
    with open(path, "w") as f:
        json.dump(schema, f)
    return path


def _tool(builddir, *args, check=True):
    return subprocess.run(
        [os.path.join(builddir, "ovsdb", "ovsdb-tool")] + list(args),
        universal_newlines=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, check=check)


def _transact(builddir, db, *ops):
    out = _tool(builddir, "transact", db,
                json.dumps(["Open_vSwitch"] + list(ops))).stdout
    result = json.loads(out)
    assert all("error" not in r for r in result if r), result
    return result


def _query(builddir, db, table, columns):
    return _transact(builddir, db, {"op": "select", "table": table,
                                    "where": [], "columns": columns})[0][
                                        "rows"]


@pytest.mark.parametrize("old", ["8.8.0", "8.9.0"])
def test_schema_converts(builddir, tmp_path, old):
    """ovsdb-tool convert (what ovs-ctl does at upgrade) takes a database of
    stock Open vSwitch (8.8.0) or of the previous version of this project
    (8.9.0) to the current schema, keeping its contents."""
    current = os.path.join(builddir, "vswitchd", "vswitch.ovsschema")
    with open(current) as f:
        assert json.load(f)["version"] == "8.10.0"
    fragment = (os.path.join(DATA, "upcall-trace-8.9.0.ovsschema")
                if old == "8.9.0" else None)
    schema = _schema(builddir, tmp_path, old, fragment)
    db = str(tmp_path / "conf.db")
    _tool(builddir, "create", db, schema)
    _transact(builddir, db,
              {"op": "insert", "table": "Open_vSwitch",
               "row": {"bridges": ["named-uuid", "br"]}},
              {"op": "insert", "table": "Bridge", "uuid-name": "br",
               "row": {"name": "br0"}})
    if old == "8.9.0":
        _transact(builddir, db,
                  {"op": "insert", "table": "Upcall_Trace",
                   "row": {"name": "t1", "bridge": "br0", "filter": "icmp",
                           "options": ["map", [["duration", "60"]]],
                           "status": ["map", [["state", "active"],
                                              ["n_matched", "3"]]]}},
                  {"op": "insert", "table": "Upcall_Trace",
                   "row": {"bridge": "br0"}})

    _tool(builddir, "convert", db, current)
    assert _tool(builddir, "db-version", db).stdout.strip() == "8.10.0"
    assert [r["name"] for r in _query(builddir, db, "Bridge", ["name"])] \
        == ["br0"]
    rows = _query(builddir, db, "Upcall_Trace",
                  ["name", "bridge", "filter", "options", "statistics",
                   "expires_at", "iface_id"])
    if old == "8.8.0":
        assert rows == []
        return
    rows.sort(key=lambda r: r["name"])
    # The unnamed row gets the empty name (ovs-vswitchd then reports it in
    # the error state until it is named); the named one keeps everything.
    assert [r["name"] for r in rows] == ["", "t1"]
    t1 = rows[1]
    assert (t1["bridge"], t1["filter"]) == ("br0", "icmp")
    assert t1["options"] == ["map", [["duration", "60"]]]
    assert t1["statistics"] == ["map", []]
    assert t1["expires_at"] == ["set", []]
    assert t1["iface_id"] == ["set", []]


def test_schema_conversion_with_duplicate_names(builddir, tmp_path):
    """In 8.9.0, names were optional and not unique.  Rows that share a name
    (or several rows without one, which all get the empty name) cannot be
    converted: the index forbids it.  The online conversion
    (ovsdb-client convert) refuses and leaves the database as it was.  The
    offline one (ovsdb-tool convert, which ovs-ctl runs when it starts
    ovsdb-server after an upgrade) does not fail but drops the transactions
    that would break the index, with every row they created: the topic
    document says to give each session a unique name, and compact the
    database, before upgrading.  Then both convert."""
    schema = _schema(builddir, tmp_path, "8.9.0",
                     os.path.join(DATA, "upcall-trace-8.9.0.ovsschema"))
    current = os.path.join(builddir, "vswitchd", "vswitch.ovsschema")

    def make_db(name):
        db = str(tmp_path / name)
        _tool(builddir, "create", db, schema)
        _transact(builddir, db,
                  {"op": "insert", "table": "Upcall_Trace",
                   "row": {"name": "keep", "bridge": "br0"}})
        _transact(builddir, db,
                  {"op": "insert", "table": "Upcall_Trace",
                   "row": {"name": "d", "bridge": "br0"}},
                  {"op": "insert", "table": "Upcall_Trace",
                   "row": {"name": "d", "bridge": "br1"}})
        return db

    # Online: refused, nothing changed.
    db = make_db("online.db")
    sock = str(tmp_path / "db.sock")
    server = subprocess.Popen(
        [os.path.join(builddir, "ovsdb", "ovsdb-server"), db,
         "--remote=punix:" + sock, "--unixctl=" + str(tmp_path / "ctl"),
         "--log-file=" + str(tmp_path / "ovsdb-server.log")])
    try:
        client = os.path.join(builddir, "ovsdb", "ovsdb-client")
        wait_until(lambda: os.path.exists(sock), what="ovsdb-server")
        p = subprocess.run([client, "convert", "unix:" + sock, current],
                           universal_newlines=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        assert p.returncode != 0
        assert "constraint violation" in p.stderr
        assert "identical values (d)" in p.stderr
        p = subprocess.run([client, "get-schema-version", "unix:" + sock],
                           universal_newlines=True, stdout=subprocess.PIPE,
                           check=True)
        assert p.stdout.strip() == "8.9.0"
    finally:
        server.terminate()
        server.wait(30)

    # Offline: the transaction with the duplicates is lost.
    db = make_db("offline.db")
    _tool(builddir, "convert", db, current)
    assert sorted(r["name"] for r in _query(builddir, db, "Upcall_Trace",
                                            ["name"])) == ["keep"]

    # Renamed first: every row converts.  Offline, the database must also
    # be compacted first: ovsdb-tool convert replays its whole log, and the
    # transaction that once created the duplicates would still be dropped.
    db = make_db("renamed.db")
    _transact(builddir, db,
              {"op": "update", "table": "Upcall_Trace",
               "where": [["bridge", "==", "br1"]], "row": {"name": "d1"}})
    _tool(builddir, "compact", db)
    _tool(builddir, "convert", db, current)
    assert sorted(r["name"] for r in _query(builddir, db, "Upcall_Trace",
                                            ["name"])) == ["d", "d1", "keep"]
