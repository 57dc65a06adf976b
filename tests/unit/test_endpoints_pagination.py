from __future__ import annotations

import pytest

from airflow_provider_ft.api import endpoints
from airflow_provider_ft.api.errors import ResponseFormatError
from airflow_provider_ft.api.models import JobStatus
from airflow_provider_ft.api.pagination import NewerThan, iterate


def test_list_jobs_sends_metadata_as_deep_object() -> None:
    req = endpoints.list_jobs(after="ftjob-1", limit=5, metadata={"dag_id": "d", "run_id": "r"})
    assert req.params == (
        ("after", "ftjob-1"),
        ("limit", "5"),
        ("metadata[dag_id]", "d"),
        ("metadata[run_id]", "r"),
    )


@pytest.mark.parametrize("bad", ["", "  "])
def test_empty_ids_are_rejected_clearly(bad: str) -> None:
    with pytest.raises(ValueError, match="fine-tuning job id is empty"):
        endpoints.retrieve_job(bad)


def test_ids_are_path_quoted() -> None:
    assert endpoints.retrieve_job("a/b").path == "/fine_tuning/jobs/a%2Fb"


def test_create_and_upload_are_not_idempotent() -> None:
    assert not endpoints.create_job({"model": "m", "training_file": "f"}).idempotent
    assert not endpoints.upload_file("t.jsonl", b"{}").idempotent
    assert endpoints.cancel_job("j").idempotent


def test_limit_bounds() -> None:
    with pytest.raises(ValueError, match="limit"):
        endpoints.list_events("j", limit=0)


def _pages(items: list[str], size: int) -> dict[str | None, dict[str, object]]:
    pages: dict[str | None, dict[str, object]] = {}
    cursor = None
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        pages[cursor] = {
            "object": "list",
            "data": [{"id": i} for i in chunk],
            "has_more": start + size < len(items),
        }
        cursor = chunk[-1]
    return pages


def test_iterate_walks_all_pages_in_order() -> None:
    items = [f"e{i}" for i in range(10, 0, -1)]
    pages = _pages(items, 3)
    sent: list[str | None] = []

    def send(req: endpoints.ApiRequest) -> object:
        after = dict(req.params).get("after")
        sent.append(after)
        return pages[after]

    got = [x["id"] for x in iterate(send, lambda after: endpoints.list_events("j", after, 3), "events")]
    assert got == items
    assert sent == [None, "e8", "e5", "e2"]


def test_iterate_refuses_a_cursor_that_does_not_advance() -> None:
    def send(req: endpoints.ApiRequest) -> object:
        return {"data": [{"id": "same"}], "has_more": True}

    with pytest.raises(ResponseFormatError, match="did not advance"):
        list(iterate(send, lambda after: endpoints.list_events("j", after or "same"), "events"))


def test_newer_than_stops_at_last_seen_and_returns_oldest_first() -> None:
    newer = NewerThan("e3")
    taken = [newer.take({"id": i}) for i in ["e6", "e5", "e4", "e3"]]
    assert taken == [True, True, True, False]
    assert [e["id"] for e in newer.chronological()] == ["e4", "e5", "e6"]


def test_unknown_status_is_kept_not_rejected() -> None:
    status = JobStatus("some_future_status")
    assert status.value == "some_future_status" and not status.is_terminal and not status.is_known
    assert JobStatus("paused") is JobStatus.PAUSED and JobStatus.PAUSED.is_known
    assert JobStatus("succeeded").is_terminal
