"""DAG parse cost: import time of the provider's DAG-facing modules once ``airflow.sdk`` is loaded.

Each sample is a fresh process running
``import airflow.sdk, time; t = time.perf_counter(); import X; print(time.perf_counter() - t)``;
the figure is the median over the samples, taken round-robin across the modules so drift hits all
alike. Baseline: Airflow's standard PythonOperator module, imported the same way. The child also
reports which heavy modules (requests, httpx, the simulator, validation, the async transport) are in
``sys.modules`` afterwards, and which of them the import itself brought in.

Bytecode: this checkout is installed in editable mode and the machine sets
``PYTHONDONTWRITEBYTECODE``, so the provider's sources are compiled on every import, which an
installed wheel never does. The target is therefore judged with a bytecode cache
(``PYTHONPYCACHEPREFIX`` in a temporary directory, warmed once), for the provider and Airflow alike;
the full run also reports the no-cache figure for the three modules together.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import Any

from bench.common import Check, Report, child_env, median, print_checks, print_header

MODULES = {
    "operators.fine_tuning": "airflow_provider_ft.operators.fine_tuning",
    "operators.files": "airflow_provider_ft.operators.files",
    "sensors.fine_tuning": "airflow_provider_ft.sensors.fine_tuning",
}
ALL_THREE = "all three modules"
BASELINE = "airflow.providers.standard.operators.python"
HEAVY = (
    "requests",
    "httpx",
    "airflow_provider_ft.simulator",
    "airflow_provider_ft.validation",
    "airflow_provider_ft.api.transport",
)
TARGET_MS = 30.0

_CHILD = """
import airflow.sdk, json, sys, time
before = set(sys.modules)
sys.stderr.write("--- after airflow.sdk ---\\n")
t = time.perf_counter()
{imports}
elapsed = time.perf_counter() - t
heavy = {heavy!r}
print(json.dumps({{
    "seconds": elapsed,
    "present": [m for m in heavy if m in sys.modules],
    "imported": [m for m in heavy if m in sys.modules and m not in before],
    "new_modules": len(set(sys.modules) - before),
}}))
"""


def _code(modules: list[str]) -> str:
    return _CHILD.format(imports="\n".join(f"import {m}" for m in modules), heavy=HEAVY)


def _sample(modules: list[str], env: dict[str, str], importtime: bool = False) -> dict[str, Any]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", _code(modules)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"importing {modules} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if importtime:
        result["importtime"] = done.stderr.split("--- after airflow.sdk ---", 1)[-1]
    return result


def _slowest_imports(importtime_text: str, top: int = 8) -> list[tuple[str, float]]:
    """Modules imported after airflow.sdk, by self time (ms), from ``-X importtime`` output."""
    rows = []
    for line in importtime_text.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        try:
            self_us = int(parts[0].split(":")[1])
        except ValueError:
            continue
        rows.append((parts[2].strip(), self_us / 1000))
    return sorted(rows, key=lambda r: r[1], reverse=True)[:top]


def run(quick: bool) -> Report:
    report = Report("parse", quick)
    print_header("DAG parse cost: import after airflow.sdk (median of fresh processes)", report.machine)
    reps = 10
    targets: dict[str, list[str]] = {name: [module] for name, module in MODULES.items()}
    if not quick:
        targets[ALL_THREE] = list(MODULES.values())
    targets["PythonOperator (baseline)"] = [BASELINE]
    with tempfile.TemporaryDirectory() as cache:
        cached_env = child_env(PYTHONPYCACHEPREFIX=cache)
        cached_env.pop("PYTHONDONTWRITEBYTECODE", None)
        for modules in targets.values():  # warm the bytecode cache
            _sample(modules, cached_env)
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(reps):
            for name, modules in targets.items():
                samples[name].append(_sample(modules, cached_env))
    nocache: list[dict[str, Any]] = []
    if not quick:
        plain_env = child_env()
        for _ in range(5):  # information only: 5 samples
            nocache.append(_sample(list(MODULES.values()), plain_env))
    profile = _sample(list(MODULES.values()), child_env(), importtime=True)
    slowest = _slowest_imports(profile["importtime"])

    base_ms = median([s["seconds"] for s in samples["PythonOperator (baseline)"]]) * 1000
    print(f"{reps} fresh processes per module, round-robin; bytecode cache warmed (see notes)")
    checks = []
    for name, runs in samples.items():
        ms = median([s["seconds"] for s in runs]) * 1000
        is_baseline = name.startswith("PythonOperator")
        figures = {
            "median_ms": ms,
            "samples_ms": [round(s["seconds"] * 1000, 2) for s in runs],
            "heavy_present_after": runs[0]["present"],
            "heavy_imported_by_it": sorted({m for s in runs for m in s["imported"]}),
            "new_modules": runs[0]["new_modules"],
        }
        report.figures[name] = figures
        checks.append(
            Check(
                f"{name} import",
                ms,
                "ms",
                "" if is_baseline else f"<= {TARGET_MS:g} ms",
                None if is_baseline else ms <= TARGET_MS,
                None if is_baseline else base_ms,
                note=f"{figures['new_modules']} new modules",
            )
        )
        if not is_baseline:
            heavy = figures["heavy_imported_by_it"]
            checks.append(
                Check(
                    f"{name} heavy imports",
                    len(heavy),
                    "",
                    "= 0",
                    not heavy,
                    note=", ".join(heavy) if heavy else "none",
                )
            )
    if nocache:
        ms = median([s["seconds"] for s in nocache]) * 1000
        report.figures["all three, no bytecode cache (this checkout as installed)"] = {
            "median_ms": ms,
            "samples_ms": [round(s["seconds"] * 1000, 2) for s in nocache],
        }
        checks.append(Check("all three, no bytecode cache", ms, "ms", "", None, base_ms, note="info: compiles sources"))
    report.checks.extend(checks)
    report.figures["slowest_imports_after_airflow_sdk_ms"] = slowest
    report.figures["already_loaded_by_airflow_sdk"] = sorted(
        set(samples["PythonOperator (baseline)"][0]["present"])
        - set(samples["PythonOperator (baseline)"][0]["imported"])
    )
    report.notes.append(__doc__ or "")
    print_checks(checks, measured_label="provider", baseline_label="PythonOperator")
    print(
        f"  loaded by airflow.sdk itself (not the provider's doing): {report.figures['already_loaded_by_airflow_sdk']}"
    )
    print(f"  slowest imports of the three modules (self ms, no cache): {[(m, round(t, 1)) for m, t in slowest[:6]]}")
    return report
