"""Every FineTuningHook method over HTTP against the API server of the session (see conftest).

Tests without the ``simulator_only`` mark also run against a real server (FT_BASE_URL/FT_API_KEY).
The last test walks every request the simulator recorded and checks it against the OpenAPI spec.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.api.models import FineTuningJob, JobStatus
from airflow_provider_ft.api.policy import RetryPolicy
from airflow_provider_ft.api.transport import SyncTransport
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
from airflow_provider_ft.simulator import FaultPlan, FaultRule, RecordedRequest, Simulator
from airflow_provider_ft.testing import connection_uri_json
from tests.contract.openapi import find_operation, validate_request, validate_response
from tests.integration.conftest import (
    CHATTY_EVENTS,
    DELIBERATELY_INVALID,
    Api,
    create_long_job,
    deliberately_invalid,
    recorded,
    wait_for,
    wait_until_succeeded,
)
from tests.simulator.conftest import chat_jsonl, preference_jsonl

pytestmark = pytest.mark.integration
simulator_only = pytest.mark.simulator_only

WRONG_KEY = "sk-wrong-integration-key-99887766"
# Tiny delays: the retry tests exercise decisions, not patience.
FAST = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.002)


def _tag() -> str:
    return uuid.uuid4().hex[:12]


def _paths(sent: list[RecordedRequest], method: str, path: str) -> list[RecordedRequest]:
    return [r for r in sent if r.method == method and r.path == path]


def _wrong_key_hook(api: Api, monkeypatch: pytest.MonkeyPatch) -> FineTuningHook:
    monkeypatch.setenv("AIRFLOW_CONN_FT_WRONG_KEY", connection_uri_json(WRONG_KEY, api.base_url))
    return FineTuningHook("ft_wrong_key")


# --- connection -------------------------------------------------------------------------------------


def test_connection_ok(api: Api, hook: FineTuningHook) -> None:
    assert hook.test_connection() == (True, f"Connected to {api.base_url}: the API key is valid.")


def test_connection_with_wrong_key(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = _wrong_key_hook(api, monkeypatch).test_connection()
    assert ok is False
    assert message.startswith("list fine-tuning jobs failed (HTTP 401): ")
    assert message.endswith("Check the API key in the connection's Password field.")
    assert WRONG_KEY not in message and api.api_key not in message
    if api.simulator is not None:
        assert "Incorrect API key provided: sk-wro***." in message


# --- files ------------------------------------------------------------------------------------------


def test_files_upload_retrieve_list_iter_delete(api: Api, hook: FineTuningHook, tmp_path: Path) -> None:
    content = chat_jsonl(10)
    path = tmp_path / "from-path.jsonl"
    path.write_bytes(content)
    from_path = hook.upload_file(path)
    from_bytes = hook.upload_file(content, filename="from-bytes.jsonl")
    assert (from_path.filename, from_path.bytes, from_path.purpose) == ("from-path.jsonl", len(content), "fine-tune")
    assert (from_bytes.filename, from_bytes.bytes, from_bytes.purpose) == (
        "from-bytes.jsonl",
        len(content),
        "fine-tune",
    )
    validate_response("POST", "/v1/files", 200, from_path.raw)

    again = hook.retrieve_file(from_path.id)
    assert (again.id, again.filename, again.bytes) == (from_path.id, "from-path.jsonl", len(content))
    validate_response("GET", f"/v1/files/{again.id}", 200, again.raw)

    listed = [f.id for f in hook.list_files(purpose="fine-tune").items]
    assert listed.index(from_bytes.id) < listed.index(from_path.id)  # newest first
    first = hook.list_files(purpose="fine-tune", limit=1)
    assert ([f.id for f in first.items], first.has_more) == ([from_bytes.id], True)
    after = hook.list_files(purpose="fine-tune", after=from_bytes.id, limit=1)
    assert [f.id for f in after.items] == [from_path.id]
    every = [f.id for f in hook.iter_files(purpose="fine-tune")]
    assert every.count(from_path.id) == 1 and every.count(from_bytes.id) == 1

    assert hook.delete_file(from_path.id) is True
    assert hook.delete_file(from_bytes.id) is True
    with pytest.raises(FineTuningApiError) as caught:
        hook.retrieve_file(from_path.id)
    assert caught.value.status == 404
    assert from_path.id not in [f.id for f in hook.iter_files()]


@simulator_only
def test_upload_sends_multipart_form(hook: FineTuningHook, sim: Simulator) -> None:
    with recorded(sim) as sent:
        hook.upload_file(chat_jsonl(3), filename="form.jsonl")
    (post,) = sent
    assert (post.method, post.path, post.status) == ("POST", "/v1/files", 200)
    assert post.form == {"purpose": "fine-tune", "file": "form.jsonl"}
    assert post.files == {"file": {"filename": "form.jsonl", "bytes": len(chat_jsonl(3))}}
    assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert post.headers["authorization"] == "Bearer ***"  # the simulator redacts what it records


# --- jobs -------------------------------------------------------------------------------------------


def test_create_minimal_retrieve_cancel(api: Api, hook: FineTuningHook, training_file: str) -> None:
    body = {"model": "gpt-4o-mini", "training_file": training_file}
    created = hook.create_job(body)
    assert created.id.startswith("ftjob-")
    assert created.training_file == training_file
    assert created.model == "gpt-4o-mini-2024-07-18"
    assert created.status in (JobStatus.VALIDATING_FILES, JobStatus.QUEUED)
    validate_response("POST", "/v1/fine_tuning/jobs", 200, created.raw)

    fetched = hook.retrieve_job(created.id)
    assert (fetched.id, fetched.training_file) == (created.id, training_file)
    validate_response("GET", f"/v1/fine_tuning/jobs/{created.id}", 200, fetched.raw)

    cancelled = hook.cancel_job(created.id)
    assert (cancelled.id, cancelled.status) == (created.id, JobStatus.CANCELLED)
    validate_response("POST", f"/v1/fine_tuning/jobs/{created.id}/cancel", 200, cancelled.raw)
    if api.simulator is not None:
        posts = [r for r in api.simulator.state.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
        assert posts[-1].json == body  # the hook sends the body exactly as given


@simulator_only
def test_create_with_every_option(hook: FineTuningHook, sim: Simulator, training_file: str) -> None:
    validation = hook.upload_file(chat_jsonl(10, extra=" (held out)"), filename="validation.jsonl").id
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "training_file": training_file,
        "validation_file": validation,
        "suffix": "it-run",
        "seed": 42,
        "metadata": {"suite": "integration", "case": "full"},
        "integrations": [{"type": "wandb", "wandb": {"project": "ft-it", "tags": ["airflow"]}}],
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 0.5}},
        },
    }
    with recorded(sim) as sent:
        created = hook.create_job(body)
    assert [r.json for r in sent] == [body]
    assert (created.validation_file, created.metadata) == (validation, {"suite": "integration", "case": "full"})
    assert created.raw["seed"] == 42
    assert created.raw["integrations"] == body["integrations"]
    assert created.raw["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 0.5}},
    }
    done = wait_until_succeeded(hook, created.id)
    assert done.fine_tuned_model is not None and done.fine_tuned_model.startswith(
        "ft:gpt-4o-mini-2024-07-18:simulator:it-run:"
    )
    assert done.trained_tokens is not None and done.trained_tokens > 0
    validate_response("GET", f"/v1/fine_tuning/jobs/{done.id}", 200, done.raw)

    preference = hook.upload_file(preference_jsonl(10), filename="preference.jsonl").id
    dpo = hook.create_job(
        {
            "model": "gpt-4o-mini",
            "training_file": preference,
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
        }
    )
    assert dpo.raw["method"]["type"] == "dpo"
    assert dpo.raw["method"]["dpo"]["hyperparameters"]["beta"] == 0.2


@simulator_only
def test_list_jobs_after_limit_and_metadata(hook: FineTuningHook, sim: Simulator, training_file: str) -> None:
    tag = _tag()
    ids = [hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}}).id]
    ids += [hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}}).id]
    ids += [hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}}).id]
    newest_first = ids[::-1]
    with recorded(sim) as sent:
        everything = hook.list_jobs(metadata={"run": tag})
        first_two = hook.list_jobs(limit=2, metadata={"run": tag})
        rest = hook.list_jobs(after=newest_first[1], metadata={"run": tag})
    assert ([j.id for j in everything.items], everything.has_more) == (newest_first, False)
    assert ([j.id for j in first_two.items], first_two.has_more) == (newest_first[:2], True)
    assert ([j.id for j in rest.items], rest.has_more) == (newest_first[2:], False)
    assert [r.query for r in sent] == [
        {"metadata[run]": [tag]},
        {"limit": ["2"], "metadata[run]": [tag]},
        {"after": [newest_first[1]], "metadata[run]": [tag]},
    ]
    page = {"object": "list", "data": [j.raw for j in everything.items], "has_more": False}
    validate_response("GET", "/v1/fine_tuning/jobs", 200, page)


@simulator_only
def test_iter_jobs_across_pages(hook: FineTuningHook, sim: Simulator, training_file: str) -> None:
    tag = _tag()
    created = [
        hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"batch": tag}}).id
        for _ in range(103)
    ]
    with recorded(sim) as sent:
        walked = [job.id for job in hook.iter_jobs(metadata={"batch": tag})]
    assert walked == created[::-1]  # newest first, none repeated, none missing
    assert [r.query for r in sent] == [
        {"limit": ["100"], "metadata[batch]": [tag]},
        {"after": [walked[99]], "limit": ["100"], "metadata[batch]": [tag]},
    ]


@simulator_only
def test_pause_resume_cancel(hook: FineTuningHook, sim: Simulator, training_file: str) -> None:
    job = create_long_job(hook, training_file)
    wait_for(hook, job.id, lambda j: j.status in (JobStatus.QUEUED, JobStatus.RUNNING))
    paused = hook.pause_job(job.id)
    assert paused.status is JobStatus.PAUSED
    validate_response("POST", f"/v1/fine_tuning/jobs/{job.id}/pause", 200, paused.raw)
    assert hook.retrieve_job(job.id).status is JobStatus.PAUSED
    resumed = hook.resume_job(job.id)
    assert resumed.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    validate_response("POST", f"/v1/fine_tuning/jobs/{job.id}/resume", 200, resumed.raw)
    assert hook.cancel_job(job.id).status is JobStatus.CANCELLED
    messages = [e.message for e in hook.events_since(job.id, None)]
    interventions = [m for m in messages if m.split()[-1] in ("paused", "resumed", "cancelled")]
    assert interventions == ["Fine-tuning job paused", "Fine-tuning job resumed", "Fine-tuning job cancelled"]
    assert messages[-1] == "Fine-tuning job cancelled"  # nothing happens after a cancel
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        hook.cancel_job(job.id)
    assert (caught.value.status, caught.value.code) == (400, "job_already_ended")
    assert len(sent) == 1


# --- events and checkpoints -------------------------------------------------------------------------


@simulator_only
def test_events_list_iter_and_since(hook: FineTuningHook, sim: Simulator, chatty_job: FineTuningJob) -> None:
    job_id = chatty_job.id
    events_path = f"/v1/fine_tuning/jobs/{job_id}/events"
    with recorded(sim) as sent:
        newest_first = list(hook.iter_events(job_id))
    ids = [e.id for e in newest_first]
    assert len(ids) == CHATTY_EVENTS and len(set(ids)) == CHATTY_EVENTS
    assert [r.query for r in _paths(sent, "GET", events_path)] == [
        {"limit": ["100"]},
        {"after": [ids[99]], "limit": ["100"]},
    ]
    assert newest_first[0].message == "The job has successfully completed"
    assert newest_first[-1].message == f"Created fine-tuning job: {job_id}"

    page = hook.list_events(job_id, limit=5)
    assert ([e.id for e in page.items], page.has_more) == (ids[:5], True)
    assert [e.id for e in hook.list_events(job_id, after=ids[4], limit=5).items] == ids[5:10]
    validate_response(
        "GET", events_path, 200, {"object": "list", "data": [e.raw for e in page.items], "has_more": True}
    )

    def since(last_seen: str | None) -> tuple[list[str], list[RecordedRequest]]:
        with recorded(sim) as sent:
            found = hook.events_since(job_id, last_seen)
        created = [e.created_at for e in found]
        assert created == sorted(created)  # chronological
        return [e.id for e in found], _paths(sent, "GET", events_path)

    all_ids, pages = since(None)
    assert all_ids == ids[::-1] and len(pages) == 2
    recent, pages = since(ids[5])  # within the first page: that page only
    assert recent == ids[:5][::-1]
    assert [r.query for r in pages] == [{"limit": ["100"]}]
    nothing, pages = since(ids[0])
    assert (nothing, len(pages)) == ([], 1)
    older, pages = since(ids[110])  # on the second page: stops there, no third request
    assert older == ids[:110][::-1]
    assert [r.query for r in pages] == [{"limit": ["100"]}, {"after": [ids[99]], "limit": ["100"]}]


@simulator_only
def test_checkpoints(hook: FineTuningHook, sim: Simulator, finished_job: FineTuningJob) -> None:
    job_id = finished_job.id
    model = finished_job.fine_tuned_model
    listed = hook.list_checkpoints(job_id)
    assert [(c.step_number, c.fine_tuned_model_checkpoint) for c in listed.items] == [
        (30, model),  # the last checkpoint is the fine-tuned model itself
        (20, f"{model}:ckpt-step-20"),
        (10, f"{model}:ckpt-step-10"),
    ]
    assert listed.has_more is False
    assert {c.fine_tuning_job_id for c in listed.items} == {job_id}
    assert set(listed.items[0].metrics) >= {"train_loss", "valid_loss", "full_valid_loss"}
    first = hook.list_checkpoints(job_id, limit=2)
    assert ([c.step_number for c in first.items], first.has_more) == ([30, 20], True)
    assert [c.step_number for c in hook.list_checkpoints(job_id, after=first.items[-1].id).items] == [10]
    with recorded(sim) as sent:
        assert [c.id for c in hook.iter_checkpoints(job_id)] == [c.id for c in listed.items]
    assert len(sent) == 1
    page = {"object": "list", "data": [c.raw for c in listed.items], "has_more": False}
    page |= {"first_id": listed.items[0].id, "last_id": listed.items[-1].id}
    validate_response("GET", f"/v1/fine_tuning/jobs/{job_id}/checkpoints", 200, page)


@simulator_only
def test_checkpoint_permissions(hook: FineTuningHook, finished_job: FineTuningJob) -> None:
    checkpoint = f"{finished_job.fine_tuned_model}:ckpt-step-10"
    granted = hook.create_checkpoint_permission(checkpoint, ["proj_alpha", "proj_beta"])
    assert [p.project_id for p in granted] == ["proj_alpha", "proj_beta"]
    assert all(p.id.startswith("cp_") for p in granted)
    listed = hook.list_checkpoint_permissions(checkpoint)
    assert sorted(p.id for p in listed.items) == sorted(p.id for p in granted)
    assert [p.project_id for p in hook.list_checkpoint_permissions(checkpoint, project_id="proj_beta").items] == [
        "proj_beta"
    ]
    assert hook.delete_checkpoint_permission(checkpoint, granted[0].id) is True
    assert [p.id for p in hook.list_checkpoint_permissions(checkpoint).items] == [granted[1].id]
    with pytest.raises(FineTuningApiError) as caught:
        hook.delete_checkpoint_permission(checkpoint, granted[0].id)
    assert caught.value.status == 404
    assert f"permission {granted[0].id} of checkpoint {checkpoint} was not found" in str(caught.value)
    with pytest.raises(FineTuningApiError) as caught:
        hook.list_checkpoint_permissions("ft:gpt-4o-mini-2024-07-18:nobody::nothing")
    assert "checkpoint ft:gpt-4o-mini-2024-07-18:nobody::nothing was not found" in str(caught.value)


# --- error mapping ----------------------------------------------------------------------------------


def test_404_names_the_missing_job_and_file(api: Api, hook: FineTuningHook) -> None:
    with pytest.raises(FineTuningApiError) as caught:
        hook.retrieve_job("ftjob-doesnotexist0000")
    err = caught.value
    assert (err.status, err.operation) == (404, "retrieve fine-tuning job ftjob-doesnotexist0000")
    assert "fine-tuning job ftjob-doesnotexist0000 was not found" in str(err)
    assert err.request_id is not None and err.request_id.startswith("req_")
    with pytest.raises(FineTuningApiError) as caught:
        hook.retrieve_file("file-doesnotexist0000")
    assert caught.value.status == 404
    assert "file file-doesnotexist0000 was not found" in str(caught.value)
    if api.simulator is not None:
        assert (err.param, err.code, err.type) == (
            "fine_tuning_job_id",
            "fine_tuning_job_not_found",
            "invalid_request_error",
        )


def test_400_too_long_suffix_goes_straight_through(api: Api, hook: FineTuningHook, training_file: str) -> None:
    body = {"model": "gpt-4o-mini", "training_file": training_file, "suffix": "s" * 65}
    with deliberately_invalid(api.simulator), pytest.raises(FineTuningApiError) as caught:
        hook.create_job(body)
    err = caught.value
    assert (err.status, err.param, err.maybe_committed) == (400, "suffix", False)
    assert str(err).startswith("create fine-tuning job failed (HTTP 400): ")
    assert "param=suffix" in str(err)


def test_400_bad_n_epochs(api: Api, hook: FineTuningHook, training_file: str) -> None:
    body = {
        "model": "gpt-4o-mini",
        "training_file": training_file,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}},
    }
    with deliberately_invalid(api.simulator), pytest.raises(FineTuningApiError) as caught:
        hook.create_job(body)
    assert caught.value.status == 400
    assert caught.value.param is not None and caught.value.param.endswith("n_epochs")
    if api.simulator is not None:
        assert caught.value.param == "method.supervised.hyperparameters.n_epochs"


def test_401_on_an_ordinary_call(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FineTuningApiError) as caught:
        _wrong_key_hook(api, monkeypatch).retrieve_job("ftjob-anything")
    err = caught.value
    assert (err.status, err.code) == (401, "invalid_api_key")
    assert str(err).endswith("Check the API key in the connection's Password field.")
    assert WRONG_KEY not in str(err) and WRONG_KEY not in repr(err)


# --- retries and faults (simulator only) ------------------------------------------------------------


def _fast_hook(api: Api, policy: RetryPolicy = FAST, **kwargs: Any) -> FineTuningHook:
    return FineTuningHook(api.conn_id, retry_policy=policy, **kwargs)


def _recording_sleep(hook: FineTuningHook) -> list[float]:
    """Swap the hook's transport for one whose sleeps are recorded instead of slept."""
    sleeps: list[float] = []
    hook.client.transport = SyncTransport(hook.client.config, hook.retry_policy, sleep=sleeps.append)
    return sleeps


@simulator_only
def test_429_waits_as_long_as_retry_after_ms_says(
    api: Api, sim: Simulator, finished_job: FineTuningJob, caplog: pytest.LogCaptureFixture
) -> None:
    # A 5 s backoff would show if the header were ignored.
    hook = _fast_hook(api, RetryPolicy(max_retries=3, base_delay=5.0, max_delay=5.0))
    sleeps = _recording_sleep(hook)
    path = f"/v1/fine_tuning/jobs/{finished_job.id}"
    sim.set_faults(FaultPlan(rate_limit=FaultRule(count=2, paths=(f"GET {path}",), seconds=0.037)))
    with recorded(sim) as sent:
        assert hook.retrieve_job(finished_job.id).id == finished_job.id
    assert sleeps == [0.037, 0.037]
    assert [(r.status, r.fault) for r in sent] == [(429, "rate_limit"), (429, "rate_limit"), (200, None)]
    warnings = [r for r in caplog.records if r.name == "airflow_provider_ft.api.transport"]
    assert [r.getMessage() for r in warnings] == [
        f"retrieve fine-tuning job {finished_job.id}: HTTP 429; retrying in 0.0s (retry 1 of at most 3)",
        f"retrieve fine-tuning job {finished_job.id}: HTTP 429; retrying in 0.0s (retry 2 of at most 3)",
    ]


@simulator_only
def test_5xx_is_retried_then_succeeds(
    api: Api, sim: Simulator, finished_job: FineTuningJob, training_file: str
) -> None:
    hook = _fast_hook(api)
    sim.set_faults(FaultPlan(server_error=FaultRule(count=2, status=500, paths=("GET /v1/fine_tuning/jobs/*",))))
    with recorded(sim) as sent:
        assert hook.retrieve_job(finished_job.id).status is JobStatus.SUCCEEDED
    assert [r.status for r in sent] == [500, 500, 200]

    # A 503 means the request never reached the application, so even a create is safely resent.
    tag = _tag()
    sim.set_faults(FaultPlan(server_error=FaultRule(count=1, status=503, paths=("POST /v1/fine_tuning/jobs",))))
    with recorded(sim) as sent:
        job = hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}})
    assert [r.status for r in sent] == [503, 200]
    assert [j.id for j in hook.list_jobs(metadata={"run": tag}).items] == [job.id]


@simulator_only
def test_retries_exhausted(api: Api, sim: Simulator) -> None:
    hook = _fast_hook(api, RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002))
    sim.set_faults(FaultPlan(server_error=FaultRule(count=10, status=503)))
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        hook.list_files()
    assert len(sent) == 3
    assert (caught.value.status, caught.value.type) == (503, "server_error")
    assert str(caught.value).endswith("The service had a problem and retries were exhausted; try again later.")

    sim.set_faults(FaultPlan(rate_limit=FaultRule(count=10, seconds=0.001)))
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        hook.list_files()
    assert len(sent) == 3
    assert (caught.value.status, caught.value.code) == (429, "rate_limit_exceeded")
    assert str(caught.value).endswith(
        "Rate limited and retries were exhausted: raise max_retries or run fewer jobs at once."
    )


@simulator_only
def test_400_and_404_are_never_retried(api: Api, sim: Simulator, training_file: str) -> None:
    hook = _fast_hook(api)
    sleeps = _recording_sleep(hook)
    with recorded(sim) as sent, pytest.raises(FineTuningApiError):
        hook.retrieve_job("ftjob-missing")
    assert [r.status for r in sent] == [404]
    with deliberately_invalid(sim), recorded(sim) as sent, pytest.raises(FineTuningApiError):
        hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "suffix": "x" * 70})
    assert [r.status for r in sent] == [400]
    with recorded(sim) as sent, pytest.raises(FineTuningApiError):
        hook.create_job({"model": "gpt-4o-mini", "training_file": "file-missing"})
    assert [r.status for r in sent] == [404]
    assert sleeps == []


@simulator_only
def test_lost_create_response_is_not_resent(api: Api, sim: Simulator, training_file: str) -> None:
    hook = _fast_hook(api)
    tag = _tag()
    sim.set_faults(FaultPlan(lost_response=FaultRule(count=1, paths=("POST /v1/fine_tuning/jobs",))))
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}})
    err = caught.value
    assert (err.maybe_committed, err.status) == (True, None)
    assert str(err).startswith(f"create fine-tuning job failed: lost the connection to {api.base_url} (")
    assert [(r.method, r.path, r.status, r.fault) for r in sent] == [
        ("POST", "/v1/fine_tuning/jobs", 200, "lost_response")
    ]
    # The job exists although its creator never heard back: the caller must look before creating again.
    assert [j.metadata for j in hook.list_jobs(metadata={"run": tag}).items] == [{"run": tag}]

    sim.set_faults(FaultPlan(lost_response=FaultRule(count=1, paths=("POST /v1/files",))))
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        hook.upload_file(chat_jsonl(2), filename=f"lost-{tag}.jsonl")
    assert caught.value.maybe_committed is True
    assert len(sent) == 1
    assert [f.filename for f in hook.iter_files()].count(f"lost-{tag}.jsonl") == 1


@simulator_only
def test_500_on_create_is_not_resent(api: Api, sim: Simulator, training_file: str) -> None:
    tag = _tag()
    sim.set_faults(FaultPlan(server_error=FaultRule(count=1, status=500, paths=("POST /v1/fine_tuning/jobs",))))
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        _fast_hook(api).create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}})
    assert (caught.value.status, caught.value.maybe_committed) == (500, True)
    assert len(sent) == 1


@simulator_only
def test_connection_reset(api: Api, sim: Simulator, training_file: str) -> None:
    hook = _fast_hook(api)
    sim.set_faults(FaultPlan(reset=FaultRule(count=1, paths=("GET /v1/files",))))
    with recorded(sim) as sent:
        hook.list_files()
    assert [(r.status, r.fault) for r in sent] == [(None, "reset"), (200, None)]

    # On a create the same reset is ambiguous to the client: it reports it and does not resend.
    tag = _tag()
    sim.set_faults(FaultPlan(reset=FaultRule(count=1, paths=("POST /v1/fine_tuning/jobs",))))
    with recorded(sim) as sent, pytest.raises(FineTuningApiError) as caught:
        hook.create_job({"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"run": tag}})
    assert caught.value.maybe_committed is True
    assert len(sent) == 1
    assert hook.list_jobs(metadata={"run": tag}).items == []


@simulator_only
def test_slow_answer_past_the_timeout(api: Api, sim: Simulator, finished_job: FineTuningJob) -> None:
    path = f"/v1/fine_tuning/jobs/{finished_job.id}"
    sim.set_faults(FaultPlan(slow=FaultRule(count=1, seconds=0.6, paths=(f"GET {path}",))))
    with pytest.raises(FineTuningApiError) as caught:
        FineTuningHook(api.conn_id, timeout=0.2, max_retries=0).retrieve_job(finished_job.id)
    err = caught.value
    assert str(err).startswith(f"retrieve fine-tuning job {finished_job.id} failed: got no answer in time from ")
    assert str(err).endswith("; the timeout is 0.2s (connection extra 'timeout')")
    assert err.maybe_committed is False

    sim.set_faults(FaultPlan(slow=FaultRule(count=1, seconds=0.6, paths=(f"GET {path}",))))
    with recorded(sim) as sent:
        _fast_hook(api, timeout=0.2).retrieve_job(finished_job.id)
    assert [r.fault for r in sent] == ["slow", None]


@simulator_only
def test_key_never_in_errors_or_logs(
    api: Api, sim: Simulator, training_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _fast_hook(api, RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.002), timeout=0.3)
    errors: list[FineTuningApiError] = []

    def expect_error(plan: FaultPlan | None, call: Any) -> None:
        sim.set_faults(plan)
        with pytest.raises(FineTuningApiError) as caught:
            call()
        errors.append(caught.value)

    expect_error(FaultPlan(rate_limit=FaultRule(count=5, seconds=0.001)), hook.list_files)
    expect_error(FaultPlan(server_error=FaultRule(count=5, status=502)), hook.list_files)
    expect_error(FaultPlan(reset=FaultRule(count=5)), hook.list_files)
    expect_error(FaultPlan(slow=FaultRule(count=5, seconds=0.5)), hook.list_files)
    body = {"model": "gpt-4o-mini", "training_file": training_file}
    expect_error(FaultPlan(lost_response=FaultRule(count=1)), lambda: hook.create_job(body))
    expect_error(None, lambda: hook.retrieve_job("ftjob-nothere"))
    assert [e.status for e in errors] == [429, 502, None, None, None, 404]
    for err in errors:
        assert api.api_key not in f"{err} {err!r} {err.api_message} {err.args}"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retrying in" in m for m in messages) == 4  # one retry logged per retryable failure
    assert not [m for m in messages if api.api_key in m]
    assert api.api_key not in caplog.text


def test_hook_repr_has_no_key(api: Api, hook: FineTuningHook) -> None:
    texts = [repr(hook), repr(hook.client), repr(hook.client.transport), repr(hook.client.config)]
    assert texts[0] == f"FineTuningHook(conn_id={api.conn_id!r})"
    assert not [t for t in texts if api.api_key in t]
    logging.getLogger(__name__).debug("client %s", hook.client)  # the autouse check reads this record too


# --- the spec walk (keep last: it checks what every test above sent) --------------------------------

HOOK_OPERATIONS = {
    ("GET", "/files"),
    ("POST", "/files"),
    ("GET", "/files/{file_id}"),
    ("DELETE", "/files/{file_id}"),
    ("POST", "/fine_tuning/jobs"),
    ("GET", "/fine_tuning/jobs"),
    ("GET", "/fine_tuning/jobs/{fine_tuning_job_id}"),
    ("POST", "/fine_tuning/jobs/{fine_tuning_job_id}/cancel"),
    ("POST", "/fine_tuning/jobs/{fine_tuning_job_id}/pause"),
    ("POST", "/fine_tuning/jobs/{fine_tuning_job_id}/resume"),
    ("GET", "/fine_tuning/jobs/{fine_tuning_job_id}/events"),
    ("GET", "/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints"),
    ("GET", "/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions"),
    ("POST", "/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions"),
    ("DELETE", "/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions/{permission_id}"),
}


@simulator_only
def test_every_request_sent_matches_the_spec(
    hook: FineTuningHook, sim: Simulator, training_file: str, finished_job: FineTuningJob
) -> None:
    # A short tour of every operation, so the walk is never vacuous even when this test runs alone.
    uploaded = hook.upload_file(chat_jsonl(2), filename="tour.jsonl")
    hook.retrieve_file(uploaded.id)
    hook.list_files(purpose="fine-tune", limit=5)
    hook.delete_file(uploaded.id)
    job = create_long_job(hook, training_file, tour="1")
    hook.list_jobs(limit=3, metadata={"tour": "1"})
    wait_for(hook, job.id, lambda j: j.status in (JobStatus.QUEUED, JobStatus.RUNNING))
    hook.pause_job(job.id)
    hook.resume_job(job.id)
    hook.cancel_job(job.id)
    hook.list_events(job.id, limit=2)
    hook.list_checkpoints(finished_job.id, limit=1)
    checkpoint = f"{finished_job.fine_tuned_model}:ckpt-step-20"
    granted = hook.create_checkpoint_permission(checkpoint, ["proj_tour"])
    hook.list_checkpoint_permissions(checkpoint, project_id="proj_tour")
    hook.delete_checkpoint_permission(checkpoint, granted[0].id)

    records = sim.state.requests.snapshot()
    seen: set[tuple[str, str]] = set()
    violations: list[str] = []
    for record in records:
        if id(record) in DELIBERATELY_INVALID:
            continue
        try:
            seen.add((record.method, find_operation(record.method, record.path)[0]))
            validate_request(record.method, record.path, record.query, record.json, record.form)
        except AssertionError as err:
            violations.append(f"{record.method} {record.path} {record.query}: {err}")
    assert not violations, f"{len(violations)} of {len(records)} requests break the spec:\n" + "\n".join(violations)
    assert seen == HOOK_OPERATIONS


@simulator_only
def test_invalid_requests_are_caught_by_the_walk(sim: Simulator) -> None:
    """The walk's checker does reject what the deliberately invalid tests sent (so the walk can fail)."""
    exempt = [r for r in sim.state.requests.snapshot() if id(r) in DELIBERATELY_INVALID]
    if not exempt:
        pytest.skip("no deliberately invalid request was sent in this session")
    for record in exempt:
        with pytest.raises(AssertionError, match="does not match the spec"):
            validate_request(record.method, record.path, record.query, record.json, record.form)
