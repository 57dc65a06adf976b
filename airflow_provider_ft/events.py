"""What a finished wait reports, shared by the trigger (producer) and the tasks (consumers).

The payload is plain JSON so it can cross the triggerer/worker boundary. ``parse_wait_result``
validates what comes back in ``execute_complete``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_ft.api.models import Checkpoint, FineTuningJob, JobEvent

# Outcomes of a wait: the three terminal job statuses, plus the wait's own endings.
WAIT_OUTCOMES = frozenset({"succeeded", "failed", "cancelled", "timeout", "error"})


@dataclass(frozen=True)
class WaitResult:
    outcome: str
    job_id: str
    message: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    result_files: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    last_event_id: str | None = None
    status_code: int | None = None  # HTTP status of an "error" outcome

    def to_payload(self) -> dict[str, Any]:
        return {
            "status": self.outcome,
            "job_id": self.job_id,
            "message": self.message,
            "fine_tuned_model": self.fine_tuned_model,
            "trained_tokens": self.trained_tokens,
            "result_files": list(self.result_files),
            "error": self.error,
            "checkpoints": list(self.checkpoints),
            "last_event_id": self.last_event_id,
            "status_code": self.status_code,
        }


def result_from_job(job: FineTuningJob, checkpoints: list[Checkpoint], last_event_id: str | None) -> WaitResult:
    """The result for a job that reached a terminal status."""
    outcome = job.status.value
    if outcome == "succeeded":
        message = f"Fine-tuning job {job.id} succeeded: {job.fine_tuned_model}"
    elif outcome == "failed":
        reason = job.error.describe() if job.error else "no error details"
        message = f"Fine-tuning job {job.id} failed: {reason}"
    else:
        message = f"Fine-tuning job {job.id} was cancelled"
    return WaitResult(
        outcome=outcome,
        job_id=job.id,
        message=message,
        fine_tuned_model=job.fine_tuned_model,
        trained_tokens=job.trained_tokens,
        result_files=list(job.result_files),
        error=({"code": job.error.code, "message": job.error.message, "param": job.error.param} if job.error else None),
        checkpoints=[c.to_xcom() for c in checkpoints],
        last_event_id=last_event_id,
    )


def parse_wait_result(event: Any, expected_job_id: str) -> WaitResult:
    """Validate a trigger event payload; raises ValueError naming what is wrong."""
    if not isinstance(event, dict):
        raise ValueError(f"expected the trigger to send a dict, got {type(event).__name__}")
    outcome = event.get("status")
    if outcome not in WAIT_OUTCOMES:
        raise ValueError(f"unknown wait outcome {outcome!r} (expected one of {sorted(WAIT_OUTCOMES)})")
    job_id = event.get("job_id")
    if job_id != expected_job_id:
        raise ValueError(f"the event is for job {job_id!r}, but this task waits for {expected_job_id!r}")
    if outcome == "succeeded" and not event.get("fine_tuned_model"):
        raise ValueError(f"job {job_id} succeeded but the event names no fine_tuned_model")
    checkpoints = event.get("checkpoints") or []
    if not isinstance(checkpoints, list) or not all(isinstance(c, dict) for c in checkpoints):
        raise ValueError("the event's checkpoints are not a list of objects")
    return WaitResult(
        outcome=outcome,
        job_id=job_id,
        message=str(event.get("message") or ""),
        fine_tuned_model=event.get("fine_tuned_model"),
        trained_tokens=event.get("trained_tokens"),
        result_files=list(event.get("result_files") or []),
        error=event.get("error"),
        checkpoints=checkpoints,
        last_event_id=event.get("last_event_id"),
        status_code=event.get("status_code"),
    )


def describe_event(event: JobEvent) -> str:
    """One log line per job event; metrics events get their numbers spelled out."""
    if event.type == "metrics" and event.data:
        data = event.data
        parts = (
            [f"step {data['step']}" + (f"/{data['total_steps']}" if data.get("total_steps") else "")]
            if ("step" in data)
            else []
        )
        for key in (
            "train_loss",
            "valid_loss",
            "full_valid_loss",
            "train_mean_token_accuracy",
            "valid_mean_token_accuracy",
        ):
            value = data.get(key)
            if isinstance(value, int | float):
                parts.append(f"{key}={value:.4f}")
        if parts:
            return "metrics: " + ", ".join(parts)
    return f"[{event.level}] {event.message}"
