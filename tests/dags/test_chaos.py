"""Chaos: the chaos DAG run N times under a seeded fault plan, worker deaths and triggerer restarts.

Every run must succeed with exactly one job, no job may be left running, and no job event may be
logged twice. ``FT_CHAOS_RUNS`` sets N (default 20); ``FT_CHAOS_SEED`` replays a failing run.
Run alone with ``pytest -m chaos``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.simulator import FaultPlan, FaultRule
from tests.dags.conftest import load_dag, task_states

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SCENARIOS = Path(__file__).parent / "dag_files" / "ft_scenarios.py"
RUNS = int(os.environ.get("FT_CHAOS_RUNS", "20"))
SEED = int(os.environ.get("FT_CHAOS_SEED", "20261126"))
# Airflow 2 prints each task log line twice (console and task handler, two formats): count one format.
CONSOLE_DUPLICATE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] ", re.M)
EVENT_LINE = re.compile(r"Job (ftjob-\w+): (\[\w+\] .+?|metrics: .+?)(?:\s{2,}\[|\s*$)", re.M)


class RestartingTriggers:
    """Kills some triggers mid-wait and rebuilds them from their defer-time kwargs, like a triggerer restart.

    Progress XComs live in a dict here (dag.test() runs triggers without a task instance)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rng: random.Random) -> None:
        from airflow_provider_ft.triggers import fine_tuning as module

        self.rng = rng
        self.restarts = 0
        self.xcoms: dict[tuple[str, str], Any] = {}
        self.original_run = module.FineTuningJobTrigger.run
        self.cls = module.FineTuningJobTrigger

        async def aget(ti: Any, key: str) -> Any:
            return self.xcoms.get((ti.job_id, key))

        async def aset(ti: Any, key: str, value: Any) -> None:
            self.xcoms[(ti.job_id, key)] = value

        monkeypatch.setattr(module, "aget_task_xcom", aget)
        monkeypatch.setattr(module, "aset_task_xcom", aset)

        def run(trigger: Any) -> Any:
            return self._run(trigger)

        monkeypatch.setattr(module.FineTuningJobTrigger, "run", run)

    def _run(self, trigger: Any) -> Any:
        outer = self
        _, kwargs = trigger.serialize()  # what the triggerer stores at defer time

        class TI:  # enough of a task instance for the trigger's logger and its progress XCom
            job_id = trigger.job_id
            dag_id, task_id, run_id, map_index, try_number = "ft_chaos", "wait", "chaos", -1, 1

        async def run() -> Any:
            current = trigger
            current.task_instance = TI()
            restarts_left = 2 if outer.rng.random() < 0.5 else 0
            while True:
                agen = outer.original_run(current)
                try:
                    if restarts_left:
                        event = await asyncio.wait_for(anext(agen), timeout=outer.rng.uniform(0.05, 0.8))
                    else:
                        event = await anext(agen)
                except TimeoutError:
                    restarts_left -= 1
                    outer.restarts += 1
                    current = outer.cls(**kwargs)
                    current.task_instance = TI()
                    continue
                yield event
                return

        return run()


def _create_tries(run: Any) -> int:
    from airflow.utils.session import create_session

    with create_session() as session:
        (ti,) = [ti for ti in run.get_task_instances(session=session) if ti.task_id == "create"]
        return int(ti.try_number)


def test_chaos(simulator: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    simulator.set_faults(
        FaultPlan(
            seed=SEED,
            rate_limit=FaultRule(share=0.05, seconds=0.05),
            server_error=FaultRule(share=0.05),
            reset=FaultRule(share=0.03),
            lost_response=FaultRule(share=0.15),
        )
    )
    restarts = RestartingTriggers(monkeypatch, rng)
    dag = load_dag(SCENARIOS, "ft_chaos")

    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    hook = FineTuningHook()
    failures: list[str] = []
    duplicates: list[str] = []
    jobs_total = 0
    retried_creates = 0
    events_logged = 0
    for n in range(RUNS):
        capfd.readouterr()
        # The first run always loses its worker after the create call; then about a third do.
        monkeypatch.setenv("FT_CHAOS_WORKER_DEATH", "1" if n == 0 or rng.random() < 0.3 else "0")
        run = dag.test()
        states = task_states(run)
        output = "\n".join(
            line for line in "\n".join(capfd.readouterr()).splitlines() if not CONSOLE_DUPLICATE.match(line)
        )
        if set(states.values()) != {"success"}:
            errors = [line for line in output.splitlines() if "rror" in line][-5:]
            failures.append(f"run {n}: {states}: " + "\n".join(errors))
        retried_creates += _create_tries(run) > 1
        jobs = list(hook.iter_jobs(metadata={"airflow_run_id": run.run_id}))
        jobs_total += len(jobs)
        if len(jobs) != 1:
            failures.append(f"run {n}: {len(jobs)} jobs")
        counts = Counter(EVENT_LINE.findall(output))
        duplicates += [f"run {n}: {key} logged {c} times" for key, c in counts.items() if c > 1]
        events_logged += sum(counts.values())

    still_running = [j.id for j in hook.iter_jobs() if not j.status.is_terminal]
    faults = Counter(r.fault for r in simulator.state.requests if r.fault)
    uploads = sum(1 for f in hook.iter_files(purpose="fine-tune"))
    summary = (
        f"\nchaos: {RUNS} runs (seed {SEED}), {RUNS - len(failures)} clean, {jobs_total} jobs, {uploads} files, "
        f"{retried_creates} worker deaths after create, {restarts.restarts} trigger restarts, "
        f"faults injected: {dict(faults)}, events logged: {events_logged}, "
        f"duplicate events: {len(duplicates)}, jobs left running: {len(still_running)}\n"
    )
    with capfd.disabled():  # the counts are the point of this test: show them even when it passes
        print(summary)
    assert failures == []
    assert duplicates == []
    assert still_running == []
    assert events_logged > RUNS, "the captured logs must hold the job events (else duplicates go unseen)"
    assert uploads <= RUNS, "a lost upload response must not lead to a second upload"
    assert restarts.restarts > 0
    assert retried_creates > 0
    assert sum(faults.values()) > 0
