"""Shared helpers: machine description, statistics, PASS/MISS checks, results files, simulator process.

Nothing here imports Airflow or the provider's HTTP code, so the parent process of ``python -m bench``
stays light; the measured work runs in child processes.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BENCH_API_KEY = "sk-bench-simulator-key"
CONN_ID = "bench_ft"
# A chat-format training file of 10 examples: with batch_size 10 one epoch is one training step.
TRAINING_EXAMPLES = 10


# --- machine ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        airflow_version = metadata.version("apache-airflow")
    except metadata.PackageNotFoundError:
        airflow_version = "?"
    versions = {}
    for dist in ("httpx", "httpcore", "requests"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "?"
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "airflow": airflow_version,
        "platform": platform.platform(),
        **versions,
    }


def print_header(title: str, info: dict[str, Any]) -> None:
    print()
    print("=" * 100)
    print(title)
    print(
        f"machine: {info['cores']} cores, {info['cpu_model']}; Python {info['python']}; Airflow {info['airflow']}; "
        f"httpx {info['httpx']}, httpcore {info['httpcore']}, requests {info['requests']}"
    )
    print("=" * 100)


# --- statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": float(len(values)),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


# --- checks -----------------------------------------------------------------------------------------


@dataclass
class Check:
    """One figure next to its target."""

    name: str
    value: float | None
    unit: str
    target: str
    passed: bool | None  # None: informational, no target
    baseline: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "n/a" if value is None or math.isnan(value) else "inf"
    if isinstance(value, int) or (float(value).is_integer() and unit == ""):
        text = f"{int(value):,}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def print_checks(
    checks: Sequence[Check], *, measured_label: str = "measured", baseline_label: str = "baseline"
) -> None:
    width = max([len(c.name) for c in checks] + [10])
    with_baseline = any(c.baseline is not None for c in checks)
    base_head = f"  {baseline_label:>14}" if with_baseline else ""
    print(f"  {'figure'.ljust(width)}  {measured_label:>14}{base_head}  {'target':<14} verdict")
    for c in checks:
        base = (f"  {fmt(c.baseline, c.unit) if c.baseline is not None else '':>14}") if with_baseline else ""
        verdict = "" if c.verdict == "info" and not c.target else c.verdict
        line = f"  {c.name.ljust(width)}  {fmt(c.value, c.unit):>14}{base}  {c.target:<14} {verdict}"
        if c.note:
            line += f"  ({c.note})"
        print(line)


@dataclass
class Report:
    """One benchmark's figures, written to ``bench/results/<name>.json``."""

    name: str
    quick: bool
    machine: dict[str, Any] = field(default_factory=machine)
    started: float = field(default_factory=time.time)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def write(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        body = {
            "benchmark": self.name,
            "quick": self.quick,
            "machine": self.machine,
            "started": self.started,
            "duration_s": round(time.time() - self.started, 1),
            "figures": self.figures,
            "checks": [{**asdict(c), "verdict": c.verdict} for c in self.checks],
            "notes": self.notes,
        }
        path.write_text(json.dumps(body, indent=2, default=_json_default) + "\n")
        return path

    @property
    def missed(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


# --- processes --------------------------------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from /proc (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class SimulatorProcess:
    process: subprocess.Popen[str]
    url: str  # .../v1

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def admin(self, path: str) -> Any:
        """GET an admin path of the bench simulator (stdlib HTTP, so any process can call it)."""
        import urllib.request

        request = urllib.request.Request(
            f"{self.root}/__simulator__/bench/{path}", headers={"Authorization": f"Bearer {BENCH_API_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())


@contextmanager
def simulator_process(seconds_per_step: float) -> Iterator[SimulatorProcess]:
    """The provider's Simulator in its own process (``bench.sim_process``), stopped on exit."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.sim_process",
            "--api-key",
            BENCH_API_KEY,
            "--seconds-per-step",
            str(seconds_per_step),
        ],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("FT_SIMULATOR_URL="):
            raise RuntimeError(f"the simulator process did not start (printed {line!r})")
        yield SimulatorProcess(process, line.split("=", 1)[1])
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def endpoint_of(method: str, path: str) -> str:
    """``GET /fine_tuning/jobs/{id}/events`` style name of a /v1 request path."""
    parts = path.split("?", 1)[0].removeprefix("/v1").strip("/").split("/")
    named = []
    for i, part in enumerate(parts):
        if i > 0 and parts[i - 1] in ("jobs", "files", "checkpoints", "permissions") and part not in ("",):
            named.append("{id}")
        else:
            named.append(part)
    return f"{method} /" + "/".join(named)


def training_jsonl(n: int = TRAINING_EXAMPLES) -> bytes:
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": f"Question {i}"},
                    {"role": "assistant", "content": f"Answer {i}"},
                ]
            }
        )
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def hyperparameters_for_steps(steps: int) -> tuple[dict[str, int], int]:
    """(hyperparameters, total steps) giving the training-step count closest to ``steps``.

    With 10 examples, ``batch_size`` b gives ceil(10 / b) steps per epoch; ``n_epochs`` is 1..50.
    """
    best: tuple[int, int, int] | None = None  # (error, n_epochs, batch)
    for batch in (10, 5, 4, 3, 2, 1):
        per_epoch = math.ceil(TRAINING_EXAMPLES / batch)
        epochs = min(50, max(1, round(steps / per_epoch)))
        error = abs(epochs * per_epoch - steps)
        if best is None or error < best[0]:
            best = (error, epochs, batch)
    assert best is not None
    _, epochs, batch = best
    return {"n_epochs": epochs, "batch_size": batch}, epochs * math.ceil(TRAINING_EXAMPLES / batch)
