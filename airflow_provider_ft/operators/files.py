"""``UploadFineTuningFileOperator``: check training data locally, upload it, wait until processed."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_ft import DEFAULT_CONN_ID
from airflow_provider_ft._compat import BaseOperator, Context
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.hook_access import UsesFineTuningHook

if TYPE_CHECKING:
    from airflow_provider_ft.api.models import FileObject


def read_source(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    """(file name, content) from a local path or any ``ObjectStoragePath`` URI (s3://, gs://, file://)."""
    text = os.fspath(path) if not hasattr(path, "read_bytes") or isinstance(path, str) else None
    if text is not None and "://" not in text:
        from pathlib import Path

        local = Path(text)
        if not local.is_file():
            raise FileNotFoundError(f"training data file {text!r} does not exist (relative to {os.getcwd()})")
        return local.name, local.read_bytes()
    if text is not None:
        from airflow_provider_ft._compat import object_storage_path

        path = object_storage_path(text)
    name = getattr(path, "name", None) or os.path.basename(str(path))
    return name, path.read_bytes()  # type: ignore[union-attr]


class UploadFineTuningFileOperator(UsesFineTuningHook, BaseOperator):  # type: ignore[misc]
    """Upload a JSONL file for fine-tuning and return its file id.

    The file is checked first as the service would check it (JSON per line, the chat, completion or
    preference format, valid roles, enough examples); a problem fails the task naming the file,
    the line and the field, and nothing is uploaded. Then the operator waits until the service has
    ``processed`` the file and fails with the service's reason on ``error``.

    :param file_path: Local path, or a URI that ``ObjectStoragePath`` reads (``s3://bucket/train.jsonl``)
        (templated).
    :param conn_id: Airflow connection id (templated).
    :param purpose: Upload purpose (default ``fine-tune``).
    :param method: Fine-tuning method the data is for (``supervised``, ``dpo``, ``reinforcement``);
        selects the format checked.
    :param validate: Check the data before uploading (default True).
    :param min_examples: Fewest examples accepted by the check (the service requires 10).
    :param processing_timeout: Seconds to wait for the file to be processed.
    :param poll_interval: Seconds between processing checks.
    """

    template_fields: Sequence[str] = ("file_path", "conn_id", "purpose", "method")
    ui_color = "#e3dcc4"

    def __init__(
        self,
        *,
        file_path: str | os.PathLike[str],
        conn_id: str = DEFAULT_CONN_ID,
        purpose: str = "fine-tune",
        method: str = "supervised",
        validate: bool = True,
        min_examples: int = 10,
        processing_timeout: float = 600.0,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.file_path = file_path
        self.conn_id = conn_id
        self.purpose = purpose
        self.method = method
        self.validate = validate
        self.min_examples = min_examples
        self.processing_timeout = processing_timeout
        self.poll_interval = poll_interval
        self.uploaded_file_id: str | None = None

    def execute(self, context: Context) -> str:
        name, content = read_source(self.file_path)
        if self.validate:
            from airflow_provider_ft.validation import validate_jsonl

            report = validate_jsonl(
                content, source=str(self.file_path), method=self.method, min_examples=self.min_examples
            )
            report.raise_for_issues()
            self.log.info("%s", report.summary())
        uploaded = self.upload(name, content)
        self.log.info("Uploaded %s as %s (%d bytes)", self.file_path, uploaded.id, uploaded.bytes)
        processed = self.wait_until_processed(uploaded)
        self.uploaded_file_id = processed.id
        return processed.id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the uploaded file (the local or object-storage source is this task's input)."""
        from airflow_provider_ft.lineage import operator_lineage

        lineage = operator_lineage()
        if lineage is None or not self.uploaded_file_id:
            return lineage
        from airflow.providers.common.compat.openlineage.facet import Dataset

        from airflow_provider_ft.lineage import NAMESPACE, file_dataset_name

        lineage.outputs.append(Dataset(namespace=NAMESPACE, name=file_dataset_name(self.uploaded_file_id)))
        return lineage

    def upload(self, name: str, content: bytes) -> FileObject:
        hook = self.hook()
        started = time.time()
        try:
            return hook.upload_file(content, filename=name, purpose=self.purpose)
        except FineTuningApiError as err:
            if not err.maybe_committed:
                raise
            # The upload may have been stored although no answer came back: adopt it, don't upload twice.
            self.log.warning("No answer to the upload (%s); looking for the file before retrying", err)
            for candidate in hook.list_files(purpose=self.purpose, limit=100).items:
                if (
                    candidate.filename == name
                    and candidate.bytes == len(content)
                    and candidate.created_at >= int(started) - 5
                ):
                    self.log.info("The upload went through: %s", candidate.id)
                    return candidate
            return hook.upload_file(content, filename=name, purpose=self.purpose)

    def wait_until_processed(self, file: FileObject) -> FileObject:
        deadline = time.monotonic() + self.processing_timeout
        while True:
            if file.status == "error":
                reason = file.status_details or "no details"
                raise FineTuningApiError(
                    f"the service rejected {self.file_path} ({file.id}): {reason}",
                    operation=f"processing file {file.id}",
                )
            if file.status in (None, "processed"):  # None: APIs that no longer report the status
                return file
            if time.monotonic() >= deadline:
                raise FineTuningApiError(
                    f"file {file.id} was still {file.status!r} after {self.processing_timeout:g}s",
                    operation=f"processing file {file.id}",
                )
            time.sleep(self.poll_interval)
            file = self.hook().retrieve_file(file.id)
