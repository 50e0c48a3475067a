#!/usr/bin/env python3
# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""Prints the one table of "make bench" from the micro-benchmarks' Google
Benchmark JSON and bench-e2e.py's JSON, with the targets next to the
numbers, and writes it with the machine and the command as Markdown."""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess

TARGETS = {
    # case: (throughput ratio to stock, callgrind instructions ratio)
    "no session": (0.99, 1.005),
    "1 non-matching": (0.98, None),
    "1000 non-matching": (0.98, 1.02),
    "10000 non-matching": (None, 1.03),
    "1 matching all": (0.70, 2.5),
}

# memory/show against the RSS growth it explains.
MEMORY_SHOW_TOLERANCE = 0.25


def load(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return None


def mib(n_bytes):
    return "%.1f MiB" % (n_bytes / 1048576.0)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    try:
        cc = subprocess.run(["gcc", "--version"], capture_output=True,
                            text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        cc = "unknown"
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "memory": "%.1f GiB" % (mem / 2 ** 30),
            "kernel": platform.release(), "compiler": cc}


def micro_rows(micro):
    rows = []
    if not micro:
        return rows
    medians = [b for b in micro["benchmarks"]
               if b.get("aggregate_name") == "median"
               or b.get("run_type") == "iteration"
               and "aggregate_name" not in b]
    seen = set()
    for b in medians:
        name = b.get("run_name", b["name"])
        if name in seen:
            continue
        seen.add(name)
        t = b["real_time"]
        unit = b.get("time_unit", "ns")
        extra = []
        if "bytes_per_trace" in b:
            extra.append("%d B/trace accounted" % b["bytes_per_trace"])
        if "output_bytes" in b:
            extra.append("%d B output" % b["output_bytes"])
        measured = "%.0f %s/op" % (t, unit) if t >= 10 else \
            "%.2f %s/op" % (t, unit)
        if extra:
            measured += " (" + ", ".join(extra) + ")"
        rows.append(["1 micro", micro_label(name), measured, "-", "-", "-",
                     "-"])
    return rows


def micro_label(name):
    m = re.match(r"BM_MatchDecision/sessions:(\d+)/matching:(\d)", name)
    if m:
        return "match decision, %s sessions, %s" % (
            m.group(1), "all matching" if m.group(2) == "1"
            else "none matching")
    labels = {
        "BM_NCapturing": "uptrace_engine_n_capturing()",
        "BM_Expects/expectations:0": "uptrace_engine_expects(), 0 stored",
        "BM_Expects/expectations:4096":
            "uptrace_engine_expects(), 4096 stored",
        "BM_CaptureStore": "capture + store a round (no eviction)",
        "BM_CaptureEvict": "capture + store, evicting (max_traces=64)",
        "BM_CaptureRecirc": "trace a ct packet: 2 rounds, continue",
        "BM_RenderGet/json:0": "render trace/get (2 rounds), text",
        "BM_RenderGet/json:1": "render trace/get (2 rounds), JSON",
        "BM_RenderList/json:0": "render trace/list (64 traces), text",
        "BM_RenderList/json:1": "render trace/list (64 traces), JSON",
    }
    return labels.get(name, name)


def e2e_rows(e2e):
    rows = []
    if not e2e:
        return rows
    tp = e2e.get("throughput")
    if tp:
        stock = tp["cases"]["stock"]["median"]
        for case, r in tp["cases"].items():
            runs = r["runs"]
            measured = "%.0f upcalls/s (median of %d: %.0f-%.0f)" % (
                r["median"], len(runs), min(runs), max(runs))
            ratio = r["median"] / stock
            target = TARGETS.get(case, (None, None))[0]
            rows.append([
                "2 throughput", case, measured, "%.0f upcalls/s" % stock,
                "%.1f%%" % (100 * ratio),
                ">= %d%% of stock" % round(100 * target) if target else "-",
                ("yes" if ratio >= target else "NO") if target else "-"])
    if tp and "cpu_median" in tp["cases"].get("stock", {}):
        stock = tp["cases"]["stock"]["cpu_median"]
        for case, r in tp["cases"].items():
            runs = r["cpu_runs"]
            measured = ("%.0f upcalls per main-thread CPU second (median of "
                        "%d: %.0f-%.0f; waited for a CPU %.0f%% of the time)"
                        % (r["cpu_median"], len(runs), min(runs), max(runs),
                           100 * r["cpu_wait"]))
            ratio = r["cpu_median"] / stock
            target = TARGETS.get(case, (None, None))[0]
            rows.append([
                "2 throughput/CPU", case, measured, "%.0f" % stock,
                "%.1f%%" % (100 * ratio),
                ">= %d%% of stock" % round(100 * target) if target else "-",
                ("yes" if ratio >= target else "NO") if target else "-"])
    # The targets apply where datapath threads handle upcalls, as in
    # production (callgrind-pmd); the main thread's figures, whose
    # allocations share the configuration's malloc arena, are shown against
    # stock without a target (see bench-e2e.py callgrind()).
    for key, label, with_targets in (
            ("callgrind-pmd", "2 callgrind, PMD thread", True),
            ("callgrind", "2 callgrind, main thread", False)):
        cg = e2e.get(key)
        if not cg:
            continue
        stock = cg["cases"]["stock"]["per_upcall"]
        for case, r in cg["cases"].items():
            ratio = r["per_upcall"] / stock
            target = (TARGETS.get(case, (None, None))[1] if with_targets
                      else None)
            if not target:
                target_text = "-"
            elif target < 2:
                target_text = "within +%.1f%% of stock" % (100 * target - 100)
            else:
                target_text = "<= %.1fx stock (stretch 2x)" % target
            rows.append([
                label, case,
                "%.0f instructions/upcall (%.2fx)" % (r["per_upcall"],
                                                      ratio),
                "%.0f" % stock, "%.2f%%" % (100 * ratio), target_text,
                ("yes" if ratio <= target else "NO") if target else "-"])
    mem = e2e.get("memory")
    if mem:
        for n, m in mem.get("stored", {}).items():
            t, b = m["traced"], m["baseline"]
            bound = m["bound_bytes"]
            attributable = (t["rss_growth_kb"] - b["rss_growth_kb"]) * 1024
            engine = t["engine_bytes"]
            shown = t["memory_show"].get("upcall_trace_kbytes", 0) * 1024
            close = memory_show_close(shown, attributable)
            ok = engine <= bound and attributable <= bound and close
            rows.append([
                "3 memory", "%s stored traces (%d sessions x max_traces %d)"
                % (n, m["sessions"], m["max_traces"]),
                "%d traces stored, %d evicted; sessions account %s (%.0f B/"
                "trace); memory/show %s; RSS +%s, +%s over no session "
                "(%.0f B/trace)"
                % (t["n_traces"], t["n_evicted"], mib(engine),
                   engine / max(t["n_traces"], 1), mib(shown),
                   mib(t["rss_growth_kb"] * 1024), mib(attributable),
                   attributable / max(t["n_traces"], 1)),
                "-", "-",
                "<= bound %s (sessions x max_traces x max-trace-size %d); "
                "memory/show within %d%% of RSS growth"
                % (mib(bound), m["max_trace_size"],
                   100 * MEMORY_SHOW_TOLERANCE),
                "yes" if ok else "NO"])
        sh = mem.get("shared")
        if sh and "shared" in sh and "baseline" in sh:
            t, b = sh["shared"], sh["baseline"]
            attributable = (t["rss_growth_kb"] - b["rss_growth_kb"]) * 1024
            mshow = t["memory_show"]
            shown = mshow.get("upcall_trace_kbytes", 0) * 1024
            rows.append([
                "3 memory", "%d packets, %d sessions storing each"
                % (sh["packets"], sh["sessions"]),
                "%d traces, %d rounds; memory/show %s; RSS +%s over no "
                "session" % (mshow.get("upcall_traces", 0),
                             mshow.get("upcall_trace_rounds", 0),
                             mib(shown), mib(attributable)),
                "-", "-", "memory/show within %d%% of RSS growth"
                % (100 * MEMORY_SHOW_TOLERANCE),
                "yes" if memory_show_close(shown, attributable) else "NO"])
        s = mem.get("sustained")
        if s:
            t, b = s["traced"], s.get("baseline")

            def curve(samples):
                """RSS after a tenth, half and all of the upcalls, and the
                growth over the second half, in bytes."""
                tenth = samples[1] if len(samples) > 1 else samples[0]
                half = samples[len(samples) // 2]
                end = samples[-1]
                return tenth, half, end, (end[1] - half[1]) * 1024
            tenth, half, end, growth = curve(t["samples"])
            bgrowth = curve(b["samples"])[3] if b else 0
            engine = t["engine_bytes"]
            n = max(end[0] - half[0], 1)
            flat = growth <= 4 * 1048576
            ok = flat and engine <= s["bound_bytes"]
            rows.append([
                "3 memory", "sustained: %d traced upcalls, max_traces 64"
                % t["n_traces_total"],
                "RSS %s / %s / %s after %d / %d / %d upcalls; second half "
                "+%s (%.1f B/upcall; no session: +%s); engine %s, %d "
                "traces; %.0f s"
                % (mib(tenth[1] * 1024), mib(half[1] * 1024),
                   mib(end[1] * 1024), tenth[0], half[0], end[0],
                   mib(growth), growth / n, mib(bgrowth), mib(engine),
                   t["n_traces"], t["seconds"]),
                "-", "-",
                "flat (second half <= +4 MiB); engine <= bound %s"
                % mib(s["bound_bytes"]),
                "yes" if ok else "NO"])
    return rows


def memory_show_close(shown, rss_growth):
    return (rss_growth > 0
            and abs(shown - rss_growth) <= MEMORY_SHOW_TOLERANCE * rss_growth)


def read_rows(e2e):
    rows = []
    r = (e2e or {}).get("reads")
    if not r:
        return rows
    for name in ("list", "summary", "get"):
        if name in r:
            rows.append([
                "4 reading", "upcall/trace/%s over %d traces"
                % (name, r["stored"]),
                "%.3f s (median of %d; %d bytes of text)"
                % (r[name]["seconds"], len(r[name]["runs"]),
                   r[name]["bytes"]),
                "-", "-", "-", "-"])
    return rows


def table(rows):
    header = ["benchmark", "case", "measured", "stock", "vs stock",
              "target", "met"]
    widths = [max(len(str(r[i])) for r in rows + [header])
              for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in
                                 zip(r, widths)) + " |"
    out = [line(header),
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--micro")
    p.add_argument("--e2e")
    p.add_argument("--command", default="make bench")
    p.add_argument("--ovs-version", default="")
    p.add_argument("--markdown")
    args = p.parse_args()

    micro = load(args.micro)
    e2e = load(args.e2e)
    rows = micro_rows(micro) + e2e_rows(e2e) + read_rows(e2e)
    text = table(rows)
    m = machine()
    notes = []
    if e2e and "throughput" in e2e:
        tp = e2e["throughput"]
        notes.append("Throughput: %d packets of distinct UDP flows per run, "
                     "through ct(zone=1) and recirculation, megaflows "
                     "disabled: %d upcalls per run, fresh daemons, cases "
                     "interleaved.  'throughput' is wall clock until every "
                     "upcall is handled; 'throughput/CPU' divides by the "
                     "CPU time of ovs-vswitchd's main thread, which handles "
                     "the dummy datapath's upcalls, and is the one to trust "
                     "when other work shares the machine." % (
                         tp["packets"], tp["upcalls"]))
    cg_any = e2e and (e2e.get("callgrind") or e2e.get("callgrind-pmd"))
    if cg_any:
        a, b = cg_any["packets"]
        notes.append("Callgrind: instructions inside upcall_cb(), "
                     "(I(%d packets) - I(%d packets)) / (upcalls difference)"
                     ", counters zeroed after a warm-up.  'PMD thread': "
                     "input ports of type dummy-pmd, upcalls handled by a "
                     "PMD thread, as datapath threads handle them in "
                     "production; the targets apply there.  'main thread': "
                     "the dummy datapath's upcalls handled by the main "
                     "thread, whose malloc arena also holds the "
                     "configuration: after a large reconfiguration every "
                     "allocation there costs more, for stock as for ours "
                     "(the case 'stock 10000 other rows' shows it)."
                     % (b, a))
    if e2e and "memory" in e2e:
        s = e2e["memory"].get("sustained")
        if s:
            notes.append("Sustained memory: %d upcalls (one per packet, no "
                         "conntrack, max-idle 1 s), RSS sampled every "
                         "tenth; flat means the second half of the run grows "
                         "RSS by at most 4 MiB (a leak of 8 bytes per upcall "
                         "would show).%s" % (
                             s["upcalls"],
                             "" if s["upcalls"] >= 1000000 else
                             " (fewer than 1,000,000: reduced with "
                             "--sustained)"))
    print(text)
    for n in notes:
        print("  " + n)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("# Live upcall tracing: benchmark results\n\n")
            f.write("Command: `%s` (in the build folder)\n\n" % args.command)
            f.write("Date: %s  \n" % datetime.date.today().isoformat())
            f.write("Machine: %d CPUs, %s, %s RAM, Linux %s, %s  \n"
                    % (m["nproc"], m["cpu"], m["memory"], m["kernel"],
                       m["compiler"]))
            with open("/proc/loadavg") as la:
                f.write("Load average when the table was made: %s  \n"
                        % " ".join(la.read().split()[:3]))
            if args.ovs_version:
                f.write("Open vSwitch: %s (stock and ours built from the "
                        "same tree)\n" % args.ovs_version)
            f.write("\n" + text + "\n\n")
            for n in notes:
                f.write("- " + n + "\n")


if __name__ == "__main__":
    main()
