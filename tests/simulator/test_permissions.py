"""Checkpoint permissions: /v1/fine_tuning/checkpoints/{checkpoint}/permissions."""

from __future__ import annotations

from urllib.parse import quote

from tests.simulator.conftest import Client, FakeClock


def _finished_checkpoints(client: Client, training_file: str, clock: FakeClock) -> list[str]:
    job = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": training_file})
    clock.advance(100)
    data = client.get(f"/fine_tuning/jobs/{job['id']}/checkpoints")["data"]
    return [c["fine_tuned_model_checkpoint"] for c in data]


def test_permission_crud(client: Client, training_file: str, clock: FakeClock) -> None:
    final, middle, _ = _finished_checkpoints(client, training_file, clock)
    path = f"/fine_tuning/checkpoints/{quote(middle, safe='')}/permissions"
    assert client.get(path) == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    created = client.post(path, json={"project_ids": ["proj_a", "proj_b"]})
    assert [p["project_id"] for p in created["data"]] == ["proj_a", "proj_b"]
    assert all(p["id"].startswith("cp_") and p["object"] == "checkpoint.permission" for p in created["data"])
    clock.advance(5)
    later = client.post(path, json={"project_ids": ["proj_c"]})["data"][0]

    listed = client.get(path)
    assert [p["project_id"] for p in listed["data"]] == ["proj_c", "proj_b", "proj_a"]  # newest first
    ascending = client.get(path, params={"order": "ascending", "limit": 1})
    assert ascending["data"][0]["project_id"] == "proj_a" and ascending["has_more"] is True
    assert [p["id"] for p in client.get(path, params={"project_id": "proj_b"})["data"]] == [created["data"][1]["id"]]
    # Permissions belong to one checkpoint.
    assert client.get(f"/fine_tuning/checkpoints/{quote(final, safe='')}/permissions")["data"] == []

    deleted = client.delete(f"{path}/{later['id']}")
    assert deleted == {"object": "checkpoint.permission", "id": later["id"], "deleted": True}
    assert client.error("DELETE", f"{path}/{later['id']}", 404)["param"] == "permission_id"
    assert len(client.get(path)["data"]) == 2


def test_permission_errors(client: Client, training_file: str, clock: FakeClock) -> None:
    final = _finished_checkpoints(client, training_file, clock)[0]
    path = f"/fine_tuning/checkpoints/{final}/permissions"  # unquoted colons work too
    assert client.error("POST", path, 400, json={"project_ids": []})["param"] == "project_ids"
    assert client.error("POST", path, 400, json={"project_ids": ["p"], "x": 1})["param"] == "x"
    missing = "ft:gpt-4o-mini-2024-07-18:simulator::AAAAAAAA"
    error = client.error("GET", f"/fine_tuning/checkpoints/{missing}/permissions", 404)
    assert missing in error["message"]
    assert (
        client.error("POST", f"/fine_tuning/checkpoints/{missing}/permissions", 404, json={"project_ids": ["p"]})[
            "param"
        ]
        == "fine_tuned_model_checkpoint"
    )
