"""Request economy: the HTTP requests one waited job costs, by endpoint, in each way of waiting.

Runs in a child process (``python -m bench.economy --child OUT``) against an in-process
``Simulator``; its request log gives the counts. Ways of waiting:

* ``deferrable sensor``: ``FineTuningJobSensor.execute`` (one check before deferring), then the
  ``FineTuningJobTrigger`` it defers to, run to its event, then ``execute_complete``;
* ``poke sensor``: ``FineTuningJobSensor(deferrable=False).poke`` every poll interval until done
  (``JobWaitMixin.check_job``);
* ``create + wait``: ``CreateFineTuningJobOperator(wait_for_completion=True)``, non-deferrable
  (``poll_until_done``) and deferrable (defer, trigger, ``execute_complete``).

Polls are counted on the client side (calls of ``JobWaitMixin.check_job`` and
``FineTuningJobTrigger._poll_once``). The simulator's ``list_events`` is wrapped to record each
page it served, so the check "events fetched only until the last seen one" is exact: within one
poll, every page but the last must lack the newest event already seen and have ``has_more``; the
last one must hold it (or be the end of the list).

Two jobs: ``short`` (30 training steps, ~40 events: one events page per poll) and ``burst`` (250
steps between a few polls: more than a page of new events per poll, so pagination is exercised).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CONN_ID, Check, Report, child_env, print_header, training_jsonl

JOB_GET = "GET /fine_tuning/jobs/{id}"
EVENTS = "GET /fine_tuning/jobs/{id}/events"
CHECKPOINTS = "GET /fine_tuning/jobs/{id}/checkpoints"
CREATE = "POST /fine_tuning/jobs"
LIST_JOBS = "GET /fine_tuning/jobs"
KEY = "sk-bench-economy-key"
# (label, seconds per step, n_epochs, batch_size, poll interval)
JOBS = {
    "short": (0.05, 3, 1, 0.3),
    "burst": (0.01, 25, 1, 1.2),
}
MODES = ("deferrable sensor", "poke sensor", "create + wait", "create + wait (deferrable)")


class FakeTI:
    def __init__(self, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "bench_economy", "run_1", task_id, -1
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> Any:
        return self.xcom.get(key)


def _child(out: str) -> None:
    from airflow_provider_ft.simulator import Simulator

    sim = Simulator(api_key=KEY, seconds_per_step=0.05, max_recorded_requests=100_000).start()
    from airflow_provider_ft.testing import connection_uri_json

    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_uri_json(KEY, sim.base_url)
    from airflow_provider_ft._compat import TaskDeferred
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
    from airflow_provider_ft.operators.fine_tuning import CreateFineTuningJobOperator
    from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor
    from airflow_provider_ft.triggers.fine_tuning import FineTuningJobTrigger
    from airflow_provider_ft.waiting import JobWaitMixin
    from bench.common import endpoint_of

    polls = [0]
    original_check, original_poll = JobWaitMixin.check_job, FineTuningJobTrigger._poll_once

    def counting_check(self: Any, job_id: str) -> Any:
        polls[0] += 1
        return original_check(self, job_id)

    async def counting_poll(self: Any, client: Any) -> Any:
        polls[0] += 1
        return await original_poll(self, client)

    JobWaitMixin.check_job = counting_check  # type: ignore[method-assign]
    FineTuningJobTrigger._poll_once = counting_poll  # type: ignore[method-assign]

    pages: list[dict[str, Any]] = []  # every events page served, in order
    original_list_events = sim.state.list_events

    def recording_list_events(job_id: str, *, after: str | None, limit: int) -> dict[str, Any]:
        answer = original_list_events(job_id, after=after, limit=limit)
        pages.append({"ids": [e["id"] for e in answer["data"]], "has_more": answer["has_more"]})
        return answer

    sim.state.list_events = recording_list_events  # type: ignore[method-assign]

    hook = FineTuningHook(CONN_ID)
    training = hook.upload_file(training_jsonl(), filename="economy.jsonl")

    def run_deferred(task: Any, ctx: dict[str, Any]) -> Any:
        try:
            return task.execute(ctx)
        except TaskDeferred as deferred:
            trigger = deferred.trigger

            async def first_event() -> Any:
                async for event in trigger.run():
                    return event.payload
                return None

            payload = asyncio.run(first_event())
            return task.execute_complete(ctx, payload)

    results: dict[str, Any] = {}
    for job_label, (sps, epochs, batch, poll) in JOBS.items():
        sim.state.seconds_per_step = sps
        method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": epochs, "batch_size": batch}}}
        for mode in MODES:
            polls[0] = 0
            first_page = len(pages)
            task_id = "".join(ch if ch.isalnum() else "_" for ch in f"{job_label}_{mode}")
            ctx: dict[str, Any] = {"ti": FakeTI(task_id)}
            if mode.startswith("create"):
                first = len(sim.state.requests)
                op = CreateFineTuningJobOperator(
                    task_id=ctx["ti"].task_id,
                    model="gpt-4o-mini-2024-07-18",
                    training_file=training.id,
                    method=method,
                    conn_id=CONN_ID,
                    wait_for_completion=True,
                    deferrable=mode.endswith("(deferrable)"),
                    poll_interval=poll,
                )
                started = time.perf_counter()
                run_deferred(op, ctx)
                assert op.job_id is not None
                job_id = op.job_id
            else:
                job_id = hook.create_job(
                    {"model": "gpt-4o-mini-2024-07-18", "training_file": training.id, "method": method}
                ).id
                first = len(sim.state.requests)
                sensor = FineTuningJobSensor(
                    task_id=ctx["ti"].task_id,
                    job_id=job_id,
                    conn_id=CONN_ID,
                    poll_interval=poll,
                    deferrable=mode == "deferrable sensor",
                )
                started = time.perf_counter()
                if sensor.deferrable:
                    run_deferred(sensor, ctx)
                else:
                    while not sensor.poke(ctx):
                        time.sleep(poll)
            elapsed = time.perf_counter() - started
            records = sim.state.requests.snapshot()[first:]
            sequence = [endpoint_of(r.method, r.path) for r in records]
            job = sim.state.jobs[job_id]
            results[f"{job_label} | {mode}"] = {
                "job": job_label,
                "mode": mode,
                "poll_interval_s": poll,
                "job_seconds": (4 + job.total_steps) * sps,
                "job_events": len(job.events(time.time())),
                "polls": polls[0],
                "elapsed_s": elapsed,
                # One client, one request at a time: the pages line up with the events requests in order.
                "sequence": sequence,
                "events_pages": pages[first_page:],
                "status": sim.state.job_status(job_id),
                "xcom_model": ctx["ti"].xcom.get("fine_tuned_model"),
            }
    sim.stop()
    Path(out).write_text(json.dumps(results))


def _events_minimal(entry: dict[str, Any]) -> tuple[bool, str]:
    """Every poll fetched events pages exactly until the newest event it had already seen."""
    seen: str | None = None
    pages = iter(entry["events_pages"])
    in_poll: list[dict[str, Any]] = []
    chains: list[list[dict[str, Any]]] = []
    for name in entry["sequence"]:
        if name == JOB_GET:
            if in_poll:
                chains.append(in_poll)
            in_poll = []
        elif name == EVENTS:
            in_poll.append(next(pages))
    if in_poll:
        chains.append(in_poll)
    for number, chain in enumerate(chains, 1):
        for index, page in enumerate(chain):
            last = index == len(chain) - 1
            holds_seen = seen is not None and seen in page["ids"]
            if not last and (holds_seen or not page["has_more"]):
                return False, f"poll {number} fetched a page past the last seen event"
            if last and not (holds_seen or not page["has_more"]):
                return False, f"poll {number} stopped before reaching the last seen event"
        newest = [i for page in chain for i in page["ids"]]
        if newest:
            seen = max([*newest, seen] if seen else newest)
    return True, f"{len(chains)} polls, {sum(len(c) for c in chains)} pages"


def _judge(entry: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for name in entry["sequence"]:
        counts[name] = counts.get(name, 0) + 1
    creating = entry["mode"].startswith("create")
    allowed = {JOB_GET, EVENTS, CHECKPOINTS} | ({CREATE, LIST_JOBS} if creating else set())
    others = {k: v for k, v in counts.items() if k not in allowed}
    job_gets = counts.get(JOB_GET, 0)
    sequence = entry["sequence"]
    last_job_get = max((i for i, n in enumerate(sequence) if n == JOB_GET), default=-1)
    checkpoints_at_end = all(i > last_job_get for i, n in enumerate(sequence) if n == CHECKPOINTS)
    events_ok, events_note = _events_minimal(entry)
    expected_setup = {CREATE: 1, LIST_JOBS: 1} if creating else {}
    setup_ok = all(counts.get(k, 0) == v for k, v in expected_setup.items())
    ok = {
        "one job GET per poll": job_gets == entry["polls"],
        "events only until the last seen one": events_ok,
        "checkpoints once, at the end": counts.get(CHECKPOINTS, 0) == 1 and checkpoints_at_end,
        "no other calls": not others and setup_ok,
        "job succeeded, model in XCom": entry["status"] == "succeeded" and bool(entry["xcom_model"]),
    }
    return {"counts": counts, "others": others, "ok": ok, "events_note": events_note}


def run(quick: bool) -> Report:
    report = Report("requests", quick)
    print_header("Request economy: HTTP requests per waited job, by endpoint", report.machine)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "economy.json"
        log = Path(tmp) / "economy.log"
        with log.open("w") as fh:
            done = subprocess.run(
                [sys.executable, "-m", "bench.economy", "--child", str(out)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=child_env(),
                timeout=600,
                check=False,
            )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"request economy child failed:\n{log.read_text(errors='replace')[-4000:]}")
        results: dict[str, Any] = json.loads(out.read_text())
    header = (
        f"  {'job':<6} {'way of waiting':<27} {'polls':>5} {'job GET':>7} {'events':>6} {'ckpts':>5} "
        f"{'create':>6} {'list':>4} {'other':>5} {'total':>5}  verdict"
    )
    print("  short: 30 steps x 0.05 s, poll 0.3 s (one events page per poll); burst: 250 steps x 0.01 s, poll 1.2 s")
    print(header)
    for key, entry in results.items():
        judged = _judge(entry)
        c = judged["counts"]
        passed = all(judged["ok"].values())
        failed = [name for name, good in judged["ok"].items() if not good]
        print(
            f"  {entry['job']:<6} {entry['mode']:<27} {entry['polls']:>5} {c.get(JOB_GET, 0):>7} {c.get(EVENTS, 0):>6} "
            f"{c.get(CHECKPOINTS, 0):>5} {c.get(CREATE, 0):>6} {c.get(LIST_JOBS, 0):>4} "
            f"{sum(judged['others'].values()):>5} {sum(c.values()):>5}  "
            f"{'PASS' if passed else 'MISS: ' + ', '.join(failed)}"
        )
        report.figures[key] = {
            **{k: v for k, v in entry.items() if k not in ("sequence", "events_pages")},
            "requests_by_endpoint": c,
            "requests_total": sum(c.values()),
            "events_pages": judged["events_note"],
            "checks": judged["ok"],
        }
        for name, good in judged["ok"].items():
            report.checks.append(Check(f"{key}: {name}", None, "", "yes", good))
    print(
        "  targets: one job GET per poll; events fetched only until the last seen one; checkpoints once at the end;\n"
        "  nothing else (create + wait: one POST and the reuse look-up GET /fine_tuning/jobs?metadata=..., by design)"
    )
    report.notes.append(__doc__ or "")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.economy")
    parser.add_argument("--child", required=True, help="write the raw results here")
    _child(parser.parse_args().child)
