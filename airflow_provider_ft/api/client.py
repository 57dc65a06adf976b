"""Typed clients over the transports: one method per API operation, no Airflow.

``FineTuningClient`` (sync) covers every operation of the spec's fine-tuning and files paths;
``AsyncFineTuningClient`` covers what a trigger needs while waiting.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from airflow_provider_ft.api import endpoints
from airflow_provider_ft.api.config import ClientConfig
from airflow_provider_ft.api.models import (
    Checkpoint,
    CheckpointPermission,
    FileObject,
    FineTuningJob,
    JobEvent,
    Page,
)
from airflow_provider_ft.api.pagination import NewerThan, aiterate, iterate
from airflow_provider_ft.api.policy import RetryPolicy
from airflow_provider_ft.api.transport import AsyncTransport, SyncTransport

T = TypeVar("T")


@dataclass(frozen=True)
class ListResult(Generic[T]):
    items: list[T]
    has_more: bool


class FineTuningClient:
    """Blocking client for workers."""

    def __init__(
        self, config: ClientConfig, policy: RetryPolicy | None = None, transport: SyncTransport | None = None
    ) -> None:
        self.config = config
        self.transport = transport or SyncTransport(config, policy)

    def __repr__(self) -> str:
        return f"FineTuningClient(base_url={self.config.base_url!r})"

    def _send(self, req: endpoints.ApiRequest) -> Any:
        return self.transport.send(req)

    # jobs
    def create_job(self, body: Mapping[str, Any]) -> FineTuningJob:
        return FineTuningJob.from_api(self._send(endpoints.create_job(body)))

    def retrieve_job(self, job_id: str) -> FineTuningJob:
        return FineTuningJob.from_api(self._send(endpoints.retrieve_job(job_id)))

    def cancel_job(self, job_id: str) -> FineTuningJob:
        return FineTuningJob.from_api(self._send(endpoints.cancel_job(job_id)))

    def pause_job(self, job_id: str) -> FineTuningJob:
        return FineTuningJob.from_api(self._send(endpoints.pause_job(job_id)))

    def resume_job(self, job_id: str) -> FineTuningJob:
        return FineTuningJob.from_api(self._send(endpoints.resume_job(job_id)))

    def list_jobs(
        self, after: str | None = None, limit: int | None = None, metadata: Mapping[str, str] | None = None
    ) -> ListResult[FineTuningJob]:
        page = Page.from_api(self._send(endpoints.list_jobs(after, limit, metadata)), "fine-tuning jobs")
        return ListResult([FineTuningJob.from_api(j) for j in page.data], page.has_more)

    def iter_jobs(self, metadata: Mapping[str, str] | None = None, page_size: int = 100) -> Iterator[FineTuningJob]:
        for item in iterate(
            self._send, lambda after: endpoints.list_jobs(after, page_size, metadata), "fine-tuning jobs"
        ):
            yield FineTuningJob.from_api(item)

    # events and checkpoints
    def list_events(self, job_id: str, after: str | None = None, limit: int | None = None) -> ListResult[JobEvent]:
        page = Page.from_api(self._send(endpoints.list_events(job_id, after, limit)), "job events")
        return ListResult([JobEvent.from_api(e) for e in page.data], page.has_more)

    def iter_events(self, job_id: str, page_size: int = 100) -> Iterator[JobEvent]:
        """All events, newest first."""
        for item in iterate(self._send, lambda after: endpoints.list_events(job_id, after, page_size), "job events"):
            yield JobEvent.from_api(item)

    def events_since(self, job_id: str, last_seen_id: str | None, page_size: int = 100) -> list[JobEvent]:
        """Events newer than ``last_seen_id`` in chronological order, fetching no page past it."""
        newer = NewerThan(last_seen_id)
        for item in iterate(self._send, lambda after: endpoints.list_events(job_id, after, page_size), "job events"):
            if not newer.take(item):
                break
        return [JobEvent.from_api(e) for e in newer.chronological()]

    def list_checkpoints(
        self, job_id: str, after: str | None = None, limit: int | None = None
    ) -> ListResult[Checkpoint]:
        page = Page.from_api(self._send(endpoints.list_checkpoints(job_id, after, limit)), "checkpoints")
        return ListResult([Checkpoint.from_api(c) for c in page.data], page.has_more)

    def iter_checkpoints(self, job_id: str, page_size: int = 100) -> Iterator[Checkpoint]:
        """All checkpoints, newest first as the API returns them."""
        for item in iterate(
            self._send, lambda after: endpoints.list_checkpoints(job_id, after, page_size), "checkpoints"
        ):
            yield Checkpoint.from_api(item)

    # checkpoint permissions
    def list_checkpoint_permissions(
        self,
        checkpoint: str,
        project_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> ListResult[CheckpointPermission]:
        req = endpoints.list_checkpoint_permissions(checkpoint, project_id, after, limit)
        page = Page.from_api(self._send(req), "checkpoint permissions")
        return ListResult([CheckpointPermission.from_api(p) for p in page.data], page.has_more)

    def create_checkpoint_permission(self, checkpoint: str, project_ids: list[str]) -> list[CheckpointPermission]:
        page = Page.from_api(
            self._send(endpoints.create_checkpoint_permission(checkpoint, project_ids)),
            "checkpoint permissions",
        )
        return [CheckpointPermission.from_api(p) for p in page.data]

    def delete_checkpoint_permission(self, checkpoint: str, permission_id: str) -> bool:
        answer = self._send(endpoints.delete_checkpoint_permission(checkpoint, permission_id))
        return bool(answer.get("deleted")) if isinstance(answer, dict) else False

    # files
    def upload_file(
        self,
        source: str | os.PathLike[str] | bytes,
        filename: str | None = None,
        purpose: str = "fine-tune",
        expires_after_seconds: int | None = None,
    ) -> FileObject:
        if isinstance(source, bytes):
            if not filename:
                raise ValueError("upload_file(bytes) needs a filename.")
            content = source
        else:
            path = Path(source)
            content = path.read_bytes()
            filename = filename or path.name
        req = endpoints.upload_file(filename, content, purpose, expires_after_seconds)
        return FileObject.from_api(self._send(req))

    def retrieve_file(self, file_id: str) -> FileObject:
        return FileObject.from_api(self._send(endpoints.retrieve_file(file_id)))

    def list_files(
        self,
        purpose: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        order: str | None = None,
    ) -> ListResult[FileObject]:
        page = Page.from_api(self._send(endpoints.list_files(purpose, after, limit, order)), "files")
        return ListResult([FileObject.from_api(f) for f in page.data], page.has_more)

    def iter_files(self, purpose: str | None = None, page_size: int = 1000) -> Iterator[FileObject]:
        for item in iterate(self._send, lambda after: endpoints.list_files(purpose, after, page_size), "files"):
            yield FileObject.from_api(item)

    def delete_file(self, file_id: str) -> bool:
        answer = self._send(endpoints.delete_file(file_id))
        return bool(answer.get("deleted")) if isinstance(answer, dict) else False

    def close(self) -> None:
        self.transport.close()


class AsyncFineTuningClient:
    """Non-blocking client for triggers: what waiting on a job needs."""

    def __init__(
        self, config: ClientConfig, policy: RetryPolicy | None = None, transport: AsyncTransport | None = None
    ) -> None:
        self.config = config
        self.transport = transport or AsyncTransport(config, policy)

    def __repr__(self) -> str:
        return f"AsyncFineTuningClient(base_url={self.config.base_url!r})"

    async def retrieve_job(self, job_id: str) -> FineTuningJob:
        return FineTuningJob.from_api(await self.transport.send(endpoints.retrieve_job(job_id)))

    async def cancel_job(self, job_id: str) -> FineTuningJob:
        return FineTuningJob.from_api(await self.transport.send(endpoints.cancel_job(job_id)))

    async def events_since(self, job_id: str, last_seen_id: str | None, page_size: int = 100) -> list[JobEvent]:
        newer = NewerThan(last_seen_id)
        async for item in aiterate(
            self.transport.send, lambda after: endpoints.list_events(job_id, after, page_size), "job events"
        ):
            if not newer.take(item):
                break
        return [JobEvent.from_api(e) for e in newer.chronological()]

    async def list_checkpoints(self, job_id: str, page_size: int = 100) -> list[Checkpoint]:
        """All checkpoints, newest first."""
        return [
            Checkpoint.from_api(c)
            async for c in aiterate(
                self.transport.send,
                lambda after: endpoints.list_checkpoints(job_id, after, page_size),
                "checkpoints",
            )
        ]
