"""Triggerer capacity: N ``FineTuningJobTrigger``s on one event loop vs the sync-hook baseline.

For each N, two runs, each in a fresh process against a fresh simulator process
(``bench.sim_process``, the provider's Simulator with connection and request counters):

* ``FineTuningJobTrigger`` (async transport, one shared httpx client per loop);
* baseline: the same waits by a trigger calling the sync ``FineTuningHook.retrieve_job`` on the loop
  (the official OpenAI provider's ``OpenAIBatchTrigger`` pattern).

Figures and how they are measured:

* event-loop lag: a task sleeps 10 ms in a loop; lag = wake-up time - 10 ms, over the whole run
  (from the first trigger's start to the last trigger's event), leaving out the few wake-ups that
  overlap the benchmark's own heap count (``len(gc.get_objects())``, once, next to the RSS reading);
  the same heartbeat on the idle loop for ~2 s before the start gives the machine's noise floor;
* memory per trigger: (RSS once every trigger has had its first poll - RSS before any trigger
  started) / N, read from /proc/self/status; httpx and requests are imported before the first
  reading (a triggerer has them loaded anyway);
* TCP connections opened: connections the simulator process accepted during the run (its accept
  loop is wrapped), minus the one admin request that reads the counter;
* completion latency: time the trigger's event arrived - the job's exact terminal time, which the
  simulator computes (``JobRecord.natural_end_wall()``, served on an admin path); both processes
  read the same wall clock;
* requests per job: /v1 requests the simulator served during the run, by endpoint, / N;
* CPU per poll: the trigger process's CPU time during the run / job GETs served;
* gen-2 GC: pauses of full collections (``gc.callbacks``) and the worst lag outside them.

``python -m bench triggerer --what-if-shards 8`` (or ``--max-in-flight``, ``--what-if-events-every``)
re-runs it with the provider's transport or trigger patched in the worker process only, to try a fix.

Besides N = 100 / 1,000 / 3,000 on loopback, the full run repeats N = 1,000 with the simulator
answering every GET after 50 ms (its ``slow`` fault), closer to a real API's round trip: that is where
a sync call on the loop hurts, since the loop is blocked for the whole round trip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_API_KEY,
    CONN_ID,
    Check,
    Report,
    child_env,
    percentile,
    print_checks,
    print_header,
    simulator_process,
)

POLL_INTERVAL = 10.0
SECONDS_PER_STEP = 1.0
HEARTBEAT_MS = 10.0

# Targets (at N = 1,000; p99 lag also at 3,000).
TARGET_P99_MS = 10.0
TARGET_MAX_MS = 100.0
TARGET_KB = 50.0
TARGET_CONNECTIONS = 64
TARGET_LATENCY_S = POLL_INTERVAL + 1.0
TARGET_RATIO = 100.0


LATENCY_MS = 50.0


def _run_one(
    variant: str, n: int, end_range: tuple[float, float], latency_ms: float, seed: int, what_if: list[str]
) -> dict[str, Any]:
    memory_at = POLL_INTERVAL + 1.5  # every trigger has polled once (first poll within one interval)
    with simulator_process(SECONDS_PER_STEP) as sim, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "worker.log"
        from airflow_provider_ft.testing import connection_uri_json

        env = child_env(**{f"AIRFLOW_CONN_{CONN_ID.upper()}": connection_uri_json(BENCH_API_KEY, sim.url)})
        command = [
            sys.executable,
            "-m",
            "bench.triggerer_worker",
            f"--variant={variant}",
            f"--n={n}",
            f"--poll-interval={POLL_INTERVAL}",
            f"--seconds-per-step={SECONDS_PER_STEP}",
            f"--end-min={end_range[0]}",
            f"--end-max={end_range[1]}",
            f"--memory-at={memory_at}",
            f"--sim-root={sim.root}",
            f"--api-key={BENCH_API_KEY}",
            f"--seed={seed}",
            f"--server-latency-ms={latency_ms}",
            f"--out={out}",
            *(what_if if variant == "async" else []),
        ]
        started = time.perf_counter()
        with log.open("w") as log_fh:
            # Trigger logs (a line per job event) go to a file, as in a triggerer, not to this terminal.
            done = subprocess.run(command, stdout=log_fh, stderr=subprocess.STDOUT, env=env, timeout=900, check=False)
        text = log.read_text(errors="replace")
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"triggerer worker {variant} N={n} failed (rc {done.returncode}):\n{text[-4000:]}")
        raw: dict[str, Any] = json.loads(out.read_text())
        raw["wall_s"] = time.perf_counter() - started
        raw["log_bytes"] = len(text)
        raw["log_retries"] = text.count("retrying in")
        raw["log_poll_failures"] = text.count("will poll again")
        return raw


def derive(raw: dict[str, Any]) -> dict[str, Any]:
    n = raw["n"]
    lag_ms = [v * 1000 for v in raw["lag_s"]]
    latencies = [raw["event_times"][j] - raw["job_ends"][j] for j in raw["event_times"]]
    before, after = raw["stats_before"], raw["stats_after"]
    by_endpoint = {
        name: count - before["requests"].get(name, 0)
        for name, count in after["requests"].items()
        if count - before["requests"].get(name, 0) > 0
    }
    outcomes: dict[str, int] = {}
    for status in raw["outcomes"].values():
        outcomes[status] = outcomes.get(status, 0) + 1
    rss_delta = raw.get("rss_after", raw["rss_before"]) - raw["rss_before"]
    polls = by_endpoint.get("GET /fine_tuning/jobs/{id}", 0)
    gc_info = raw["gc"]
    return {
        "n": n,
        "variant": raw["variant"],
        "lag_ms": {
            "samples": len(lag_ms),
            "p50": percentile(lag_ms, 50),
            "p99": percentile(lag_ms, 99),
            "max": max(lag_ms) if lag_ms else float("nan"),
            "max_outside_gen2_gc": raw["lag_outside_gen2_max_s"] * 1000,
            # The same heartbeat on the idle loop for a few seconds before the triggers start.
            "idle_samples": len(raw["idle_lag_s"]),
            "idle_p99": percentile([v * 1000 for v in raw["idle_lag_s"]], 99),
            "idle_max": max((v * 1000 for v in raw["idle_lag_s"]), default=float("nan")),
            "worst": [(round(t, 2), round(v * 1000, 1)) for t, v in raw["lag_worst"][:10]],
        },
        "gc": {
            "objects_before": gc_info["objects_before"],
            "objects_running": raw.get("objects_running"),
            "objects_per_trigger": (raw.get("objects_running", 0) - gc_info["objects_before"]) / n,
            "full_collection_before_ms": gc_info["full_collection_before_s"] * 1000,
            "collections_by_generation": gc_info["collections"],
            "gen2_pauses_ms": [round(d * 1000, 1) for _, d in gc_info["gen2"]],
            "gen2_max_ms": max((d * 1000 for _, d in gc_info["gen2"]), default=0.0),
        },
        "memory": {
            "rss_before_mb": raw["rss_before"] / 2**20,
            "rss_running_mb": raw.get("rss_after", 0) / 2**20,
            "rss_peak_mb": raw["rss_peak"] / 2**20,
            "measured_at_s": raw.get("at_s"),
            "triggers_running_then": raw.get("running"),
            "kb_per_trigger": rss_delta / n / 1024,
        },
        # The admin request that read stats_after opened one connection itself.
        "connections_opened": after["connections_accepted"] - before["connections_accepted"] - 1,
        "completion_latency_s": {
            "min": min(latencies) if latencies else float("nan"),
            "p50": percentile(latencies, 50),
            "max": max(latencies) if latencies else float("nan"),
        },
        "requests_per_job": sum(by_endpoint.values()) / n,
        "requests_by_endpoint": by_endpoint,
        "cpu_s": raw["cpu_s"],
        "cpu_ms_per_poll": raw["cpu_s"] * 1000 / polls if polls else float("nan"),
        "events_received": len(raw["event_times"]),
        "outcomes": outcomes,
        "errors": raw["errors"],
        "retries_logged": raw["log_retries"],
        "poll_failures_logged": raw["log_poll_failures"],
        "run_s": raw["run_s"],
        "create_tasks_s": raw["create_tasks_s"],
        "job_creation": raw["creation"],
        "trigger_log_mb": raw["log_bytes"] / 2**20,
    }


def _checks(n: int, ours: dict[str, Any], base: dict[str, Any]) -> list[Check]:
    at_1000 = n == 1000
    p99_applies = n in (1000, 3000)

    def verdict(applies: bool, ok: bool) -> bool | None:
        return ok if applies else None

    lag, blag = ours["lag_ms"], base["lag_ms"]
    lat, blat = ours["completion_latency_s"], base["completion_latency_s"]
    mem, bmem = ours["memory"]["kb_per_trigger"], base["memory"]["kb_per_trigger"]
    conns = ours["connections_opened"]
    ratio = blag["max"] / lag["max"] if lag["max"] > 0 else float("inf")
    return [
        Check("loop lag p50", lag["p50"], "ms", "", None, blag["p50"]),
        Check(
            "loop lag p99",
            lag["p99"],
            "ms",
            f"<= {TARGET_P99_MS:g} ms",
            verdict(p99_applies, lag["p99"] <= TARGET_P99_MS),
            blag["p99"],
        ),
        Check(
            "loop lag max",
            lag["max"],
            "ms",
            f"<= {TARGET_MAX_MS:g} ms",
            verdict(at_1000, lag["max"] <= TARGET_MAX_MS),
            blag["max"],
        ),
        Check("  max outside gen-2 GC", lag["max_outside_gen2_gc"], "ms", "", None, blag["max_outside_gen2_gc"]),
        Check("  idle loop lag max (floor)", lag["idle_max"], "ms", "", None, blag["idle_max"]),
        Check("  gen-2 GC pause max", ours["gc"]["gen2_max_ms"], "ms", "", None, base["gc"]["gen2_max_ms"]),
        Check("max lag: baseline / ours", ratio, "x", f">= {TARGET_RATIO:g}x", verdict(at_1000, ratio >= TARGET_RATIO)),
        Check("memory per trigger", mem, "KB", f"<= {TARGET_KB:g} KB", verdict(at_1000, mem <= TARGET_KB), bmem),
        Check(
            "TCP connections opened",
            conns,
            "",
            f"<= {TARGET_CONNECTIONS}",
            verdict(at_1000, conns <= TARGET_CONNECTIONS),
            base["connections_opened"],
        ),
        Check("completion latency p50", lat["p50"], "s", "", None, blat["p50"]),
        Check(
            "completion latency max",
            lat["max"],
            "s",
            f"<= {TARGET_LATENCY_S:g} s",
            verdict(at_1000, lat["max"] <= TARGET_LATENCY_S),
            blat["max"],
        ),
        Check("requests per job", ours["requests_per_job"], "", "", None, base["requests_per_job"]),
        Check("CPU per poll (incl. start)", ours["cpu_ms_per_poll"], "ms", "", None, base["cpu_ms_per_poll"]),
        Check(
            "events received",
            ours["events_received"],
            "",
            f"= {n:,}",
            ours["events_received"] == n and not ours["errors"],
            base["events_received"],
        ),
    ]


def run(quick: bool, what_if: list[str] | None = None) -> Report:
    """``what_if``: extra worker options for the trigger runs (see ``bench.triggerer_worker --help``)."""
    what_if = what_if or []
    report = Report("triggerer-whatif" if what_if else "triggerer", quick)
    title = "Triggerer capacity: FineTuningJobTrigger vs sync-hook baseline, one event loop"
    print_header(title + (f"  [WHAT-IF {' '.join(what_if)}]" if what_if else ""), report.machine)
    end_range = (13.0, 20.0) if quick else (13.0, 23.0)
    scenarios: list[tuple[int, float]] = [(100, 0.0), (1000, 0.0)] if quick else [(100, 0.0), (1000, 0.0), (3000, 0.0)]
    if not quick:
        scenarios.append((1000, LATENCY_MS))
    print(
        f"poll interval {POLL_INTERVAL:g} s; simulator in its own process, {SECONDS_PER_STEP:g} s per training step; "
        f"jobs end {end_range[0]:g}-{end_range[1]:g} s after the triggers start; heartbeat {HEARTBEAT_MS:g} ms; "
        "baseline = sync FineTuningHook.retrieve_job on the loop (OpenAIBatchTrigger pattern)"
    )
    report.notes.append(__doc__ or "")
    report.figures["setup"] = {
        "poll_interval_s": POLL_INTERVAL,
        "seconds_per_step": SECONDS_PER_STEP,
        "job_end_range_s": end_range,
        "heartbeat_ms": HEARTBEAT_MS,
        "what_if": what_if,
    }
    for i, (n, latency_ms) in enumerate(scenarios):
        label = f"N={n:,}" + (f", {latency_ms:g} ms RTT" if latency_ms else "")
        runs = {}
        for variant in ("async", "sync"):
            print(f"  running {label} {variant} ...", flush=True)
            runs[variant] = derive(_run_one(variant, n, end_range, latency_ms, 100 + i, what_if))
        ours, base = runs["async"], runs["sync"]
        checks = _checks(n, ours, base)
        for c in checks:
            c.name = f"{label} {c.name}"
        report.checks.extend(checks)
        report.figures[label] = {"trigger": ours, "baseline_sync_hook": base, "server_latency_ms": latency_ms}
        print(f"\n{label}  (targets apply at N=1,000; p99 lag also at 3,000)")
        print_checks(checks, measured_label="FT trigger", baseline_label="sync baseline")
        print(
            f"  requests (trigger): {ours['requests_by_endpoint']}\n"
            f"  requests (baseline): {base['requests_by_endpoint']}\n"
            f"  memory read {ours['memory']['measured_at_s']:.1f} s after start, "
            f"{ours['memory']['triggers_running_then']:,} of {n:,} triggers running; peak RSS "
            f"{ours['memory']['rss_peak_mb']:.0f} MB (baseline {base['memory']['rss_peak_mb']:.0f} MB); "
            f"objects per trigger {ours['gc']['objects_per_trigger']:.0f} "
            f"(baseline {base['gc']['objects_per_trigger']:.0f}); "
            f"full GC of the heap before start {ours['gc']['full_collection_before_ms']:.0f} ms "
            f"({ours['gc']['objects_before']:,} objects)\n"
            f"  worst lags (s since start, ms): {ours['lag_ms']['worst'][:5]}"
        )
        problems = [
            f"{name}: {r['errors'][:3]} ({r['retries_logged']} retries, "
            f"{r['poll_failures_logged']} failed polls logged)"
            for name, r in runs.items()
            if r["errors"] or r["retries_logged"] or r["poll_failures_logged"]
        ]
        for line in problems:
            print(f"  problems {line}")
    return report
