"""Operators and the sensor with a scripted hook: every outcome, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_ft._compat import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.operators.fine_tuning import (
    CancelFineTuningJobOperator,
    CreateFineTuningJobOperator,
    PauseFineTuningJobOperator,
    ResumeFineTuningJobOperator,
    _JobOperator,
)
from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor
from airflow_provider_ft.waiting import FineTuningJobFailed, JobWaitMixin
from tests.unit.fakes import FakeHook, FakeTI, ScriptedApi, api_error, job


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> FakeHook:
    fake = FakeHook()
    monkeypatch.setattr(JobWaitMixin, "hook", lambda self: fake)
    monkeypatch.setattr(_JobOperator, "hook", lambda self: fake)
    monkeypatch.setattr("time.sleep", lambda s: None)
    return fake


def _context(ti: FakeTI | None = None) -> dict[str, Any]:
    return {"ti": ti or FakeTI()}


def _sensor(**kw: Any) -> FineTuningJobSensor:
    return FineTuningJobSensor(task_id="wait", job_id="ftjob-1", poll_interval=5, **kw)


# --- sensor -----------------------------------------------------------------------------------------


def test_sensor_defers_with_an_absolute_deadline(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running")])
    ctx = _context()
    with pytest.raises(TaskDeferred) as info:
        _sensor(timeout=600).execute(ctx)
    trigger = info.value.trigger  # type: ignore[attr-defined]
    _, kwargs = trigger.serialize()
    assert kwargs["job_id"] == "ftjob-1"
    assert kwargs["poll_interval"] == 5.0
    import time

    assert kwargs["deadline"] == pytest.approx(time.time() + 600, abs=5)
    assert info.value.method_name == "execute_complete"  # type: ignore[attr-defined]
    assert ctx["ti"].xcom["job_id"] == "ftjob-1", "pushed before deferring, for the extra link"


def test_sensor_finishes_without_deferring_when_the_job_already_ended(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("succeeded")])
    ti = FakeTI()
    assert _sensor().execute(_context(ti)) == "ft:gpt-4o-mini:org::abc"
    assert ti.xcom["fine_tuned_model"] == "ft:gpt-4o-mini:org::abc"
    assert [c["step_number"] for c in ti.xcom["checkpoints"]] == [30, 20]
    assert ti.xcom["trained_tokens"] == 100
    assert ti.xcom["result_files"] == ["file-r"]


def _payload(status: str, **kw: Any) -> dict[str, Any]:
    base = {
        "status": status,
        "job_id": "ftjob-1",
        "message": f"job {status}",
        "fine_tuned_model": None,
        "checkpoints": [],
        "result_files": [],
        "error": None,
    }
    return {**base, **kw}


def test_execute_complete_pushes_xcom_on_success(hook: FakeHook) -> None:
    ti = FakeTI()
    ckpts = [{"id": "c2", "step_number": 20, "fine_tuned_model_checkpoint": "m:ckpt-step-20", "metrics": {}}]
    result = _sensor().execute_complete(
        _context(ti), _payload("succeeded", fine_tuned_model="ft:m", checkpoints=ckpts, trained_tokens=7)
    )
    assert result == "ft:m"
    assert ti.xcom["checkpoints"] == ckpts
    assert ti.xcom["trained_tokens"] == 7


def test_failed_job_fails_with_code_and_param(hook: FakeHook) -> None:
    error = {"code": "invalid_training_file", "message": "line 3 is bad", "param": "training_file"}
    with pytest.raises(FineTuningJobFailed) as info:
        _sensor().execute_complete(_context(), _payload("failed", error=error, message="job failed: line 3 is bad"))
    assert info.value.code == "invalid_training_file"
    assert info.value.param == "training_file"
    assert "line 3 is bad" in str(info.value)


def test_cancelled_job_fails_or_skips(hook: FakeHook) -> None:
    with pytest.raises(FineTuningJobFailed, match="cancelled"):
        _sensor().execute_complete(_context(), _payload("cancelled", message="job was cancelled"))
    with pytest.raises(AirflowSkipException):
        _sensor(soft_fail=True).execute_complete(_context(), _payload("cancelled"))


def test_timeout_cancels_only_when_asked(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running")])
    with pytest.raises(AirflowSensorTimeout):
        _sensor().execute_complete(_context(), _payload("timeout"))
    assert hook.api.cancelled == []
    with pytest.raises(AirflowSensorTimeout):
        _sensor(cancel_on_timeout=True).execute_complete(_context(), _payload("timeout"))
    assert hook.api.cancelled == ["ftjob-1"]


def test_timeout_does_not_cancel_a_job_that_already_ended(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("succeeded")])
    with pytest.raises(AirflowSensorTimeout):
        _sensor(cancel_on_timeout=True).execute_complete(_context(), _payload("timeout"))
    assert hook.api.cancelled == []


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (None, "expected the trigger to send a dict"),
        ({"status": "weird", "job_id": "ftjob-1"}, "unknown wait outcome"),
        ({"status": "succeeded", "job_id": "ftjob-2", "fine_tuned_model": "m"}, "is for job 'ftjob-2'"),
        ({"status": "succeeded", "job_id": "ftjob-1"}, "names no fine_tuned_model"),
    ],
)
def test_execute_complete_rejects_invalid_events(hook: FakeHook, event: Any, match: str) -> None:
    with pytest.raises(FineTuningJobFailed, match=match):
        _sensor().execute_complete(_context(), event)


def test_error_event_fails_with_status(hook: FakeHook) -> None:
    with pytest.raises(FineTuningJobFailed) as info:
        _sensor().execute_complete(_context(), _payload("error", message="HTTP 401: bad key", status_code=401))
    assert info.value.status == 401


def test_poke_mode(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running"), job("succeeded")])
    sensor = _sensor(deferrable=False)
    ti = FakeTI()
    assert sensor.poke(_context(ti)) is False
    done = sensor.poke(_context(ti))
    assert done.is_done
    assert done.xcom_value == "ft:gpt-4o-mini:org::abc"
    assert ti.xcom["fine_tuned_model"] == "ft:gpt-4o-mini:org::abc"


def test_sensor_on_kill_cancels(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running")])
    _sensor(cancel_on_kill=False).on_kill()
    assert hook.api.cancelled == []
    _sensor().on_kill()
    assert hook.api.cancelled == ["ftjob-1"]


def test_sensor_templates() -> None:
    assert set(FineTuningJobSensor.template_fields) == {"job_id", "conn_id"}


# --- create -----------------------------------------------------------------------------------------


def _create(**kw: Any) -> CreateFineTuningJobOperator:
    return CreateFineTuningJobOperator(task_id="create", model="gpt-4o-mini", training_file="file-t", **kw)


TAGS = {"airflow_dag_id": "d", "airflow_run_id": "r", "airflow_task_id": "t", "airflow_map_index": "-1"}


def test_create_sends_only_given_fields_plus_task_tags(hook: FakeHook) -> None:
    op = _create(
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1}}}, suffix="s", seed=3, metadata={"team": "x"}
    )
    ti = FakeTI()
    assert op.execute(_context(ti)) == "ftjob-new1"
    assert hook.created == [
        {
            "model": "gpt-4o-mini",
            "training_file": "file-t",
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1}}},
            "suffix": "s",
            "seed": 3,
            "metadata": {"team": "x", **TAGS},
        }
    ]
    assert hook.list_calls == [TAGS]
    assert ti.xcom["job_id"] == "ftjob-new1"


def test_retry_reuses_the_job_of_an_earlier_try(hook: FakeHook) -> None:
    hook.existing = [job("running", "ftjob-earlier", metadata=TAGS)]
    assert _create().execute(_context()) == "ftjob-earlier"
    assert hook.created == []


def test_earlier_failed_job_is_not_reused(hook: FakeHook) -> None:
    hook.existing = [job("failed", "ftjob-earlier", metadata=TAGS)]
    assert _create().execute(_context()) == "ftjob-new1"


def test_a_job_with_other_tags_is_never_adopted(hook: FakeHook) -> None:
    hook.existing = [job("running", "ftjob-other", metadata={**TAGS, "airflow_run_id": "other"})]
    assert _create().execute(_context()) == "ftjob-new1"


def test_reuse_can_be_turned_off(hook: FakeHook) -> None:
    hook.existing = [job("running", "ftjob-earlier", metadata=TAGS)]
    assert _create(reuse_existing_job=False).execute(_context()) == "ftjob-new1"
    assert hook.list_calls == []


def test_lost_create_response_is_reconciled_not_resent(hook: FakeHook, monkeypatch: pytest.MonkeyPatch) -> None:
    hook.create_errors = [FineTuningApiError("lost the connection", maybe_committed=True)]
    calls = {"n": 0}
    original = hook.list_jobs

    def list_jobs(**kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] >= 2:  # after the lost create, the job shows up
            hook.existing = [job("validating_files", "ftjob-committed", metadata=TAGS)]
        return original(**kw)

    monkeypatch.setattr(hook, "list_jobs", list_jobs)
    assert _create().execute(_context()) == "ftjob-committed"
    assert len(hook.created) == 1, "the create request must not be sent twice"


def test_definite_create_errors_are_raised(hook: FakeHook) -> None:
    hook.create_errors = [api_error(400, "bad suffix", param="suffix")]
    with pytest.raises(FineTuningApiError, match="bad suffix"):
        _create().execute(_context())
    assert len(hook.created) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"training_file": ""}, "'training_file' is empty"),
        ({"model": "  "}, "'model' is empty"),
        ({"suffix": "x" * 65}, "is 65 characters; the API allows 64"),
        ({"metadata": {f"k{i}": "v" for i in range(13)}}, "keep at most 12 keys"),
        ({"metadata": {"airflow_dag_id": "mine"}}, "is reserved"),
        ({"metadata": {"k": "v" * 513}}, "the API allows 512"),
    ],
)
def test_bad_create_parameters_fail_before_any_call(hook: FakeHook, kwargs: dict[str, Any], match: str) -> None:
    base = {"model": "gpt-4o-mini", "training_file": "file-t"}
    op = CreateFineTuningJobOperator(task_id="create", **{**base, **kwargs})
    with pytest.raises(ValueError, match=match):
        op.execute(_context())
    assert hook.created == []


def test_create_and_wait_blocking(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running", "ftjob-new1"), job("succeeded", "ftjob-new1")])
    ti = FakeTI()
    assert _create(wait_for_completion=True, deferrable=False, poll_interval=0).execute(_context(ti)) == "ftjob-new1"
    assert ti.xcom["fine_tuned_model"] == "ft:gpt-4o-mini:org::abc"


def test_create_and_wait_defers(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running", "ftjob-new1")])
    op = _create(wait_for_completion=True, deferrable=True, timeout=60)
    with pytest.raises(TaskDeferred) as info:
        op.execute(_context())
    assert info.value.trigger.job_id == "ftjob-new1"  # type: ignore[attr-defined]
    ti = FakeTI()
    ti.xcom["job_id"] = "ftjob-new1"
    fresh = _create(wait_for_completion=True, deferrable=True)  # execute_complete runs on a new instance
    assert fresh.execute_complete(_context(ti), _payload("succeeded", job_id="ftjob-new1", fine_tuned_model="m")) == (
        "ftjob-new1"
    )
    assert ti.xcom["fine_tuned_model"] == "m"


def test_create_on_kill_cancels_a_waited_job(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running")])
    op = _create(wait_for_completion=True)
    op.job_id = "ftjob-1"
    op.on_kill()
    assert hook.api.cancelled == ["ftjob-1"]
    nowait = _create()
    nowait.job_id = "ftjob-2"
    nowait.on_kill()
    assert hook.api.cancelled == ["ftjob-1"], "a job not waited for is not the task's to cancel"


def test_deferrable_defaults_to_the_airflow_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert _create().deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert _create().deferrable is False
    assert _create(deferrable=True).deferrable is True


def test_create_template_fields_and_renderers() -> None:
    fields = set(CreateFineTuningJobOperator.template_fields)
    assert {
        "model",
        "training_file",
        "validation_file",
        "method",
        "hyperparameters",
        "suffix",
        "seed",
        "integrations",
        "metadata",
    } <= fields
    assert CreateFineTuningJobOperator.template_fields_renderers["method"] == "json"


def test_create_can_be_mapped() -> None:
    """Dynamic task mapping over methods: partial/expand builds a mapped operator."""
    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG  # type: ignore[assignment]
    import datetime

    with DAG("m", schedule=None, start_date=datetime.datetime(2025, 1, 1)):
        mapped = CreateFineTuningJobOperator.partial(task_id="sweep", model="m", training_file="f").expand(
            method=[{"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": n}}} for n in (1, 2)]
        )
    assert mapped.task_id == "sweep"


# --- cancel / pause / resume ------------------------------------------------------------------------


def test_cancel_running_job(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running")])
    assert CancelFineTuningJobOperator(task_id="c", job_id="ftjob-1").execute(_context()) == "cancelled"
    assert hook.api.cancelled == ["ftjob-1"]


def test_cancel_of_an_ended_job_is_reported_not_an_error(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("succeeded")])
    assert CancelFineTuningJobOperator(task_id="c", job_id="ftjob-1").execute(_context()) == "succeeded"
    assert hook.api.cancelled == []
    with pytest.raises(FineTuningApiError, match="already ended"):
        CancelFineTuningJobOperator(task_id="c", job_id="ftjob-1", fail_if_ended=True).execute(_context())


def test_pause_and_resume(hook: FakeHook) -> None:
    assert PauseFineTuningJobOperator(task_id="p", job_id="ftjob-1").execute(_context()) == "paused"
    assert ResumeFineTuningJobOperator(task_id="r", job_id="ftjob-1").execute(_context()) == "running"


class FakeStore:
    """Airflow 3.3's task_state_store: survives the retries of one task instance."""

    def __init__(self, **values: Any) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **kw: Any) -> None:
        self.values[key] = value


def test_created_job_id_is_saved_in_the_task_state_store(hook: FakeHook) -> None:
    store = FakeStore()
    assert _create().execute({"ti": FakeTI(), "task_state_store": store}) == "ftjob-new1"
    assert store.values == {"fine_tuning_job_id": "ftjob-new1"}


def test_retry_reconnects_to_the_stored_job_without_listing(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("running", "ftjob-stored")])
    store = FakeStore(fine_tuning_job_id="ftjob-stored")
    assert _create().execute({"ti": FakeTI(), "task_state_store": store}) == "ftjob-stored"
    assert hook.created == []
    assert hook.list_calls == []


def test_stored_job_that_vanished_means_create_anew(hook: FakeHook) -> None:
    hook.api = ScriptedApi([api_error(404, "No such job")])
    store = FakeStore(fine_tuning_job_id="ftjob-gone")
    assert _create().execute({"ti": FakeTI(), "task_state_store": store}) == "ftjob-new1"
    assert store.values["fine_tuning_job_id"] == "ftjob-new1"


def test_stored_job_that_failed_is_not_reused(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("failed", "ftjob-stored")])
    store = FakeStore(fine_tuning_job_id="ftjob-stored")
    assert _create().execute({"ti": FakeTI(), "task_state_store": store}) == "ftjob-new1"


def test_pause_can_wait_for_the_job_to_run(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("validating_files"), job("queued"), job("running")])
    op = PauseFineTuningJobOperator(task_id="p", job_id="ftjob-1", wait_until_running=True, poll_interval=0)
    assert op.execute(_context()) == "paused"
    assert hook.api.polls == 3


def test_pause_wait_fails_clearly_when_the_job_ends_first(hook: FakeHook) -> None:
    hook.api = ScriptedApi([job("validating_files"), job("failed")])
    op = PauseFineTuningJobOperator(task_id="p", job_id="ftjob-1", wait_until_running=True, poll_interval=0)
    with pytest.raises(FineTuningApiError, match=r"ended \(failed\) before it could be paused"):
        op.execute(_context())
