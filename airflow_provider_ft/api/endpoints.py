"""One function per API operation: each builds an ``ApiRequest`` and sends nothing.

Paths and parameter names follow the OpenAPI spec (operationIds in the docstrings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class UploadPart:
    """The file part of a multipart upload."""

    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/jsonl"


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str  # relative to the base URL, starting with "/"
    operation: str  # human name used in errors and logs, e.g. "retrieve fine-tuning job ftjob-1"
    params: tuple[tuple[str, str], ...] = ()
    json: Mapping[str, Any] | None = None
    form: tuple[tuple[str, str], ...] = ()
    upload: UploadPart | None = None
    # Creating calls are not idempotent: the retry policy will not resend them after an ambiguous failure.
    idempotent: bool = True
    resource: str | None = None  # what a 404 means, e.g. "fine-tuning job ftjob-1"


def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"The {what} is empty: pass a non-empty id (if it is templated, check that the upstream "
            "task pushed it to XCom)."
        )
    if value != value.strip():
        raise ValueError(f"The {what} {value!r} has leading or trailing white space.")
    return quote(value, safe="")


def _page_params(after: str | None, limit: int | None, max_limit: int = 100) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if after:
        params.append(("after", after))
    if limit is not None:
        if not 1 <= limit <= max_limit:
            raise ValueError(f"limit must be between 1 and {max_limit}, got {limit}.")
        params.append(("limit", str(limit)))
    return params


# --- fine-tuning jobs -----------------------------------------------------------------------------


def create_job(body: Mapping[str, Any]) -> ApiRequest:
    """createFineTuningJob: POST /fine_tuning/jobs."""
    return ApiRequest("POST", "/fine_tuning/jobs", "create fine-tuning job", json=dict(body), idempotent=False)


def list_jobs(
    after: str | None = None, limit: int | None = None, metadata: Mapping[str, str] | None = None
) -> ApiRequest:
    """listPaginatedFineTuningJobs: GET /fine_tuning/jobs (newest first; metadata as a deep object)."""
    params = _page_params(after, limit)
    for key, value in (metadata or {}).items():
        params.append((f"metadata[{key}]", str(value)))
    return ApiRequest("GET", "/fine_tuning/jobs", "list fine-tuning jobs", params=tuple(params))


def retrieve_job(job_id: str) -> ApiRequest:
    """retrieveFineTuningJob: GET /fine_tuning/jobs/{id}."""
    path_id = _id(job_id, "fine-tuning job id")
    return ApiRequest(
        "GET",
        f"/fine_tuning/jobs/{path_id}",
        f"retrieve fine-tuning job {job_id}",
        resource=f"fine-tuning job {job_id}",
    )


def _job_action(job_id: str, action: str) -> ApiRequest:
    path_id = _id(job_id, "fine-tuning job id")
    # Cancel/pause/resume are idempotent in effect: repeating one cannot create anything.
    return ApiRequest(
        "POST",
        f"/fine_tuning/jobs/{path_id}/{action}",
        f"{action} fine-tuning job {job_id}",
        resource=f"fine-tuning job {job_id}",
    )


def cancel_job(job_id: str) -> ApiRequest:
    """cancelFineTuningJob: POST /fine_tuning/jobs/{id}/cancel."""
    return _job_action(job_id, "cancel")


def pause_job(job_id: str) -> ApiRequest:
    """pauseFineTuningJob: POST /fine_tuning/jobs/{id}/pause."""
    return _job_action(job_id, "pause")


def resume_job(job_id: str) -> ApiRequest:
    """resumeFineTuningJob: POST /fine_tuning/jobs/{id}/resume."""
    return _job_action(job_id, "resume")


def list_events(job_id: str, after: str | None = None, limit: int | None = None) -> ApiRequest:
    """listFineTuningEvents: GET /fine_tuning/jobs/{id}/events (newest first)."""
    path_id = _id(job_id, "fine-tuning job id")
    return ApiRequest(
        "GET",
        f"/fine_tuning/jobs/{path_id}/events",
        f"list events of fine-tuning job {job_id}",
        params=tuple(_page_params(after, limit)),
        resource=f"fine-tuning job {job_id}",
    )


def list_checkpoints(job_id: str, after: str | None = None, limit: int | None = None) -> ApiRequest:
    """listFineTuningJobCheckpoints: GET /fine_tuning/jobs/{id}/checkpoints (newest first)."""
    path_id = _id(job_id, "fine-tuning job id")
    return ApiRequest(
        "GET",
        f"/fine_tuning/jobs/{path_id}/checkpoints",
        f"list checkpoints of fine-tuning job {job_id}",
        params=tuple(_page_params(after, limit)),
        resource=f"fine-tuning job {job_id}",
    )


# --- checkpoint permissions -----------------------------------------------------------------------


def list_checkpoint_permissions(
    checkpoint: str,
    project_id: str | None = None,
    after: str | None = None,
    limit: int | None = None,
    order: str | None = None,
) -> ApiRequest:
    """listFineTuningCheckpointPermissions: GET /fine_tuning/checkpoints/{ckpt}/permissions."""
    path_id = _id(checkpoint, "fine-tuned model checkpoint")
    params = _page_params(after, limit)
    if project_id:
        params.append(("project_id", project_id))
    if order:
        if order not in ("ascending", "descending"):
            raise ValueError(f"order must be 'ascending' or 'descending', got {order!r}.")
        params.append(("order", order))
    return ApiRequest(
        "GET",
        f"/fine_tuning/checkpoints/{path_id}/permissions",
        f"list permissions of checkpoint {checkpoint}",
        params=tuple(params),
        resource=f"checkpoint {checkpoint}",
    )


def create_checkpoint_permission(checkpoint: str, project_ids: list[str]) -> ApiRequest:
    """createFineTuningCheckpointPermission: POST /fine_tuning/checkpoints/{ckpt}/permissions."""
    path_id = _id(checkpoint, "fine-tuned model checkpoint")
    if not project_ids:
        raise ValueError("project_ids must name at least one project.")
    # Granting the same project twice changes nothing, so a resend is harmless.
    return ApiRequest(
        "POST",
        f"/fine_tuning/checkpoints/{path_id}/permissions",
        f"grant checkpoint {checkpoint} to projects",
        json={"project_ids": list(project_ids)},
        resource=f"checkpoint {checkpoint}",
    )


def delete_checkpoint_permission(checkpoint: str, permission_id: str) -> ApiRequest:
    """deleteFineTuningCheckpointPermission: DELETE /fine_tuning/checkpoints/{ckpt}/permissions/{id}."""
    path_ckpt = _id(checkpoint, "fine-tuned model checkpoint")
    path_perm = _id(permission_id, "permission id")
    return ApiRequest(
        "DELETE",
        f"/fine_tuning/checkpoints/{path_ckpt}/permissions/{path_perm}",
        f"delete permission {permission_id} of checkpoint {checkpoint}",
        resource=f"permission {permission_id} of checkpoint {checkpoint}",
    )


# --- files ----------------------------------------------------------------------------------------


def upload_file(
    filename: str, content: bytes, purpose: str = "fine-tune", expires_after_seconds: int | None = None
) -> ApiRequest:
    """createFile: POST /files (multipart/form-data)."""
    if not filename:
        raise ValueError("The upload needs a file name.")
    form: list[tuple[str, str]] = [("purpose", purpose)]
    if expires_after_seconds is not None:
        form += [
            ("expires_after[anchor]", "created_at"),
            ("expires_after[seconds]", str(expires_after_seconds)),
        ]
    return ApiRequest(
        "POST",
        "/files",
        f"upload file {filename}",
        form=tuple(form),
        upload=UploadPart(filename=filename, content=content),
        idempotent=False,
    )


def list_files(
    purpose: str | None = None, after: str | None = None, limit: int | None = None, order: str | None = None
) -> ApiRequest:
    """listFiles: GET /files."""
    params = _page_params(after, limit, max_limit=10_000)
    if purpose:
        params.append(("purpose", purpose))
    if order:
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}.")
        params.append(("order", order))
    return ApiRequest("GET", "/files", "list files", params=tuple(params))


def retrieve_file(file_id: str) -> ApiRequest:
    """retrieveFile: GET /files/{id}."""
    path_id = _id(file_id, "file id")
    return ApiRequest("GET", f"/files/{path_id}", f"retrieve file {file_id}", resource=f"file {file_id}")


def delete_file(file_id: str) -> ApiRequest:
    """deleteFile: DELETE /files/{id}."""
    path_id = _id(file_id, "file id")
    return ApiRequest("DELETE", f"/files/{path_id}", f"delete file {file_id}", resource=f"file {file_id}")
