"""FineTuningJobTrigger with a scripted client: no server, no real sleeping."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest

from airflow_provider_ft.triggers import fine_tuning as trigger_module
from airflow_provider_ft.triggers.fine_tuning import FineTuningJobTrigger
from tests.unit.fakes import FakeAsyncClient, FakeTI, ScriptedApi, api_error, event, job

KEY = "sk-trigger-SECRET"


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """asyncio.sleep is replaced by one that only records; the loop never blocks in these tests."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(trigger_module.asyncio, "sleep", fake_sleep)
    return slept


def _use(monkeypatch: pytest.MonkeyPatch, api: ScriptedApi) -> None:
    async def client(self: FineTuningJobTrigger) -> FakeAsyncClient:
        return FakeAsyncClient(api)

    monkeypatch.setattr(FineTuningJobTrigger, "_client", client)


def _logged_events(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Event log lines, whether Airflow logs through stdlib logging (2.x) or structlog to stdout (3.x)."""
    pattern = r"Job ftjob-1: \[info\] event \d+"
    found = re.findall(pattern, "\n".join(r.getMessage() for r in caplog.records))
    return found or re.findall(pattern, capsys.readouterr().out)


def _collect(trigger: FineTuningJobTrigger) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [e.payload async for e in trigger.run()]

    return asyncio.run(run())


def test_serialize_round_trip_carries_only_what_resuming_needs() -> None:
    trigger = FineTuningJobTrigger(
        job_id="ftjob-1", conn_id="c", poll_interval=5, deadline=123.0, last_event_id="ev-7", cancel_on_kill=False
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_ft.triggers.fine_tuning.FineTuningJobTrigger"
    assert kwargs == {
        "job_id": "ftjob-1",
        "conn_id": "c",
        "poll_interval": 5.0,
        "deadline": 123.0,
        "last_event_id": "ev-7",
        "cancel_on_kill": False,
    }
    assert FineTuningJobTrigger(**kwargs).serialize() == (path, kwargs)
    assert KEY not in repr(kwargs)


@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled"])
def test_each_terminal_status_yields_exactly_one_event(monkeypatch: pytest.MonkeyPatch, final: str) -> None:
    fields = (
        {"error": {"code": "invalid_n_epochs", "message": "bad epochs", "param": "n_epochs"}}
        if final == "failed"
        else {}
    )
    api = ScriptedApi([job("validating_files"), job("running"), job(final, **fields)])
    _use(monkeypatch, api)
    events = _collect(FineTuningJobTrigger(job_id="ftjob-1", poll_interval=10))
    assert len(events) == 1
    payload = events[0]
    assert payload["status"] == final
    assert payload["job_id"] == "ftjob-1"
    assert api.polls == 3
    if final == "succeeded":
        assert payload["fine_tuned_model"] == "ft:gpt-4o-mini:org::abc"
        assert [c["step_number"] for c in payload["checkpoints"]] == [30, 20]
        assert payload["trained_tokens"] == 100
        assert payload["result_files"] == ["file-r"]
    else:
        assert payload["checkpoints"] == []
    if final == "failed":
        assert payload["error"] == {"code": "invalid_n_epochs", "message": "bad epochs", "param": "n_epochs"}
        assert "bad epochs" in payload["message"]


def test_new_events_are_logged_once_each_in_order(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ScriptedApi([job("running")] * 3 + [job("succeeded")], events=[event(n) for n in range(1, 9)])
    _use(monkeypatch, api)
    trigger = FineTuningJobTrigger(job_id="ftjob-1", poll_interval=1)
    with caplog.at_level(logging.INFO):
        payload = _collect(trigger)[0]
    logged = _logged_events(caplog, capsys)
    assert logged == [f"Job ftjob-1: [info] event {n}" for n in range(1, 9)]
    assert payload["last_event_id"] == "ev-008"
    assert trigger.last_event_id == "ev-008"


def test_restart_from_serialized_state_does_not_relog(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ScriptedApi([job("running"), job("running"), job("succeeded")], events=[event(n) for n in range(1, 7)])
    api.polls = 2  # the job has been polled twice before the restart; four events exist
    _use(monkeypatch, api)
    _, kwargs = FineTuningJobTrigger(job_id="ftjob-1", poll_interval=1, last_event_id="ev-004").serialize()
    with caplog.at_level(logging.INFO):
        payload = _collect(FineTuningJobTrigger(**kwargs))[0]
    logged = _logged_events(caplog, capsys)
    assert logged == ["Job ftjob-1: [info] event 5", "Job ftjob-1: [info] event 6"]
    assert api.events_requests[0] == "ev-004"
    assert payload["status"] == "succeeded"


def test_deadline_in_the_past_times_out_without_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedApi([job("running")])
    _use(monkeypatch, api)
    payload = _collect(FineTuningJobTrigger(job_id="ftjob-1", poll_interval=5, deadline=time.time() - 1))[0]
    assert payload["status"] == "timeout"
    assert api.polls == 0


def test_deadline_is_absolute_and_bounds_the_sleep(monkeypatch: pytest.MonkeyPatch, no_real_sleep: list[float]) -> None:
    now = [1000.0]
    monkeypatch.setattr(trigger_module.time, "time", lambda: now[0])

    async def advancing_sleep(seconds: float) -> None:
        no_real_sleep.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(trigger_module.asyncio, "sleep", advancing_sleep)
    api = ScriptedApi([job("running")])
    _use(monkeypatch, api)
    payload = _collect(FineTuningJobTrigger(job_id="ftjob-1", poll_interval=10, deadline=1025.0))[0]
    assert payload["status"] == "timeout"
    assert now[0] == 1025.0, "never sleeps past the deadline"
    assert all(s <= 10 for s in no_real_sleep)


def test_first_poll_is_spread_over_the_interval(monkeypatch: pytest.MonkeyPatch, no_real_sleep: list[float]) -> None:
    api = ScriptedApi([job("succeeded")])
    _use(monkeypatch, api)
    monkeypatch.setattr(trigger_module.random, "uniform", lambda a, b: b * 0.37)
    _collect(FineTuningJobTrigger(job_id="ftjob-1", poll_interval=20))
    assert no_real_sleep[0] == pytest.approx(7.4)


def test_transient_errors_are_tolerated(monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedApi([api_error(503), api_error(429), job("running"), job("succeeded")])
    _use(monkeypatch, api)
    events = _collect(FineTuningJobTrigger(job_id="ftjob-1", poll_interval=1))
    assert [e["status"] for e in events] == ["succeeded"]


@pytest.mark.parametrize("status", [401, 404])
def test_fatal_errors_end_the_wait_with_a_clear_event(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    api = ScriptedApi([job("running"), api_error(status, "No such job: ftjob-1")])
    _use(monkeypatch, api)
    events = _collect(FineTuningJobTrigger(job_id="ftjob-1", poll_interval=1))
    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert events[0]["status_code"] == status
    assert "No such job" in events[0]["message"]
    assert api.cancelled == [], "an unknown poll error never cancels"


def test_on_kill_cancels_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedApi([job("running")])
    _use(monkeypatch, api)
    asyncio.run(FineTuningJobTrigger(job_id="ftjob-1", cancel_on_kill=False).on_kill())
    assert api.cancelled == []
    asyncio.run(FineTuningJobTrigger(job_id="ftjob-1", cancel_on_kill=True).on_kill())
    assert api.cancelled == ["ftjob-1"]


def test_cleanup_never_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    """A triggerer restart calls cleanup(), not on_kill(): the job must keep running."""
    api = ScriptedApi([job("running")])
    _use(monkeypatch, api)
    asyncio.run(FineTuningJobTrigger(job_id="ftjob-1").cleanup())
    assert api.cancelled == []


def test_restart_from_defer_time_kwargs_resumes_from_recorded_progress(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real triggerer restart rebuilds the trigger from the kwargs stored at defer time; the progress
    the first run recorded in its task's XCom keeps events from being logged twice."""
    xcoms: dict[str, Any] = {}

    async def aget(ti: Any, key: str) -> Any:
        return xcoms.get(key)

    async def aset(ti: Any, key: str, value: Any) -> None:
        xcoms[key] = value

    monkeypatch.setattr(trigger_module, "aget_task_xcom", aget)
    monkeypatch.setattr(trigger_module, "aset_task_xcom", aset)
    api = ScriptedApi(
        [job("running"), job("running"), RuntimeError("triggerer died"), job("succeeded")],
        events=[event(n) for n in range(1, 9)],
    )
    _use(monkeypatch, api)
    _, defer_time_kwargs = FineTuningJobTrigger(job_id="ftjob-1", poll_interval=1).serialize()

    first = FineTuningJobTrigger(**defer_time_kwargs)
    first.task_instance = FakeTI()
    with pytest.raises(RuntimeError, match="triggerer died"):
        _collect(first)
    assert xcoms == {"fine_tuning_last_event_id": "ev-004"}

    second = FineTuningJobTrigger(**defer_time_kwargs)  # what the new triggerer process builds
    second.task_instance = FakeTI()
    payload = _collect(second)[0]
    assert payload["status"] == "succeeded"
    logged = _logged_events(caplog, capsys)
    assert logged == [f"Job ftjob-1: [info] event {n}" for n in range(1, 9)], "each event exactly once"
