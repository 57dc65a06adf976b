"""POST/GET/DELETE /v1/files."""

from __future__ import annotations

import pytest

from airflow_provider_ft.simulator import Simulator
from tests.simulator.conftest import START, Client, FakeClock, chat_jsonl


def test_valid_training_file_is_processed(client: Client, sim: Simulator) -> None:
    content = chat_jsonl(12)
    body = client.upload(content)
    assert body["object"] == "file"
    assert body["id"].startswith("file-")
    assert body["status"] == "processed"
    assert body["purpose"] == "fine-tune"
    assert body["filename"] == "train.jsonl"
    assert body["bytes"] == len(content)
    assert body["created_at"] == int(START)
    assert "status_details" not in body
    assert sim.state.files[body["id"]].examples == 12


def test_invalid_training_file_is_error_with_reason(client: Client) -> None:
    lines = chat_jsonl(11).decode().splitlines()
    lines[6] = '{"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "x"}]}'
    body = client.upload(("\n".join(lines) + "\n").encode())
    assert body["status"] == "error"
    assert "train.jsonl line 7, field messages[0].role: 'bot' is not a valid role" in (body["status_details"])
    assert client.get(f"/files/{body['id']}")["status_details"] == body["status_details"]


def test_too_few_examples_is_error(client: Client) -> None:
    body = client.upload(chat_jsonl(3))
    assert body["status"] == "error"
    assert "has 3 examples; fine-tuning needs at least 10" in body["status_details"]


def test_other_purposes_are_not_validated(client: Client) -> None:
    body = client.upload(b"%PDF-1.4 binary", filename="doc.pdf", purpose="assistants")
    assert body["status"] == "processed"
    assert body["purpose"] == "assistants"


@pytest.mark.parametrize(
    ("files", "data", "param"),
    [
        ({"file": ("t.jsonl", b"{}")}, {}, "purpose"),
        (None, {"purpose": "fine-tune"}, "file"),
        ({"file": ("t.jsonl", b"{}")}, {"purpose": "training"}, "purpose"),
        ({"file": ("t.csv", b"a,b")}, {"purpose": "fine-tune"}, "file"),
        (
            {"file": ("t.jsonl", b"{}")},
            {"purpose": "batch", "expires_after[anchor]": "created_at"},
            "expires_after.seconds",
        ),
        (
            {"file": ("t.jsonl", b"{}")},
            {"purpose": "batch", "expires_after[anchor]": "now", "expires_after[seconds]": "3600"},
            "expires_after.anchor",
        ),
        (
            {"file": ("t.jsonl", b"{}")},
            {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
            "expires_after.seconds",
        ),
        ({"file": ("t.jsonl", b"{}")}, {"purpose": "batch", "colour": "red"}, "colour"),
    ],
)
def test_upload_validation_errors(
    client: Client, files: dict[str, tuple[str, bytes]] | None, data: dict[str, str], param: str
) -> None:
    # requests only sends multipart when a file is given, so "no file" sends purpose as a part.
    kwargs = {"files": files, "data": data} if files else {"files": {"purpose": (None, "fine-tune")}}
    error = client.error("POST", "/files", 400, **kwargs)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_json_upload_is_rejected(client: Client) -> None:
    error = client.error("POST", "/files", 400, json={"purpose": "fine-tune"})
    assert "multipart/form-data" in error["message"]


def test_expires_after_sets_expires_at(client: Client) -> None:
    body = client.post(
        "/files",
        files={"file": ("b.jsonl", b"{}")},
        data={"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "7200"},
    )
    assert body["expires_at"] == int(START) + 7200


def test_list_get_delete(client: Client, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        ids.append(client.upload(chat_jsonl(10), filename=f"f{i}.jsonl")["id"])
        clock.advance(1)
    client.upload(b"data", filename="a.txt", purpose="assistants")
    page = client.get("/files", params={"purpose": "fine-tune", "limit": 2})
    assert [f["id"] for f in page["data"]] == [ids[4], ids[3]]
    assert page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (ids[4], ids[3])
    page = client.get("/files", params={"purpose": "fine-tune", "limit": 2, "after": ids[3]})
    assert [f["id"] for f in page["data"]] == [ids[2], ids[1]]
    page = client.get("/files", params={"purpose": "fine-tune", "after": ids[1]})
    assert [f["id"] for f in page["data"]] == [ids[0]]
    assert page["has_more"] is False
    ascending = client.get("/files", params={"order": "asc"})
    assert [f["id"] for f in ascending["data"]][:5] == ids
    assert len(ascending["data"]) == 6

    assert client.get(f"/files/{ids[0]}")["filename"] == "f0.jsonl"
    assert client.delete(f"/files/{ids[0]}") == {"object": "file", "id": ids[0], "deleted": True}
    error = client.error("GET", f"/files/{ids[0]}", 404)
    assert ids[0] in error["message"]
    assert error["code"] == "file_not_found"
    assert client.error("DELETE", "/files/file-nope", 404)["param"] == "file_id"


def test_empty_list_and_bad_query(client: Client) -> None:
    page = client.get("/files")
    assert page == {"object": "list", "data": [], "first_id": "", "last_id": "", "has_more": False}
    assert client.error("GET", "/files", 400, params={"order": "sideways"})["param"] == "order"
    assert client.error("GET", "/files", 400, params={"limit": "many"})["param"] == "limit"
    assert client.error("GET", "/files", 400, params={"after": "file-nope"})["param"] == "after"
