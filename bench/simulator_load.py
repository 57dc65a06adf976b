"""Simulator throughput: can the simulator outrun the trigger benchmark's clients?

The simulator runs in its own process (``bench.sim_process``); the load comes from this process,
written on bare asyncio streams (HTTP/1.1 keep-alive, one TCP connection per poller) so the client
costs as little as possible and the figure is the server's. Each poller alternates the trigger's two
polling requests, ``GET /v1/fine_tuning/jobs/{id}`` and ``GET .../events?limit=100``.

* closed loop: 1,000 pollers, each sending its next request as soon as the last one is answered:
  the requests per second the simulator serves at that concurrency;
* open loop (full run only): 3,000 pollers, each one request every 10 s at a random phase
  (300 req/s), the load of the N = 3,000 trigger run: achieved rate and latency.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
import uuid
from typing import Any

from bench.common import (
    BENCH_API_KEY,
    Check,
    Report,
    percentile,
    print_checks,
    print_header,
    simulator_process,
    training_jsonl,
)

TARGET_RPS = 300.0


def _post(url: str, body: bytes, content_type: str) -> Any:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {BENCH_API_KEY}", "Content-Type": content_type},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _create_jobs(base_url: str, count: int) -> list[str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="load.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n".encode()
        + training_jsonl()
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    upload = _post(f"{base_url}/files", b"".join(parts), f"multipart/form-data; boundary={boundary}")
    body = {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": upload["id"],
        # Long enough to stay running through the test, with a few dozen events.
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 50, "batch_size": 10}}},
    }
    return [
        _post(f"{base_url}/fine_tuning/jobs", json.dumps(body).encode(), "application/json")["id"] for _ in range(count)
    ]


class Poller:
    """One keep-alive connection sending GETs one at a time."""

    def __init__(self, host: str, port: int, paths: list[str]) -> None:
        self.host, self.port, self.paths = host, port, paths
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.turn = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self) -> None:
        assert self.reader is not None and self.writer is not None
        path = self.paths[self.turn % len(self.paths)]
        self.turn += 1
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {BENCH_API_KEY}\r\n"
            "Accept: application/json\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _connect_all(pollers: list[Poller]) -> None:
    # In waves, so the listen backlog is never the limit being measured.
    for i in range(0, len(pollers), 200):
        await asyncio.gather(*(p.connect() for p in pollers[i : i + 200]))


async def closed_loop(
    host: str, port: int, job_paths: list[list[str]], pollers_n: int, seconds: float
) -> dict[str, Any]:
    pollers = [Poller(host, port, job_paths[i % len(job_paths)]) for i in range(pollers_n)]
    await _connect_all(pollers)
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def loop(p: Poller) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                await p.request()
            except (OSError, RuntimeError, asyncio.IncompleteReadError):
                errors += 1
                return
            latencies.append(time.perf_counter() - t)

    cpu = time.process_time()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(loop(p) for p in pollers))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu
    for p in pollers:
        p.close()
    return {
        "pollers": pollers_n,
        "seconds": elapsed,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "latency_ms_p50": percentile(latencies, 50) * 1000,
        "latency_ms_p99": percentile(latencies, 99) * 1000,
        "errors": errors,
        "client_cpu_share": client_cpu / elapsed,
    }


async def open_loop(
    host: str, port: int, job_paths: list[list[str]], pollers_n: int, period: float, seconds: float
) -> dict[str, Any]:
    pollers = [Poller(host, port, job_paths[i % len(job_paths)]) for i in range(pollers_n)]
    await _connect_all(pollers)
    latencies: list[float] = []
    errors = 0
    rng = random.Random(3)
    started = time.perf_counter()

    async def loop(p: Poller, phase: float) -> None:
        nonlocal errors
        due = started + phase
        while due < started + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            t = time.perf_counter()
            try:
                await p.request()
            except (OSError, RuntimeError, asyncio.IncompleteReadError):
                errors += 1
                return
            latencies.append(time.perf_counter() - t)
            due += period

    await asyncio.gather(*(loop(p, rng.uniform(0, period)) for p in pollers))
    elapsed = time.perf_counter() - started
    for p in pollers:
        p.close()
    return {
        "pollers": pollers_n,
        "period_s": period,
        "offered_rps": pollers_n / period,
        "seconds": elapsed,
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "latency_ms_p50": percentile(latencies, 50) * 1000,
        "latency_ms_p99": percentile(latencies, 99) * 1000,
        "latency_ms_max": max(latencies) * 1000 if latencies else float("nan"),
        "errors": errors,
    }


def run(quick: bool) -> Report:
    report = Report("simulator", quick)
    print_header("Simulator throughput (simulator in its own process; bare asyncio client)", report.machine)
    seconds = 5.0 if quick else 10.0
    with simulator_process(1.0) as sim:
        job_ids = _create_jobs(sim.url, 50)
        host_port = sim.root.split("://", 1)[1]
        host, port = host_port.rsplit(":", 1)
        paths = [[f"/v1/fine_tuning/jobs/{j}", f"/v1/fine_tuning/jobs/{j}/events?limit=100"] for j in job_ids]
        closed = asyncio.run(closed_loop(host, int(port), paths, 1000, seconds))
        opened = None if quick else asyncio.run(open_loop(host, int(port), paths, 3000, 10.0, 15.0))
        stats = sim.admin("stats")
    report.figures["closed_loop_1000"] = closed
    report.figures["server_threads_at_end"] = stats["threads"]
    checks = [
        Check(
            "1,000 pollers, closed loop: req/s",
            closed["rps"],
            "req/s",
            f">= {TARGET_RPS:g} req/s",
            closed["rps"] >= TARGET_RPS,
        ),
        Check("  latency p50", closed["latency_ms_p50"], "ms", "", None),
        Check("  latency p99", closed["latency_ms_p99"], "ms", "", None),
        Check("  errors", closed["errors"], "", "= 0", closed["errors"] == 0),
        Check("  load client CPU share", closed["client_cpu_share"] * 100, "%", "", None, note="of one core"),
    ]
    if opened is not None:
        report.figures["open_loop_3000_at_10s"] = opened
        sustained = opened["rps"] >= 0.95 * opened["offered_rps"] and opened["latency_ms_p99"] < 1000
        checks += [
            Check("3,000 pollers x 1 per 10 s: req/s", opened["rps"], "req/s", "~300 req/s", sustained),
            Check("  latency p50", opened["latency_ms_p50"], "ms", "", None),
            Check("  latency p99", opened["latency_ms_p99"], "ms", "< 1000 ms", opened["latency_ms_p99"] < 1000),
            Check("  errors", opened["errors"], "", "= 0", opened["errors"] == 0),
        ]
    report.checks.extend(checks)
    report.notes.append(__doc__ or "")
    print_checks(checks, measured_label="simulator")
    verdict = "yes" if closed["rps"] >= TARGET_RPS and (opened is None or opened["rps"] >= 0.95 * 300) else "NO"
    print(
        f"  could sustain N=3,000 pollers at one request per 10 s (300 req/s): {verdict} "
        f"(closed-loop capacity {closed['rps']:.0f} req/s = {closed['rps'] / TARGET_RPS:.1f}x that)"
    )
    return report
