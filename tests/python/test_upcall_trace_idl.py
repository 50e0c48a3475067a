# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""A controller that drives upcall tracing through the OVS Python IDL.

It does what an orchestration agent would: creates Upcall_Trace rows tagged
with external_ids, follows their status as ovs-vswitchd writes it, changes
and deletes them, and does so for many sessions while packets flow.
"""

import re
import threading

from conftest import icmp_packet, wait_until


class Controller:
    """Upcall_Trace rows managed through the OVS Python IDL."""

    def __init__(self, ovs):
        self.ovs = ovs
        self.client = ovs.idl(["Upcall_Trace"])

    def rows(self):
        return self.client.rows("Upcall_Trace")

    def find(self, name):
        for row in self.rows():
            if row.name == [name]:
                return row
        return None

    def create(self, name, bridge="br0", filter_="", port=None,
               max_traces=None, options=None, external_ids=None):
        def fill(txn):
            row = txn.insert(self.client.idl.tables["Upcall_Trace"])
            row.name = [name]
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
    return {k: v for k, v in ovs.memory().items() if "upcall_trace" in k}


def test_controller_follows_a_session(ovs_br0):
    ovs = ovs_br0
    ctl = Controller(ovs)
    ids = {"owner": "pytest-controller", "ticket": "4242"}

    ctl.create("ctl1", filter_="icmp", port="p1", max_traces=4,
               external_ids=ids)
    status = ctl.wait_status("ctl1", state="active")
    assert status["datapath"] == "dummy@ovs-dummy"
    assert status["n_matched"] == "0"
    assert status["n_traces"] == "0"
    assert "error" not in status
    assert "last_trace_id" not in status

    # Three upcalls: the counters move.
    for host in (1, 2, 3):
        send_icmp(ovs, host)
    status = ctl.wait_status("ctl1", n_traces_total="3")
    assert status["state"] == "active"
    assert status["n_matched"] == "3"
    assert status["n_traces"] == "3"
    assert status["n_evicted"] == "0"
    assert re.fullmatch(r"0x[0-9a-f]+", status["last_trace_id"])
    assert int(status["last_trace_time"]) > 1500000000000
    trace = ovs.appctl("upcall/trace/get", status["last_trace_id"])
    assert "10.0.0.3" in trace

    # ovs-vswitchd wrote the status and nothing else: the controller's
    # external_ids are intact.
    assert ctl.find("ctl1").external_ids == ids

    # A smaller max_traces applies in place: the oldest trace is evicted.
    ctl.update("ctl1", max_traces=[2])
    status = ctl.wait_status("ctl1", n_traces="2")
    assert status["n_evicted"] == "1"
    assert status["n_traces_total"] == "3"

    # A packet from p2 does not match the session's port.
    send_icmp(ovs, 9, port="p2")
    wait_until(lambda: "10.0.0.9" in ovs.appctl("dpctl/dump-flows"),
               what="the packet from p2 to be handled")
    ovs.appctl("time/warp", "1100", "100")
    assert ctl.status("ctl1")["n_matched"] == "3"

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
    ctl.wait_status("base", n_traces="1")
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
                                  int(row.status.get("n_matched", "0")))
        # Let the last sessions see traffic before they go.
        ctl.client.run_until(
            lambda: int((ctl.status("churn-%d" % (N_SESSIONS - 1)) or {})
                        .get("n_matched", "0")) > 0,
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
    ctl.client.run_until(lambda: [r.name for r in ctl.rows()] == [["base"]],
                         what="only base to be left")
    status = ctl.wait_status("base", state="active", n_traces="1")
    assert status["n_matched"] == "1"
    assert status["n_traces_total"] == "1"
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
