"""In-memory store behind the simulator: files, jobs, checkpoint permissions, recorded requests.

One re-entrant lock guards everything; each public method takes it once, so the HTTP threads
see a consistent store. Methods return API-shaped dicts or raise ApiError.
"""

from __future__ import annotations

import heapq
import os
import random
import re
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_ft.simulator.errors import ApiError, invalid, not_found
from airflow_provider_ft.simulator.jobspec import COMPLETION_MODELS, parse_create_job
from airflow_provider_ft.simulator.lifecycle import TERMINAL, JobRecord

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
OUTCOME_KEY = "simulator_outcome"  # metadata key: value "fail" makes the job fail mid-run
FILE_PROCESSING_STEPS = 2  # steps' worth of time an upload reads "pending" in Azure's dated API
_ALNUM = string.ascii_letters + string.digits
_MAX_RECORDED = 10_000


@dataclass
class FileRecord:
    id: str
    serial: int
    created: float
    filename: str
    purpose: str
    bytes: int
    status: str
    status_details: str | None = None
    expires_at: int | None = None
    examples: int = 0
    tokens: int = 0
    format: str | None = None
    ready_at: float = 0.0  # until then Azure's dated API reports the upload as "pending"

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "file",
            "id": self.id,
            "bytes": self.bytes,
            "created_at": int(self.created),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
        }
        if self.expires_at is not None:
            body["expires_at"] = self.expires_at
        if self.status_details is not None:
            body["status_details"] = self.status_details
        return body


@dataclass
class PermissionRecord:
    id: str
    serial: int
    created: float
    project_id: str
    checkpoint: str

    def to_api(self) -> dict[str, Any]:
        return {
            "object": "checkpoint.permission",
            "id": self.id,
            "created_at": int(self.created),
            "project_id": self.project_id,
        }


@dataclass
class RecordedRequest:
    """One request as the simulator received it (Authorization and api-key redacted, no file bytes)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] | None = None  # multipart text fields; `file` holds the filename
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> filename, bytes
    status: int | None = None  # filled in once answered
    fault: str | None = None  # the injected fault, if any
    time: float = 0.0


class RequestLog:
    """Thread-safe, bounded list of RecordedRequest (oldest dropped first)."""

    def __init__(self, maxlen: int = _MAX_RECORDED) -> None:
        self._lock = threading.Lock()
        self._items: deque[RecordedRequest] = deque(maxlen=maxlen)

    def append(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __getitem__(self, index: int) -> RecordedRequest:
        with self._lock:
            return self._items[index]

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.snapshot())


def _page(items: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], bool]:
    return items[:limit], len(items) > limit


class SimulatorState:
    """The store. ``clock`` returns unix seconds; job lifecycles are computed from it."""

    def __init__(
        self,
        *,
        seconds_per_step: float = 0.05,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
        organization: str = "org-simulator",
        max_recorded_requests: int = _MAX_RECORDED,
    ) -> None:
        if seconds_per_step <= 0:
            raise ValueError("seconds_per_step must be positive")
        self.seconds_per_step = seconds_per_step
        self.clock: Callable[[], float] = clock or time.time
        self.organization = organization
        self.lock = threading.RLock()
        self.requests = RequestLog(max_recorded_requests)
        self._seed = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
        self.files: dict[str, FileRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.permissions: dict[str, PermissionRecord] = {}
        self.reset()

    def reset(self) -> None:
        """Forget everything (ids restart from the seed)."""
        with self.lock:
            self._rng = random.Random(self._seed)
            self._serial = 0
            self.files.clear()
            self.jobs.clear()
            self.permissions.clear()
            self._models: dict[str, str] = {}  # fine-tuned model name -> job id
            self._pending: list[tuple[float, int, str]] = []  # (end wall, serial, job id)
            self.requests.clear()

    # ---- helpers ------------------------------------------------------------------------
    def now(self) -> float:
        return float(self.clock())

    def _token(self, n: int) -> str:
        return "".join(self._rng.choice(_ALNUM) for _ in range(n))

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    @property
    def org_slug(self) -> str:
        slug = self.organization.removeprefix("org-").lower()
        return re.sub(r"[^a-z0-9]+", "-", slug).strip("-") or "org"

    def _materialize(self, now: float) -> None:
        """Create result files for jobs that have succeeded by ``now`` (lazily, in end order)."""
        while self._pending and self._pending[0][0] <= now:
            _, _, job_id = heapq.heappop(self._pending)
            job = self.jobs.get(job_id)
            if job is None or job.result_materialized:
                continue
            status = job.status(now)
            if status == "succeeded":
                job.result_materialized = True
                self.files[job.result_file_id] = FileRecord(
                    id=job.result_file_id,
                    serial=self._next_serial(),
                    created=float(job.finished_at(now) or now),  # same second as the job's finished_at
                    filename="step_metrics.csv",
                    purpose="fine-tune-results",
                    bytes=job.metrics_csv_size(),
                    status="processed",
                )
            elif status not in TERMINAL and status != "paused":
                # Its end moved (a pause shifted it): look again then. Paused jobs are
                # re-queued by resume.
                heapq.heappush(self._pending, (job.natural_end_wall(), job.serial, job.id))

    def _schedule(self, job: JobRecord) -> None:
        if job.natural_end()[1] == "succeeded":
            heapq.heappush(self._pending, (job.natural_end_wall(), job.serial, job.id))

    # ---- files --------------------------------------------------------------------------
    def create_file(
        self,
        *,
        filename: str,
        content: bytes,
        purpose: str,
        expires_after: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if purpose not in FILE_PURPOSES:
            raise invalid(
                f"Invalid value for 'purpose': expected one of {', '.join(FILE_PURPOSES)}, but got {purpose!r}.",
                "purpose",
                "invalid_value",
            )
        if purpose == "fine-tune" and not filename.lower().endswith(".jsonl"):
            raise invalid(
                f"Invalid file format for Fine-Tuning API. Must be .jsonl (got {filename!r}).",
                "file",
                "invalid_file_format",
            )
        expires = None
        if expires_after is not None:
            if expires_after.get("anchor") != "created_at":
                raise invalid(
                    "Invalid value for 'expires_after.anchor': expected 'created_at'.",
                    "expires_after.anchor",
                    "invalid_value",
                )
            seconds = expires_after.get("seconds")
            if not isinstance(seconds, int) or not 3600 <= seconds <= 2592000:
                raise invalid(
                    "Invalid value for 'expires_after.seconds': expected an integer between 3600 and 2592000.",
                    "expires_after.seconds",
                    "invalid_value",
                )
            expires = seconds
        record = FileRecord(
            id="",
            serial=0,
            created=0.0,
            filename=filename,
            purpose=purpose,
            bytes=len(content),
            status="processed",
        )
        if purpose == "fine-tune":
            # Imported here so the simulator package stays cheap to import.
            from airflow_provider_ft.validation import validate_jsonl

            report = validate_jsonl(content, source=filename, method="auto")
            record.examples, record.tokens, record.format = (
                report.examples,
                report.estimated_tokens,
                report.format,
            )
            if not report.ok:
                record.status, record.status_details = "error", report.summary(limit=3)
        with self.lock:
            now = self.now()
            record.id = f"file-{self._token(22)}"
            record.serial, record.created = self._next_serial(), now
            record.ready_at = now + FILE_PROCESSING_STEPS * self.seconds_per_step
            if expires is not None:
                record.expires_at = int(now) + expires
            self.files[record.id] = record
            return record.to_api()

    def _file(self, file_id: str, param: str = "file_id") -> FileRecord:
        record = self.files.get(file_id)
        if record is None:
            raise not_found(f"No such File object: {file_id}", param, "file_not_found")
        return record

    def get_file(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            self._materialize(self.now())
            return self._file(file_id).to_api()

    def file_processing(self, file_id: str) -> bool:
        """Whether an upload is still being processed (Azure's dated API shows it "pending")."""
        with self.lock:
            record = self.files.get(file_id)
            return record is not None and self.now() + 1e-6 < record.ready_at

    def delete_file(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            self._materialize(self.now())
            self._file(file_id)
            del self.files[file_id]
            return {"object": "file", "id": file_id, "deleted": True}

    def list_files(self, *, purpose: str | None, limit: int, order: str, after: str | None) -> dict[str, Any]:
        with self.lock:
            self._materialize(self.now())
            records = sorted(self.files.values(), key=lambda f: (f.created, f.serial), reverse=order == "desc")
            if after is not None:
                position = [r.id for r in records].index(after) if after in self.files else -1
                if position < 0:
                    raise invalid(f"Invalid 'after': no file with id '{after}'.", "after")
                records = records[position + 1 :]
            if purpose is not None:
                records = [r for r in records if r.purpose == purpose]
            data, has_more = _page([r.to_api() for r in records[: limit + 1]], limit)
            # The spec types first_id/last_id as (non-null) strings; an empty page gets "".
            return {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else "",
                "last_id": data[-1]["id"] if data else "",
                "has_more": has_more,
            }

    # ---- jobs ---------------------------------------------------------------------------
    def _job(self, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found(f"Fine-tuning job {job_id} not found.", "fine_tuning_job_id", "fine_tuning_job_not_found")
        return job

    def _training_input(self, file_id: str | None, param: str) -> FileRecord | None:
        if file_id is None:
            return None
        record = self.files.get(file_id)
        if record is None:
            raise not_found(
                f"Could not find {param.replace('_', ' ')} {file_id}: no such File object.",
                param,
                "file_not_found",
            )
        if record.purpose != "fine-tune":
            raise invalid(
                f"File {file_id} has purpose '{record.purpose}'; {param} must be a "
                "file uploaded with purpose 'fine-tune'.",
                param,
                "invalid_file_purpose",
            )
        return record

    def create_job(self, body: object) -> dict[str, Any]:
        from airflow_provider_ft.validation import formats_for_method

        spec = parse_create_job(body)
        with self.lock:
            now = self.now()
            training = self._training_input(spec.training_file, "training_file")
            validation = self._training_input(spec.validation_file, "validation_file")
            assert training is not None
            job_id = f"ftjob-{self._token(24)}"
            model_id = self._token(8)
            file_error = None
            for record, param in ((training, "training_file"), (validation, "validation_file")):
                if record is None or file_error is not None:
                    continue
                reason = record.status_details if record.status == "error" else None
                if reason is None and record.format not in formats_for_method(spec.method_type):
                    reason = (
                        f"{record.id} has {record.format} examples, but method "
                        f"'{spec.method_type}' needs "
                        f"{' or '.join(formats_for_method(spec.method_type))} examples"
                    )
                if reason is None and record.format == "completion" and (spec.base_model not in COMPLETION_MODELS):
                    reason = (
                        f"{record.id} has prompt/completion examples, but {spec.model} "
                        "is a chat model and needs chat-format examples ('messages')"
                    )
                if reason is None and record.format == "chat" and (spec.base_model in COMPLETION_MODELS):
                    reason = f"{record.id} has chat examples, but {spec.model} needs prompt/completion examples"
                if reason is not None:
                    file_error = {"code": f"invalid_{param}", "message": reason, "param": param}
            suffix = spec.suffix or ""
            job = JobRecord(
                id=job_id,
                serial=self._next_serial(),
                created=now,
                spec=spec,
                organization_id=self.organization,
                seed=spec.seed if spec.seed is not None else self._rng.randrange(2**31),
                seconds_per_step=self.seconds_per_step,
                n_examples=training.examples,
                tokens_per_epoch=max(training.tokens, 1),
                fine_tuned_model_name=f"ft:{spec.base_model}:{self.org_slug}:{suffix}:{model_id}",
                result_file_id=f"file-{self._token(22)}",
                token=self._token(16),
                rng_seed=f"{self._seed}:{job_id}",
                file_error=file_error,
            )
            if (spec.metadata or {}).get(OUTCOME_KEY) == "fail" and file_error is None:
                job.fail_step = max(1, job.total_steps // 2)
            self.jobs[job_id] = job
            self._models[job.fine_tuned_model_name] = job_id
            self._schedule(job)
            return job.to_api(now)

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._materialize(now)
            return self._job(job_id).to_api(now)

    def job_status(self, job_id: str) -> str:
        with self.lock:
            return self._job(job_id).status(self.now())

    def list_jobs(self, *, after: str | None, limit: int, metadata: dict[str, str] | None) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            self._materialize(now)
            jobs = sorted(self.jobs.values(), key=lambda j: (j.created, j.serial), reverse=True)
            if after is not None:
                cursor = self.jobs.get(after)
                if cursor is None:
                    raise invalid(f"Invalid 'after': no fine-tuning job with id '{after}'.", "after")
                jobs = jobs[jobs.index(cursor) + 1 :]
            if metadata:
                jobs = [
                    j
                    for j in jobs
                    if j.spec.metadata is not None and all(j.spec.metadata.get(k) == v for k, v in metadata.items())
                ]
            data, has_more = _page([j.to_api(now) for j in jobs[: limit + 1]], limit)
            return {"object": "list", "data": data, "has_more": has_more}

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            job = self._job(job_id)
            status = job.status(now)
            if status in TERMINAL:
                raise invalid(
                    f"Fine-tuning job {job_id} has already ended with status '{status}' and cannot be cancelled.",
                    None,
                    "job_already_ended",
                )
            job.cancel(now)
            return job.to_api(now)

    def pause_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            job = self._job(job_id)
            status = job.status(now)
            if status not in ("running", "queued"):
                raise invalid(
                    f"Fine-tuning job {job_id} cannot be paused while it is "
                    f"'{status}'; only queued or running jobs can be paused.",
                    None,
                    "invalid_job_state",
                )
            job.pause(now)
            return job.to_api(now)

    def resume_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            job = self._job(job_id)
            status = job.status(now)
            if status != "paused":
                raise invalid(
                    f"Fine-tuning job {job_id} cannot be resumed while it is "
                    f"'{status}'; only paused jobs can be resumed.",
                    None,
                    "invalid_job_state",
                )
            job.resume(now)
            self._schedule(job)
            return job.to_api(now)

    def fail_job(
        self,
        job_id: str,
        code: str = "server_error",
        message: str = "The job failed due to an internal server error.",
        param: str | None = None,
    ) -> dict[str, Any]:
        """Test hook: fail a job that has not ended yet, now."""
        with self.lock:
            now = self.now()
            job = self._job(job_id)
            status = job.status(now)
            if status in TERMINAL:
                raise invalid(
                    f"Fine-tuning job {job_id} has already ended with status '{status}'.",
                    None,
                    "job_already_ended",
                )
            job.fail(now, code, message, param)
            return job.to_api(now)

    def list_events(self, job_id: str, *, after: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id)
            events = job.events(self.now())
            events.reverse()
            if after is not None:
                if not after.startswith(f"ft-event-{job.token}"):
                    raise invalid(f"Invalid 'after': {after} is not an event of job {job_id}.", "after")
                # Ids sort like their events, so "older than the cursor" is a string compare.
                events = [e for e in events if e["id"] < after]
            data, has_more = _page(events, limit)
            return {"object": "list", "data": data, "has_more": has_more}

    def list_checkpoints(self, job_id: str, *, after: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            checkpoints = self._job(job_id).checkpoints(self.now())
            checkpoints.reverse()
            if after is not None:
                ids = [c["id"] for c in checkpoints]
                if after not in ids:
                    raise invalid(f"Invalid 'after': no checkpoint with id '{after}' in job {job_id}.", "after")
                checkpoints = checkpoints[ids.index(after) + 1 :]
            data, has_more = _page(checkpoints, limit)
            return {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }

    # ---- checkpoint permissions ---------------------------------------------------------
    def _checkpoint(self, name: str) -> None:
        model = re.sub(r":ckpt-step-\d+$", "", name)
        job_id = self._models.get(model)
        if job_id is not None:
            names = {c["fine_tuned_model_checkpoint"] for c in self.jobs[job_id].checkpoints(self.now())}
            if name in names:
                return
        raise not_found(
            f"Fine-tuned model checkpoint {name} not found.", "fine_tuned_model_checkpoint", "model_not_found"
        )

    def list_permissions(
        self,
        checkpoint: str,
        *,
        project_id: str | None,
        after: str | None,
        limit: int,
        order: str,
    ) -> dict[str, Any]:
        with self.lock:
            self._checkpoint(checkpoint)
            perms = sorted(
                (p for p in self.permissions.values() if p.checkpoint == checkpoint),
                key=lambda p: (p.created, p.serial),
                reverse=order == "descending",
            )
            if after is not None:
                ids = [p.id for p in perms]
                if after not in ids:
                    raise invalid(f"Invalid 'after': no permission with id '{after}'.", "after")
                perms = perms[ids.index(after) + 1 :]
            if project_id is not None:
                perms = [p for p in perms if p.project_id == project_id]
            data, has_more = _page([p.to_api() for p in perms[: limit + 1]], limit)
            return {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }

    def create_permissions(self, checkpoint: str, body: object) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object.", None, "invalid_body")
        for key in body:
            if key != "project_ids":
                raise invalid(f"Unrecognized request argument supplied: {key}", key, "unknown_parameter")
        project_ids = body.get("project_ids")
        if (
            not isinstance(project_ids, list)
            or not project_ids
            or not all(isinstance(p, str) and p for p in project_ids)
        ):
            raise invalid(
                "Invalid 'project_ids': expected a non-empty array of project ids.",
                "project_ids",
                "invalid_value",
            )
        with self.lock:
            self._checkpoint(checkpoint)
            now = self.now()
            created = []
            for project in project_ids:
                perm = PermissionRecord(
                    id=f"cp_{self._token(24)}",
                    serial=self._next_serial(),
                    created=now,
                    project_id=project,
                    checkpoint=checkpoint,
                )
                self.permissions[perm.id] = perm
                created.append(perm.to_api())
            return {
                "object": "list",
                "data": created,
                "first_id": created[0]["id"],
                "last_id": created[-1]["id"],
                "has_more": False,
            }

    def delete_permission(self, checkpoint: str, permission_id: str) -> dict[str, Any]:
        with self.lock:
            self._checkpoint(checkpoint)
            perm = self.permissions.get(permission_id)
            if perm is None or perm.checkpoint != checkpoint:
                raise not_found(
                    f"Permission {permission_id} not found for checkpoint {checkpoint}.",
                    "permission_id",
                    "permission_not_found",
                )
            del self.permissions[permission_id]
            return {"object": "checkpoint.permission", "id": permission_id, "deleted": True}


__all__ = [
    "ApiError",
    "FileRecord",
    "PermissionRecord",
    "RecordedRequest",
    "RequestLog",
    "SimulatorState",
]
