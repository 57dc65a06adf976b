"""Typed views of the API's objects.

Each model keeps the whole JSON object in ``raw`` so fields added by the API later are not lost, and
reads the documented fields with clear errors when a required one is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow_provider_ft.api.errors import ResponseFormatError


class JobStatus(StrEnum):
    """Job status. Unknown values are kept (as pseudo-members), never rejected."""

    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    # Not in the spec's enum, but the real API returns it after POST .../pause.
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def _missing_(cls, value: object) -> JobStatus | None:
        if not isinstance(value, str) or not value:
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_known(self) -> bool:
        return self.value in JobStatus._value2member_map_


# Azure OpenAI's dated API names two early statuses differently.
STATUS_ALIASES = {"created": "validating_files", "pending": "queued", "notRunning": "queued"}

TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


def _require(obj: dict[str, Any], key: str, kind: str) -> Any:
    if key not in obj:
        ident = obj.get("id", "?")
        raise ResponseFormatError(
            f"the API returned a {kind} ({ident}) without the required field {key!r}; "
            "is the connection's base URL pointing at an OpenAI-compatible fine-tuning API?",
            operation=f"reading a {kind}",
        )
    return obj[key]


def _expect_object(value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseFormatError(
            f"expected a {kind} object, got {type(value).__name__}", operation=f"reading a {kind}"
        )
    return value


@dataclass(frozen=True)
class JobError:
    code: str | None
    message: str
    param: str | None

    @classmethod
    def from_api(cls, obj: dict[str, Any] | None) -> JobError | None:
        if not obj:
            return None
        return cls(code=obj.get("code"), message=str(obj.get("message") or "no message"), param=obj.get("param"))

    def describe(self) -> str:
        text = self.message
        extras = [f"code={self.code}"] if self.code else []
        if self.param:
            extras.append(f"param={self.param}")
        return f"{text} ({', '.join(extras)})" if extras else text


@dataclass(frozen=True)
class FineTuningJob:
    id: str
    status: JobStatus
    model: str
    created_at: int
    training_file: str
    validation_file: str | None
    fine_tuned_model: str | None
    finished_at: int | None
    trained_tokens: int | None
    result_files: list[str]
    error: JobError | None
    estimated_finish: int | None
    metadata: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, value: Any) -> FineTuningJob:
        obj = _expect_object(value, "fine-tuning job")
        kind = "fine-tuning job"
        status_raw = _require(obj, "status", kind)
        if not isinstance(status_raw, str) or not status_raw:
            raise ResponseFormatError(
                f"job {obj.get('id')} has an invalid status {status_raw!r}",
                operation="reading a fine-tuning job",
            )
        return cls(
            id=str(_require(obj, "id", kind)),
            status=JobStatus(STATUS_ALIASES.get(status_raw, status_raw)),
            model=str(_require(obj, "model", kind)),
            created_at=int(_require(obj, "created_at", kind)),
            training_file=str(_require(obj, "training_file", kind)),
            validation_file=obj.get("validation_file"),
            fine_tuned_model=obj.get("fine_tuned_model"),
            finished_at=obj.get("finished_at"),
            trained_tokens=obj.get("trained_tokens"),
            result_files=list(obj.get("result_files") or []),
            error=JobError.from_api(obj.get("error")),
            estimated_finish=obj.get("estimated_finish"),
            metadata=dict(obj.get("metadata") or {}),
            raw=obj,
        )


@dataclass(frozen=True)
class JobEvent:
    id: str
    created_at: int
    level: str
    message: str
    type: str | None
    data: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, value: Any) -> JobEvent:
        obj = _expect_object(value, "job event")
        return cls(
            id=str(_require(obj, "id", "job event")),
            created_at=int(_require(obj, "created_at", "job event")),
            level=str(obj.get("level") or "info"),
            message=str(obj.get("message") or ""),
            type=obj.get("type"),
            data=dict(obj.get("data") or {}),
            raw=obj,
        )


@dataclass(frozen=True)
class Checkpoint:
    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    step_number: int
    metrics: dict[str, float]
    fine_tuning_job_id: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, value: Any) -> Checkpoint:
        obj = _expect_object(value, "checkpoint")
        kind = "checkpoint"
        return cls(
            id=str(_require(obj, "id", kind)),
            created_at=int(_require(obj, "created_at", kind)),
            fine_tuned_model_checkpoint=str(_require(obj, "fine_tuned_model_checkpoint", kind)),
            step_number=int(_require(obj, "step_number", kind)),
            metrics=dict(obj.get("metrics") or {}),
            fine_tuning_job_id=str(obj.get("fine_tuning_job_id") or ""),
            raw=obj,
        )

    def to_xcom(self) -> dict[str, Any]:
        """JSON-safe summary pushed to XCom."""
        return {
            "id": self.id,
            "step_number": self.step_number,
            "fine_tuned_model_checkpoint": self.fine_tuned_model_checkpoint,
            "metrics": self.metrics,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class FileObject:
    id: str
    filename: str
    bytes: int
    purpose: str
    status: str | None
    status_details: str | None
    created_at: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, value: Any) -> FileObject:
        obj = _expect_object(value, "file")
        kind = "file"
        return cls(
            id=str(_require(obj, "id", kind)),
            filename=str(obj.get("filename") or ""),
            bytes=int(obj.get("bytes") or 0),
            purpose=str(obj.get("purpose") or ""),
            status=obj.get("status"),
            status_details=obj.get("status_details"),
            created_at=int(obj.get("created_at") or 0),
            raw=obj,
        )


@dataclass(frozen=True)
class CheckpointPermission:
    id: str
    project_id: str
    created_at: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, value: Any) -> CheckpointPermission:
        obj = _expect_object(value, "checkpoint permission")
        kind = "checkpoint permission"
        return cls(
            id=str(_require(obj, "id", kind)),
            project_id=str(_require(obj, "project_id", kind)),
            created_at=int(_require(obj, "created_at", kind)),
            raw=obj,
        )


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: ``data`` plus the cursor fields."""

    data: list[dict[str, Any]]
    has_more: bool

    @classmethod
    def from_api(cls, value: Any, kind: str) -> Page:
        obj = _expect_object(value, f"list of {kind}")
        data = _require(obj, "data", f"list of {kind}")
        if not isinstance(data, list):
            raise ResponseFormatError(f"the list of {kind} has a non-list 'data' field", operation=f"listing {kind}")
        return cls(data=data, has_more=bool(obj.get("has_more", False)))

    @property
    def last_id(self) -> str | None:
        if not self.data:
            return None
        last = self.data[-1]
        return str(last.get("id")) if isinstance(last, dict) and last.get("id") else None
