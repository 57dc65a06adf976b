"""Fault injection (FaultPlan) and the admin endpoints outside /v1."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_ft.simulator import FaultPlan, FaultRule, Simulator
from tests.simulator.conftest import API_KEY, Client, chat_jsonl

ADMIN = {"Authorization": f"Bearer {API_KEY}"}


def test_targeted_rate_limit_with_retry_headers(client: Client, sim: Simulator) -> None:
    sim.set_faults(FaultPlan(rate_limit=FaultRule(count=2, paths=("GET /v1/fine_tuning/jobs",), seconds=1.5)))
    for _ in range(2):
        error = client.error("GET", "/fine_tuning/jobs", 429)
        assert error["code"] == "rate_limit_exceeded"
        assert client.last is not None
        assert client.last.headers["retry-after-ms"] == "1500"
        assert client.last.headers["Retry-After"] == "2"
    client.get("/files")  # other routes are untouched
    client.get("/fine_tuning/jobs")  # the count is spent
    assert [r.fault for r in sim.state.requests] == ["rate_limit", "rate_limit", None, None]
    assert [r.status for r in sim.state.requests] == [429, 429, 200, 200]


def test_server_errors_via_admin_endpoint(client: Client, sim: Simulator) -> None:
    plan = {"server_error": {"count": 1, "status": 503, "paths": ["GET /v1/fine_tuning/jobs/{id}"]}}
    response = requests.put(sim.url + "/__simulator__/faults", json=plan, headers=ADMIN, timeout=5)
    assert response.status_code == 200
    assert response.json()["server_error"]["count"] == 1
    error = client.error("GET", "/fine_tuning/jobs/ftjob-any", 503)
    assert error["type"] == "server_error"
    assert client.error("GET", "/fine_tuning/jobs/ftjob-any", 404)["param"] == "fine_tuning_job_id"
    current = requests.get(sim.url + "/__simulator__/faults", headers=ADMIN, timeout=5).json()
    assert current["server_error"]["count"] == 0


def test_lost_response_still_commits_the_job(client: Client, sim: Simulator, training_file: str) -> None:
    sim.set_faults(FaultPlan.from_dict({"lost_response": {"paths": ["POST /v1/fine_tuning/jobs"], "count": 1}}))
    body = {"model": "gpt-4o-mini", "training_file": training_file, "metadata": {"attempt": "1"}}
    with pytest.raises(requests.ConnectionError):
        client.session.post(client.base_url + "/fine_tuning/jobs", json=body, timeout=5)
    jobs = client.get("/fine_tuning/jobs", params={"metadata[attempt]": "1"})["data"]
    assert len(jobs) == 1  # committed although the client never saw the answer
    assert sim.state.requests[-2].fault == "lost_response"
    assert client.post("/fine_tuning/jobs", json=body)["id"] != jobs[0]["id"]


def test_lost_upload_by_default_paths(client: Client, sim: Simulator) -> None:
    sim.set_faults(FaultPlan(lost_response=FaultRule(count=1)))
    client.get("/files")  # GETs are not in the default lost-response paths
    with pytest.raises(requests.ConnectionError):
        client.session.post(
            client.base_url + "/files",
            files={"file": ("t.jsonl", chat_jsonl())},
            data={"purpose": "fine-tune"},
            timeout=5,
        )
    assert len(client.get("/files")["data"]) == 1


def test_connection_reset(client: Client, sim: Simulator) -> None:
    sim.set_faults(FaultPlan(reset=FaultRule(count=1, paths=("/v1/files",))))
    with pytest.raises(requests.ConnectionError):
        client.session.get(client.base_url + "/files", timeout=5)
    assert sim.state.requests[-1].fault == "reset"
    client.get("/files")


def test_slow_answer(client: Client, sim: Simulator) -> None:
    sim.set_faults(FaultPlan(slow=FaultRule(count=1, seconds=0.3)))
    started = time.monotonic()
    client.get("/files")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.get("/files")
    assert time.monotonic() - started < 0.3


def test_seeded_shares_replay(client: Client, sim: Simulator) -> None:
    plan = FaultPlan(seed=3, rate_limit=FaultRule(share=0.3, seconds=0.01), server_error=FaultRule(share=0.2))

    def statuses() -> list[int]:
        sim.set_faults(plan)
        seen = []
        for _ in range(30):
            client.call("GET", "/files", expect=None)
            assert client.last is not None
            seen.append(client.last.status_code)
        return seen

    first = statuses()
    assert first == statuses()
    assert {200, 429} <= set(first)
    assert set(first) <= {200, 429, 500, 502, 503}


def test_faults_at_construction_and_admin_is_never_faulted() -> None:
    plan = FaultPlan(server_error=FaultRule(share=1.0, status=500))
    with Simulator(api_key=API_KEY, faults=plan, seed=1) as sim:
        client = Client(sim.base_url)
        assert client.error("GET", "/files", 500)["type"] == "server_error"
        assert requests.get(sim.url + "/__simulator__/faults", headers=ADMIN, timeout=5).status_code == 200
        assert requests.post(sim.url + "/__simulator__/reset", headers=ADMIN, timeout=5).json() == {"reset": True}
        client.get("/files")  # reset cleared the faults
    assert plan.server_error is not None and plan.server_error.share == 1.0  # caller's plan untouched


def test_admin_auth_validation_reset_and_fail(client: Client, sim: Simulator, training_file: str) -> None:
    assert requests.get(sim.url + "/__simulator__/faults", timeout=5).status_code == 401
    bad = requests.put(sim.url + "/__simulator__/faults", json={"meteor": 1}, headers=ADMIN, timeout=5)
    assert bad.status_code == 400 and "meteor" in bad.json()["error"]["message"]
    bad = requests.put(sim.url + "/__simulator__/faults", json={"rate_limit": 2}, headers=ADMIN, timeout=5)
    assert bad.status_code == 400
    job_id = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": training_file})["id"]
    failed = requests.post(
        sim.url + f"/__simulator__/jobs/{job_id}/fail",
        json={"code": "boom", "message": "Boom."},
        headers=ADMIN,
        timeout=5,
    ).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "boom"
    assert requests.post(sim.url + "/__simulator__/reset", headers=ADMIN, timeout=5).status_code == 200
    assert sim.state.jobs == {} and sim.state.files == {} and len(sim.state.requests) == 0
    assert requests.get(sim.url + "/__simulator__/nope", headers=ADMIN, timeout=5).status_code == 404


def test_fault_plan_round_trip_and_validation() -> None:
    plan = FaultPlan.from_dict(
        {"seed": 5, "rate_limit": 0.25, "lost_response": {"paths": ["POST /v1/files"], "count": 2}}
    )
    assert plan.rate_limit == FaultRule(share=0.25)
    assert FaultPlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(ValueError, match="share"):
        FaultRule(share=1.5)
    with pytest.raises(ValueError, match="5xx"):
        FaultRule(status=404)
    with pytest.raises(ValueError, match="unknown fault rule field"):
        FaultPlan.from_dict({"slow": {"delay": 1}})
