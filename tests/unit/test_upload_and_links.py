"""The upload operator (validation before upload, ObjectStoragePath sources) and the extra link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.api.models import FileObject
from airflow_provider_ft.links import FineTuningJobLink, job_url
from airflow_provider_ft.operators.files import UploadFineTuningFileOperator, read_source
from airflow_provider_ft.validation import TrainingDataError

GOOD = (
    "\n".join(
        json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]})
        for i in range(10)
    )
    + "\n"
)


def _file(status: str, details: str | None = None) -> FileObject:
    return FileObject.from_api(
        {
            "id": "file-1",
            "object": "file",
            "bytes": 10,
            "created_at": 1,
            "filename": "train.jsonl",
            "purpose": "fine-tune",
            "status": status,
            "status_details": details,
        }
    )


class UploadHook:
    def __init__(self, statuses: list[FileObject]) -> None:
        self.statuses = statuses
        self.uploads: list[tuple[str, bytes]] = []

    def upload_file(self, content: bytes, filename: str, purpose: str) -> FileObject:
        self.uploads.append((filename, content))
        return self.statuses.pop(0)

    def retrieve_file(self, file_id: str) -> FileObject:
        return self.statuses.pop(0)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> UploadHook:
    fake = UploadHook([_file("processed")])
    monkeypatch.setattr(UploadFineTuningFileOperator, "hook", lambda self: fake)
    monkeypatch.setattr("time.sleep", lambda s: None)
    return fake


def _op(path: Any, **kw: Any) -> UploadFineTuningFileOperator:
    return UploadFineTuningFileOperator(task_id="upload", file_path=path, **kw)


def test_valid_file_is_uploaded(tmp_path: Path, hook: UploadHook) -> None:
    (tmp_path / "train.jsonl").write_text(GOOD)
    assert _op(tmp_path / "train.jsonl").execute({}) == "file-1"
    assert hook.uploads == [("train.jsonl", GOOD.encode())]


def test_invalid_file_names_file_line_and_field_and_uploads_nothing(tmp_path: Path, hook: UploadHook) -> None:
    bad = GOOD.replace('"role": "user", "content": "q3"', '"role": "bot", "content": "q3"')
    (tmp_path / "train.jsonl").write_text(bad)
    with pytest.raises(TrainingDataError) as info:
        _op(str(tmp_path / "train.jsonl")).execute({})
    text = str(info.value)
    assert f"{tmp_path / 'train.jsonl'} line 4" in text
    assert "messages[0].role" in text
    assert hook.uploads == []


def test_missing_file_is_a_clear_error(tmp_path: Path, hook: UploadHook) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        _op(str(tmp_path / "nope.jsonl")).execute({})


def test_object_storage_uri_is_read(tmp_path: Path, hook: UploadHook) -> None:
    (tmp_path / "remote.jsonl").write_text(GOOD)
    name, content = read_source(f"file://{tmp_path / 'remote.jsonl'}")
    assert (name, content) == ("remote.jsonl", GOOD.encode())
    assert _op(f"file://{tmp_path / 'remote.jsonl'}").execute({}) == "file-1"


def test_waits_for_processing_and_fails_on_error(tmp_path: Path, hook: UploadHook) -> None:
    (tmp_path / "train.jsonl").write_text(GOOD)
    hook.statuses = [_file("uploaded"), _file("uploaded"), _file("processed")]
    assert _op(tmp_path / "train.jsonl").execute({}) == "file-1"
    hook.statuses = [_file("uploaded"), _file("error", "line 2: no assistant message")]
    with pytest.raises(FineTuningApiError, match="line 2: no assistant message"):
        _op(tmp_path / "train.jsonl").execute({})


def test_link_points_at_the_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_ft import links

    monkeypatch.setattr(links.XCom, "get_value", staticmethod(lambda ti_key, key: "ftjob-abc"))
    assert FineTuningJobLink().get_link(None, ti_key=object()) == "https://platform.openai.com/finetune/ftjob-abc"
    monkeypatch.setattr(links.XCom, "get_value", staticmethod(lambda ti_key, key: None))
    assert FineTuningJobLink().get_link(None, ti_key=object()) == ""
    assert job_url("x") == "https://platform.openai.com/finetune/x"
