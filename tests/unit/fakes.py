"""Scripted stand-ins for the API clients and the task instance, for tests without a server."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_ft.api.client import ListResult
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.api.models import Checkpoint, FineTuningJob, JobEvent


def job(status: str, job_id: str = "ftjob-1", **fields: Any) -> FineTuningJob:
    raw = {
        "id": job_id,
        "object": "fine_tuning.job",
        "status": status,
        "model": "gpt-4o-mini-2024-07-18",
        "created_at": 1,
        "training_file": "file-t",
        "validation_file": None,
        "fine_tuned_model": "ft:gpt-4o-mini:org::abc" if status == "succeeded" else None,
        "finished_at": 2 if status in ("succeeded", "failed", "cancelled") else None,
        "trained_tokens": 100 if status == "succeeded" else None,
        "result_files": ["file-r"] if status == "succeeded" else [],
        "error": None,
        "metadata": {},
        **fields,
    }
    return FineTuningJob.from_api(raw)


def event(n: int, message: str = "", **fields: Any) -> JobEvent:
    return JobEvent.from_api(
        {
            "id": f"ev-{n:03d}",
            "object": "fine_tuning.job.event",
            "created_at": n,
            "level": "info",
            "message": message or f"event {n}",
            "type": "message",
            "data": {},
            **fields,
        }
    )


def checkpoint(step: int) -> Checkpoint:
    return Checkpoint.from_api(
        {
            "id": f"ckpt-{step}",
            "object": "fine_tuning.job.checkpoint",
            "created_at": step,
            "fine_tuned_model_checkpoint": f"ft:m:org::abc:ckpt-step-{step}",
            "step_number": step,
            "metrics": {"step": step, "train_loss": 1.0 / step, "valid_loss": 2.0 / step},
            "fine_tuning_job_id": "ftjob-1",
        }
    )


class ScriptedApi:
    """Answers retrieve_job from a script of statuses (or exceptions); events appear over time."""

    def __init__(
        self,
        script: list[FineTuningJob | Exception],
        events: list[JobEvent] | None = None,
        checkpoints: list[Checkpoint] | None = None,
    ) -> None:
        self.script = list(script)
        self.events = list(events or [])  # oldest first
        self.checkpoints = checkpoints if checkpoints is not None else [checkpoint(30), checkpoint(20)]
        self.polls = 0
        self.cancelled: list[str] = []
        self.events_requests: list[str | None] = []

    def _next(self) -> FineTuningJob:
        item = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        if isinstance(item, Exception):
            raise item
        return item

    def _since(self, last_seen_id: str | None) -> list[JobEvent]:
        self.events_requests.append(last_seen_id)
        visible = self.events[: self.polls * 2]  # two new events per poll
        ids = [e.id for e in visible]
        start = ids.index(last_seen_id) + 1 if last_seen_id in ids else 0
        return visible[start:]


class FakeAsyncClient:
    def __init__(self, api: ScriptedApi) -> None:
        self.api = api

    async def retrieve_job(self, job_id: str) -> FineTuningJob:
        return self.api._next()

    async def events_since(self, job_id: str, last_seen_id: str | None) -> list[JobEvent]:
        return self.api._since(last_seen_id)

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        return list(self.api.checkpoints)

    async def cancel_job(self, job_id: str) -> FineTuningJob:
        self.api.cancelled.append(job_id)
        return job("cancelled", job_id)


class FakeHook:
    """Sync hook stand-in: the methods the operators and the sensor call."""

    def __init__(self, api: ScriptedApi | None = None, existing: list[FineTuningJob] | None = None) -> None:
        self.api = api or ScriptedApi([job("running")])
        self.existing = list(existing or [])
        self.created: list[Mapping[str, Any]] = []
        self.create_errors: list[Exception] = []
        self.list_calls: list[Mapping[str, str] | None] = []

    def retrieve_job(self, job_id: str) -> FineTuningJob:
        return self.api._next()

    def events_since(self, job_id: str, last_seen_id: str | None) -> list[JobEvent]:
        return self.api._since(last_seen_id)

    def iter_checkpoints(self, job_id: str) -> Iterator[Checkpoint]:
        return iter(self.api.checkpoints)

    def cancel_job(self, job_id: str) -> FineTuningJob:
        self.api.cancelled.append(job_id)
        return job("cancelled", job_id)

    def pause_job(self, job_id: str) -> FineTuningJob:
        return job("paused", job_id)

    def resume_job(self, job_id: str) -> FineTuningJob:
        return job("running", job_id)

    def list_jobs(
        self, after: str | None = None, limit: int | None = None, metadata: Mapping[str, str] | None = None
    ) -> ListResult[FineTuningJob]:
        self.list_calls.append(metadata)
        return ListResult(list(self.existing), False)

    def create_job(self, body: Mapping[str, Any]) -> FineTuningJob:
        self.created.append(body)
        if self.create_errors:
            raise self.create_errors.pop(0)
        created = job("validating_files", f"ftjob-new{len(self.created)}", metadata=dict(body.get("metadata") or {}))
        return created


class FakeTI:
    def __init__(self, dag_id: str = "d", run_id: str = "r", task_id: str = "t", map_index: int = -1) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = dag_id, run_id, task_id, map_index
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> Any:
        return self.xcom.get(key)


def api_error(status: int, message: str = "boom", **kw: Any) -> FineTuningApiError:
    return FineTuningApiError(message, status=status, **kw)
