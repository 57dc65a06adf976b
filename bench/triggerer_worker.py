"""One triggerer-capacity run, in its own process: N triggers on one event loop against the simulator.

Run by ``bench.triggerer`` (``python -m bench.triggerer_worker --variant async|sync ...``), which starts
the simulator process first and sets ``AIRFLOW_CONN_BENCH_FT`` before this process imports Airflow.

1. Creates the N jobs with the sync hook, each sized (epochs x batch size) so that it ends at a
   planned time: ``start + U(end_min, end_max)``, ``start`` being when the triggers will start.
2. Starts the triggers the way Airflow's triggerer does (``TriggerRunner.create_triggers``: one
   ``asyncio.create_task`` per trigger with ``await asyncio.sleep(0)`` in between) and iterates each
   trigger's ``run()`` to its end, noting when its event arrived.
3. Meanwhile a heartbeat task sleeps 10 ms in a loop and records how late it wakes up.

Variants: ``async`` is the provider's ``FineTuningJobTrigger``; ``sync`` is the baseline, the pattern
of the official OpenAI provider's ``OpenAIBatchTrigger``: the sync (requests) hook called directly
on the loop (``hook.get_batch`` there, ``FineTuningHook.retrieve_job`` here), then ``asyncio.sleep``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import time
from array import array
from collections.abc import AsyncIterator
from typing import Any

from bench.common import CONN_ID, hyperparameters_for_steps, rss_bytes, training_jsonl

# Steps a job spends in validating_files + queued (simulator.lifecycle VALIDATING_STEPS + QUEUED_STEPS).
SETUP_STEPS = 4
HEARTBEAT_S = 0.010


def _admin(root: str, api_key: str, path: str) -> Any:
    import urllib.request

    request = urllib.request.Request(
        f"{root}/__simulator__/bench/{path}", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def set_latency(root: str, api_key: str, seconds: float) -> None:
    """Make the simulator answer the trigger's GETs after ``seconds`` (its ``slow`` fault, share 1)."""
    import urllib.request

    plan = {
        "slow": {
            "share": 1.0,
            "seconds": seconds,
            "paths": ["GET /v1/fine_tuning/jobs/*", "GET /v1/fine_tuning/jobs/*/*"],
        }
    }
    request = urllib.request.Request(
        f"{root}/__simulator__/faults",
        data=json.dumps(plan).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def create_jobs(
    n: int, seconds_per_step: float, end_min: float, end_max: float, seed: int
) -> tuple[list[str], float, dict[str, Any]]:
    """Create n jobs ending at staggered planned times; returns (job ids, planned start, creation info)."""
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    hook = FineTuningHook(CONN_ID)
    training = hook.upload_file(training_jsonl(), filename="bench.jsonl")
    body: dict[str, Any] = {"model": "gpt-4o-mini-2024-07-18", "training_file": training.id}
    # Warm-up creates (not waited for) to size the creation phase.
    t0 = time.perf_counter()
    for _ in range(10):
        hook.create_job({**body, "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}}})
    per_create = (time.perf_counter() - t0) / 10
    # Leave >= 2 s before the start: the heartbeat measures the idle loop's lag (the noise floor) then.
    start = time.time() + n * per_create * 1.5 + 3.0
    rng = random.Random(seed)
    ends = [start + rng.uniform(end_min, end_max) for _ in range(n)]
    job_ids: list[str] = []
    late = 0
    created_from = time.time()
    for end in ends:
        steps = round((end - time.time()) / seconds_per_step) - SETUP_STEPS
        if steps < 1:
            late += 1
        hp, _ = hyperparameters_for_steps(max(1, steps))
        method = {"type": "supervised", "supervised": {"hyperparameters": hp}}
        job_ids.append(hook.create_job({**body, "method": method}).id)
    hook.client.close()
    info = {
        "per_create_ms": per_create * 1000,
        "creation_s": time.time() - created_from,
        "late_jobs": late,
        "planned_start_slack_s": start - time.time(),
    }
    return job_ids, start, info


def install_sharded_pool(shards: int) -> None:
    """What-if (benchmark only): spread the in-flight requests over ``shards`` httpx pools.

    The transport already shards (transport.SHARDS pools of PER_SHARD connections): this overrides
    the count for this process, e.g. ``--what-if-shards 1`` measures the single-pool design.
    """
    from airflow_provider_ft.api import transport

    transport.SHARDS = shards
    transport.PER_SHARD = max(1, transport.MAX_IN_FLIGHT // shards)


def install_events_every(seconds: float) -> None:
    """What-if (benchmark only): the trigger fetches events at most every ``seconds``, and at the end.

    A copy of ``FineTuningJobTrigger._poll_once`` with one change: ``_log_new_events`` runs only when
    the job has ended or ``seconds`` passed since the last fetch. Every event is still logged once, in
    order; polls in between cost one request instead of two.
    """
    from airflow_provider_ft.api.errors import FineTuningApiError
    from airflow_provider_ft.events import WaitResult, result_from_job
    from airflow_provider_ft.triggers.fine_tuning import FATAL_STATUSES, FineTuningJobTrigger

    async def _poll_once(self: Any, client: Any) -> Any:
        try:
            job = await client.retrieve_job(self.job_id)
            now = time.monotonic()
            if job.status.is_terminal or now - self.__dict__.get("_events_at", -1e18) >= seconds:
                self.__dict__["_events_at"] = now
                await self._log_new_events(client)
            if not job.status.is_terminal:
                self.log.info("Fine-tuning job %s is %s", self.job_id, job.status.value)
                return None
            checkpoints = await client.list_checkpoints(self.job_id) if job.status.value == "succeeded" else []
        except FineTuningApiError as err:
            if err.status in FATAL_STATUSES:
                return WaitResult(
                    "error", self.job_id, str(err), status_code=err.status, last_event_id=self.last_event_id
                )
            self.log.warning("Polling fine-tuning job %s failed, will poll again: %s", self.job_id, err)
            return None
        return result_from_job(job, checkpoints, self.last_event_id)

    FineTuningJobTrigger._poll_once = _poll_once  # type: ignore[method-assign]


def make_baseline_trigger_class() -> type[Any]:
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    class SyncHookTrigger(BaseTrigger):
        """The official OpenAI provider's batch-trigger pattern: a sync hook call on the event loop."""

        def __init__(self, job_id: str, conn_id: str, poll_interval: float) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.job_id = job_id
            self.conn_id = conn_id
            self.poll_interval = poll_interval

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (
                f"{type(self).__module__}.SyncHookTrigger",
                {"job_id": self.job_id, "conn_id": self.conn_id, "poll_interval": self.poll_interval},
            )

        async def run(self) -> AsyncIterator[Any]:
            hook = FineTuningHook(self.conn_id)
            while not (job := hook.retrieve_job(self.job_id)).status.is_terminal:
                await asyncio.sleep(self.poll_interval)
            yield TriggerEvent({"status": job.status.value, "job_id": self.job_id})

    return SyncHookTrigger


async def run_triggers(
    variant: str, job_ids: list[str], poll_interval: float, start: float, memory_at: float
) -> dict[str, Any]:
    from airflow_provider_ft.api import transport
    from airflow_provider_ft.triggers.fine_tuning import FineTuningJobTrigger

    baseline_cls = make_baseline_trigger_class()
    n = len(job_ids)
    event_times: dict[str, float] = {}
    outcomes: dict[str, str] = {}
    errors: list[str] = []
    lag_t = array("d")
    lag_v = array("d")
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(HEARTBEAT_S)
            after = time.perf_counter()
            lag_t.append(after)
            lag_v.append(after - before - HEARTBEAT_S)

    async def run_one(trigger: Any, job_id: str) -> None:
        try:
            async for event in trigger.run():
                event_times.setdefault(job_id, time.time())
                outcomes.setdefault(job_id, str(event.payload.get("status")))
        except Exception as exc:  # a broken trigger must not hide the others' figures
            errors.append(f"{job_id}: {type(exc).__name__}: {exc}")

    # Baseline memory: everything imported, nothing started (the triggerer has httpx and requests loaded).
    import httpx  # noqa: F401
    import requests  # noqa: F401

    objects_before = len(gc.get_objects())
    t_gc = time.perf_counter()
    gc.collect()
    full_gc_before_s = time.perf_counter() - t_gc
    rss_before = rss_bytes()
    beat = asyncio.create_task(heartbeat())
    idle_from = time.perf_counter()
    delay = start - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    idle_lag = [v for t, v in zip(lag_t, lag_v, strict=True) if t >= idle_from + 0.5]
    gc_pauses: list[tuple[float, int, float]] = []  # (start, generation, seconds)
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            gc_started[0] = now
        else:
            gc_pauses.append((gc_started[0], int(info.get("generation", -1)), now - gc_started[0]))

    gc.callbacks.append(on_gc)
    t_start_wall = time.time()
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    tasks = []
    for job_id in job_ids:
        # Like TriggerRunner.create_triggers: yield to the loop before each new trigger.
        await asyncio.sleep(0)
        if variant == "async":
            trigger: Any = FineTuningJobTrigger(job_id=job_id, conn_id=CONN_ID, poll_interval=poll_interval)
        else:
            trigger = baseline_cls(job_id=job_id, conn_id=CONN_ID, poll_interval=poll_interval)
        tasks.append(asyncio.create_task(run_one(trigger, job_id)))
    created_s = time.perf_counter() - t_start

    memory: dict[str, Any] = {}

    async def sample_memory() -> None:
        await asyncio.sleep(max(0.0, t_start + memory_at - time.perf_counter()))
        began = time.perf_counter()
        memory["rss_after"] = rss_bytes()
        memory["running"] = sum(1 for t in tasks if not t.done())
        memory["at_s"] = began - t_start
        memory["objects_running"] = len(gc.get_objects())
        # Listing the heap stalls the loop itself: heartbeats overlapping it are left out of the figures.
        memory["stall"] = (began, time.perf_counter())

    sampler = asyncio.create_task(sample_memory())
    peak = rss_before

    async def track_peak() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes())
            await asyncio.sleep(1.0)

    peak_task = asyncio.create_task(track_peak())
    await asyncio.gather(*tasks)
    t_end = time.perf_counter()
    cpu_s = time.process_time() - cpu_start
    done.set()
    await sampler
    await beat
    await peak_task
    await transport.aclose_loop_client()
    gc.callbacks.remove(on_gc)
    stall_from, stall_to = memory.pop("stall", (0.0, 0.0))

    def during_sampling(end: float, lag: float) -> bool:
        return bool(end - HEARTBEAT_S - lag < stall_to and stall_from < end)

    window = [
        (t - t_start, v)
        for t, v in zip(lag_t, lag_v, strict=True)
        if t_start <= t <= t_end and not during_sampling(t, v)
    ]
    gcs = [(t - t_start, g, d) for t, g, d in gc_pauses if t_start <= t <= t_end]
    gen2 = [(t, d) for t, g, d in gcs if g == 2]

    def during_gen2(end: float, lag: float) -> bool:  # end: seconds since start
        begin = end - HEARTBEAT_S - lag
        return any(t < end and begin < t + d for t, d in gen2)

    lag_outside_gen2 = [v for t, v in window if not during_gen2(t, v)]
    return {
        "n": n,
        "variant": variant,
        "started_wall": t_start_wall,
        "create_tasks_s": created_s,
        "run_s": t_end - t_start,
        "cpu_s": cpu_s,
        "lag_s": [v for _, v in window],
        "idle_lag_s": idle_lag,
        "lag_outside_gen2_max_s": max(lag_outside_gen2, default=0.0),
        # The 20 worst wake-ups: (seconds since start, lag) - where in the run the loop stalled.
        "lag_worst": sorted(window, key=lambda item: item[1], reverse=True)[:20],
        "gc": {
            "objects_before": objects_before,
            "full_collection_before_s": full_gc_before_s,
            "collections": [sum(1 for _, g, _ in gcs if g == gen) for gen in (0, 1, 2)],
            "max_pause_s": max((d for _, _, d in gcs), default=0.0),
            "total_s": sum(d for _, _, d in gcs),
            "gen2": gen2,
        },
        "rss_before": rss_before,
        "rss_peak": peak,
        **memory,
        "event_times": event_times,
        "outcomes": outcomes,
        "errors": errors[:20],
        "error_count": len(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.triggerer_worker")
    parser.add_argument("--variant", choices=("async", "sync"), required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--seconds-per-step", type=float, required=True)
    parser.add_argument("--end-min", type=float, required=True)
    parser.add_argument("--end-max", type=float, required=True)
    parser.add_argument("--memory-at", type=float, required=True)
    parser.add_argument("--sim-root", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--server-latency-ms", type=float, default=0.0, help="delay every job GET by this much")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="what-if: override airflow_provider_ft.api.transport.MAX_IN_FLIGHT (pool size and in-flight bound)",
    )
    parser.add_argument(
        "--what-if-shards",
        type=int,
        default=None,
        help="what-if: split the loop's pool into this many httpx clients (round-robin), "
        "MAX_IN_FLIGHT / shards connections each, one in-flight bound over all",
    )
    parser.add_argument(
        "--what-if-events-every",
        type=float,
        default=None,
        help="what-if: the trigger fetches job events at most every this many seconds (and at the end)",
    )
    args = parser.parse_args(argv)
    if args.what_if_events_every is not None:
        install_events_every(args.what_if_events_every)
    if args.max_in_flight is not None:
        from airflow_provider_ft.api import transport

        transport.MAX_IN_FLIGHT = args.max_in_flight
        transport.PER_SHARD = max(1, args.max_in_flight // transport.SHARDS)
    if args.what_if_shards:
        install_sharded_pool(args.what_if_shards)

    job_ids, start, creation = create_jobs(args.n, args.seconds_per_step, args.end_min, args.end_max, args.seed)
    if args.server_latency_ms > 0:
        set_latency(args.sim_root, args.api_key, args.server_latency_ms / 1000)
    stats_before = _admin(args.sim_root, args.api_key, "stats")
    result = asyncio.run(run_triggers(args.variant, job_ids, args.poll_interval, start, args.memory_at))
    stats_after = _admin(args.sim_root, args.api_key, "stats")
    ends = _admin(args.sim_root, args.api_key, "job_ends")
    result.update(
        creation=creation,
        stats_before=stats_before,
        stats_after=stats_after,
        job_ends={job_id: ends[job_id]["end"] for job_id in job_ids},
        job_created={job_id: ends[job_id]["created"] for job_id in job_ids},
    )
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
