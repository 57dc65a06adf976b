"""AsyncFineTuningClient, as triggers get it from ``FineTuningHook.aget_client()``, against the simulator.

Each test drives its own event loop with ``asyncio.run`` (no pytest plugin needed).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from airflow_provider_ft.api import transport
from airflow_provider_ft.api.client import AsyncFineTuningClient
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.api.models import FineTuningJob, JobStatus
from airflow_provider_ft.api.policy import RetryPolicy
from airflow_provider_ft.api.transport import AsyncTransport, aclose_loop_client
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
from airflow_provider_ft.simulator import FaultPlan, FaultRule, Simulator
from tests.integration.conftest import CHATTY_EVENTS, Api, create_long_job, recorded, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.simulator_only]


def run(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on a fresh loop and close that loop's shared HTTP client afterwards."""

    async def main() -> Any:
        try:
            return await make()
        finally:
            await aclose_loop_client()

    return asyncio.run(main())


@pytest.fixture
def no_blocking_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record time.sleep calls made on the test's thread (the event loop's): there must be none."""
    calls: list[float] = []
    real_sleep = time.sleep

    def guarded(seconds: float) -> None:
        if threading.current_thread() is threading.main_thread():
            calls.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", guarded)
    return calls


def test_retrieve_job(api: Api, finished_job: FineTuningJob) -> None:
    async def main() -> FineTuningJob:
        client = await FineTuningHook(api.conn_id).aget_client()
        assert isinstance(client, AsyncFineTuningClient)
        return await client.retrieve_job(finished_job.id)

    job = run(main)
    assert (job.id, job.status, job.fine_tuned_model) == (
        finished_job.id,
        JobStatus.SUCCEEDED,
        finished_job.fine_tuned_model,
    )
    assert job.raw == finished_job.raw


def test_events_since_matches_the_sync_semantics(api: Api, sim: Simulator, chatty_job: FineTuningJob) -> None:
    newest_first = [e.id for e in FineTuningHook(api.conn_id).iter_events(chatty_job.id)]
    events_path = f"/v1/fine_tuning/jobs/{chatty_job.id}/events"

    def since(last_seen: str | None) -> tuple[list[str], list[dict[str, list[str]]]]:
        async def main() -> list[str]:
            client = await FineTuningHook(api.conn_id).aget_client()
            return [e.id for e in await client.events_since(chatty_job.id, last_seen)]

        with recorded(sim) as sent:
            found = run(main)
        return found, [r.query for r in sent if r.path == events_path]

    everything, pages = since(None)
    assert everything == newest_first[::-1] and len(everything) == CHATTY_EVENTS
    assert pages == [{"limit": ["100"]}, {"after": [newest_first[99]], "limit": ["100"]}]
    assert since(newest_first[3]) == (newest_first[:3][::-1], [{"limit": ["100"]}])
    assert since(newest_first[0]) == ([], [{"limit": ["100"]}])
    assert since(newest_first[120]) == (newest_first[:120][::-1], pages)
    sync = FineTuningHook(api.conn_id).events_since(chatty_job.id, newest_first[120])
    assert [e.id for e in sync] == newest_first[:120][::-1]


def test_list_checkpoints_walks_every_page(api: Api, sim: Simulator, finished_job: FineTuningJob) -> None:
    ids = [c.id for c in FineTuningHook(api.conn_id).list_checkpoints(finished_job.id).items]

    async def main() -> list[int]:
        client = await FineTuningHook(api.conn_id).aget_client()
        return [c.step_number for c in await client.list_checkpoints(finished_job.id, page_size=1)]

    with recorded(sim) as sent:
        steps = run(main)
    assert steps == [30, 20, 10]
    assert [r.query for r in sent] == [
        {"limit": ["1"]},
        {"after": [ids[0]], "limit": ["1"]},
        {"after": [ids[1]], "limit": ["1"]},
    ]


def test_cancel_job(api: Api, training_file: str) -> None:
    hook = FineTuningHook(api.conn_id)
    job = create_long_job(hook, training_file)
    wait_for(hook, job.id, lambda j: j.status is not JobStatus.VALIDATING_FILES)

    async def main() -> FineTuningJob:
        return await (await hook.aget_client()).cancel_job(job.id)

    assert run(main).status is JobStatus.CANCELLED
    assert hook.retrieve_job(job.id).status is JobStatus.CANCELLED


def test_not_found_is_not_retried(api: Api, sim: Simulator) -> None:
    async def main() -> None:
        await (await FineTuningHook(api.conn_id).aget_client()).retrieve_job("ftjob-missing-async")

    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        run(main)
    assert caught.value.status == 404
    assert "fine-tuning job ftjob-missing-async was not found" in str(caught.value)
    assert len(sent) == 1


def test_retries_use_the_injected_async_sleep(
    api: Api, sim: Simulator, finished_job: FineTuningJob, no_blocking_sleep: list[float]
) -> None:
    awaited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        awaited.append(seconds)

    async def main() -> FineTuningJob:
        config = (await FineTuningHook(api.conn_id).aget_client()).config
        policy = RetryPolicy(max_retries=3, base_delay=4.0, max_delay=4.0)
        client = AsyncFineTuningClient(config, transport=AsyncTransport(config, policy, sleep=fake_sleep))
        return await client.retrieve_job(finished_job.id)

    path = f"GET /v1/fine_tuning/jobs/{finished_job.id}"
    sim.set_faults(FaultPlan(rate_limit=FaultRule(count=1, seconds=0.021, paths=(path,))))
    with recorded(sim) as sent:
        assert run(main).id == finished_job.id
    assert awaited == [0.021]  # from retry-after-ms, not the 4 s backoff
    assert [r.status for r in sent] == [429, 200]

    awaited.clear()
    sim.set_faults(FaultPlan(server_error=FaultRule(count=2, status=503, paths=(path,))))
    with recorded(sim) as sent:
        assert run(main).id == finished_job.id
    assert [r.status for r in sent] == [503, 503, 200]
    assert len(awaited) == 2 and all(3.0 <= s <= 5.0 for s in awaited)  # 4 s backoff with +-25% jitter
    assert no_blocking_sleep == []


def test_default_sleep_does_not_block_the_loop(
    api: Api, sim: Simulator, finished_job: FineTuningJob, no_blocking_sleep: list[float]
) -> None:
    path = f"GET /v1/fine_tuning/jobs/{finished_job.id}"
    sim.set_faults(FaultPlan(rate_limit=FaultRule(count=1, seconds=0.25, paths=(path,))))

    async def main() -> tuple[FineTuningJob, int, float]:
        hook = FineTuningHook(api.conn_id, retry_policy=RetryPolicy(max_retries=2, base_delay=0.001))
        client = await hook.aget_client()
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        job = await client.retrieve_job(finished_job.id)
        elapsed = time.monotonic() - started
        stop.set()
        await task
        return job, ticks, elapsed

    job, ticks, elapsed = run(main)
    assert job.id == finished_job.id
    assert elapsed >= 0.25  # the server's retry-after-ms was honoured
    assert ticks >= 10  # other coroutines ran while the retry waited
    assert no_blocking_sleep == []


def test_timeout_names_the_timeout(api: Api, sim: Simulator, finished_job: FineTuningJob) -> None:
    path = f"GET /v1/fine_tuning/jobs/{finished_job.id}"
    sim.set_faults(FaultPlan(slow=FaultRule(count=1, seconds=0.6, paths=(path,))))

    async def main() -> None:
        await (await FineTuningHook(api.conn_id, timeout=0.2, max_retries=0).aget_client()).retrieve_job(
            finished_job.id
        )

    with pytest.raises(FineTuningApiError) as caught:
        run(main)
    assert "got no answer in time" in str(caught.value)
    assert str(caught.value).endswith("; the timeout is 0.2s (connection extra 'timeout')")


def test_one_http_client_per_event_loop(api: Api, finished_job: FineTuningJob, monkeypatch: pytest.MonkeyPatch) -> None:
    async def two_transports() -> tuple[Any, asyncio.AbstractEventLoop, int]:
        first = await FineTuningHook(api.conn_id).aget_client()
        second = await FineTuningHook(api.conn_id).aget_client()
        assert first.transport is not second.transport
        await first.retrieve_job(finished_job.id)
        shared = await transport._loop_client()
        sent: list[str] = []
        for client in shared.clients:
            original = client.request

            async def counting(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                sent.append(str(args[1]))
                return await _original(*args, **kwargs)

            monkeypatch.setattr(client, "request", counting)
        await first.retrieve_job(finished_job.id)
        await second.retrieve_job(finished_job.id)
        assert await transport._loop_client() is shared
        assert shared.in_flight == [0] * transport.SHARDS
        return shared, asyncio.get_running_loop(), len(sent)

    # Two loops alive at once, so identities cannot be recycled; each closes its own client.
    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        client_a, seen_a, count_a = loop_a.run_until_complete(two_transports())
        client_b, seen_b, count_b = loop_b.run_until_complete(two_transports())
        assert (seen_a, seen_b) == (loop_a, loop_b)
        assert (count_a, count_b) == (2, 2)  # both transports went through their loop's one client
        assert client_b is not client_a
        assert not client_a.is_closed  # a second loop neither reuses nor closes the first loop's client
        for loop in (loop_a, loop_b):
            loop.run_until_complete(aclose_loop_client())
        assert client_a.is_closed and client_b.is_closed
    finally:
        loop_a.close()
        loop_b.close()
