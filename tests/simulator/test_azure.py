"""The Azure OpenAI dialect: api-key auth, the OpenAI-compatible /openai/v1 API and the dated
/openai API (201s, Azure job and file statuses, Azure's error envelope), over one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_ft.simulator import FaultPlan, FaultRule, Simulator
from airflow_provider_ft.simulator.azure import AUTH_MESSAGE
from tests.contract.openapi import validate_request, validate_response
from tests.simulator.conftest import API_KEY, START, Client, FakeClock, chat_jsonl

ROOT = Path(__file__).resolve().parents[2]
API_VERSION = "2024-10-21"
JOBS = "/fine_tuning/jobs"
MODEL = "gpt-4o-mini-2024-07-18"
AUTH_BODY = {"error": {"code": "401", "message": AUTH_MESSAGE}}


@pytest.fixture
def azure_sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(api_key=API_KEY, seconds_per_step=1.0, clock=clock, seed=0, dialect="azure") as simulator:
        yield simulator
        # Whatever either Azure API accepted must be a request OpenAI's spec allows too.
        for record in simulator.state.requests:
            if record.status in (200, 201):
                path = record.path.removeprefix("/openai")
                path = path if path.startswith("/v1/") else "/v1" + path
                query = {k: v for k, v in record.query.items() if k != "api-version"}
                validate_request(record.method, path, query, record.json, record.form)


class DatedClient:
    """The dated API: api-key header, api-version on every call, Azure's envelope on errors."""

    def __init__(self, base_url: str, api_key: str = API_KEY) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["api-key"] = api_key

    def call(
        self, method: str, path: str, *, expect: int = 200, version: str | None = API_VERSION, **kwargs: Any
    ) -> Any:
        params = dict(kwargs.pop("params", {}))
        if version is not None:
            params["api-version"] = version
        response = self.session.request(method, self.base_url + path, params=params, timeout=10, **kwargs)
        assert response.status_code == expect, response.text
        assert response.headers["x-request-id"].startswith("req_")
        uuid.UUID(response.headers["apim-request-id"])
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        if response.status_code >= 400:
            error = body["error"]
            assert set(body) == {"error"}
            assert isinstance(error["code"], str) and error["code"]
            assert isinstance(error["message"], str) and error["message"]
            assert set(error) <= {"code", "message", "param", "type"}
        return body

    def upload(self, content: bytes, *, expect: int = 201) -> Any:
        files = {"file": ("train.jsonl", content)}
        return self.call("POST", "/files", files=files, data={"purpose": "fine-tune"}, expect=expect)

    def error(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        error: dict[str, Any] = self.call(method, path, expect=status, **kwargs)["error"]
        return error


@pytest.fixture
def dated(azure_sim: Simulator) -> DatedClient:
    return DatedClient(azure_sim.azure_dated_url)


@pytest.fixture
def v1(azure_sim: Simulator) -> Client:
    # Client checks every answer against OpenAI's spec, on the path with /openai stripped.
    client = Client(azure_sim.base_url, api_key=None)
    client.session.headers["api-key"] = API_KEY
    return client


def test_urls_and_constructor(azure_sim: Simulator, sim: Simulator) -> None:
    assert azure_sim.base_url == f"http://127.0.0.1:{azure_sim.port}/openai/v1"
    assert azure_sim.azure_dated_url == f"http://127.0.0.1:{azure_sim.port}/openai"
    assert sim.dialect == "openai"
    assert sim.base_url.endswith(f":{sim.port}/v1")
    with pytest.raises(ValueError, match="dialect='azure'"):
        _ = sim.azure_dated_url
    with pytest.raises(ValueError, match="dialect must be one of"):
        Simulator(dialect="bedrock")  # type: ignore[arg-type]


def test_api_key_auth(azure_sim: Simulator) -> None:
    for url in (azure_sim.base_url + "/files", azure_sim.azure_dated_url + f"/files?api-version={API_VERSION}"):
        ok = requests.get(url, headers={"api-key": API_KEY}, timeout=5)
        assert ok.status_code == 200, ok.text
        assert ok.json()["object"] == "list"
        uuid.UUID(ok.headers["apim-request-id"])
        refused = [
            {"api-key": "sk-wrong-0123456789abcdef"},
            {},
            {"Authorization": f"Bearer {API_KEY}"},  # the OpenAI way is not Azure's
            {"Authorization": f"Bearer {API_KEY}", "api-key": API_KEY},
        ]
        for headers in refused:
            response = requests.get(url, headers=headers, timeout=5)
            assert response.status_code == 401, headers
            assert response.json() == AUTH_BODY
            assert response.headers["x-request-id"].startswith("req_")
            uuid.UUID(response.headers["apim-request-id"])
    # Admin endpoints take the api-key header in this dialect.
    admin = requests.get(azure_sim.url + "/__simulator__/faults", headers={"api-key": API_KEY}, timeout=5)
    assert admin.status_code == 200
    assert requests.get(azure_sim.url + "/__simulator__/faults", timeout=5).status_code == 401


def test_dated_lifecycle(dated: DatedClient, clock: FakeClock, azure_sim: Simulator) -> None:
    upload = dated.upload(chat_jsonl(10))
    file_id = upload["id"]
    assert upload["status"] == "pending"
    assert upload["object"] == "file" and upload["purpose"] == "fine-tune"
    clock.advance(1)
    assert dated.call("GET", f"/files/{file_id}")["status"] == "pending"
    assert [f["status"] for f in dated.call("GET", "/files")["data"]] == ["pending"]
    clock.advance(1)  # two steps' worth of processing
    assert dated.call("GET", f"/files/{file_id}")["status"] == "processed"

    job = dated.call("POST", JOBS, json={"model": MODEL, "training_file": file_id, "suffix": "az"}, expect=201)
    assert job["object"] == "fine_tuning.job"
    job_id = job["id"]
    seen = [job["status"]]
    for _ in range(36):
        status = dated.call("GET", f"{JOBS}/{job_id}")["status"]
        if status != seen[-1]:
            seen.append(status)
        clock.advance(1)
    assert seen == ["created", "pending", "running", "succeeded"]

    done = dated.call("GET", f"{JOBS}/{job_id}")
    assert done["finished_at"] == int(START) + 2 + 34
    assert done["fine_tuned_model"].startswith(f"ft:{MODEL}:simulator:az:")
    assert [j["status"] for j in dated.call("GET", JOBS)["data"]] == ["succeeded"]
    [result_id] = done["result_files"]
    assert dated.call("GET", f"/files/{result_id}")["status"] == "processed"
    events = dated.call("GET", f"{JOBS}/{job_id}/events", params={"limit": 100})["data"]
    assert events[0]["message"] == "The job has successfully completed"
    checkpoints = dated.call("GET", f"{JOBS}/{job_id}/checkpoints")["data"]
    assert [c["step_number"] for c in checkpoints] == [30, 20, 10]
    # Cancel and delete answer 200, not 201.
    error = dated.error("POST", f"{JOBS}/{job_id}/cancel", 400)
    assert error["code"] == "unexpectedEntityState"
    assert dated.call("DELETE", f"/files/{file_id}") == {"object": "file", "id": file_id, "deleted": True}


def test_dated_pause_cancel_and_bad_file(dated: DatedClient, clock: FakeClock) -> None:
    bad = dated.upload(b'{"not": "a chat example"}\n')
    assert bad["status"] == "pending" and "status_details" not in bad
    clock.advance(2)
    errored = dated.call("GET", f"/files/{bad['id']}")
    assert errored["status"] == "error"
    assert errored["status_details"]

    file_id = dated.upload(chat_jsonl(10))["id"]
    job_id = dated.call("POST", JOBS, json={"model": MODEL, "training_file": file_id}, expect=201)["id"]
    clock.advance(2)
    assert dated.call("GET", f"{JOBS}/{job_id}")["status"] == "pending"
    assert dated.call("POST", f"{JOBS}/{job_id}/pause")["status"] == "paused"
    assert dated.call("POST", f"{JOBS}/{job_id}/resume")["status"] == "pending"
    assert dated.call("POST", f"{JOBS}/{job_id}/cancel")["status"] == "cancelled"


def test_api_version_required(dated: DatedClient, azure_sim: Simulator) -> None:
    for version in (None, ""):
        error = dated.error("GET", JOBS, 400, version=version)
        assert error["code"] == "invalidPayload"
        assert "api-version" in error["message"] and "required" in error["message"]
        assert error["param"] == "api-version"
    assert azure_sim.state.requests[-1].status == 400
    # The v1 API takes none.
    assert requests.get(azure_sim.base_url + JOBS, headers={"api-key": API_KEY}, timeout=5).status_code == 200


def test_dated_error_envelope(dated: DatedClient, azure_sim: Simulator) -> None:
    missing = dated.error("GET", "/files/file-nope", 404)
    assert missing == {"code": "notFound", "message": "No such File object: file-nope", "param": "file_id"}
    assert dated.error("GET", "/models", 404) == {"code": "404", "message": "Resource not found"}
    checkpoint = "/fine_tuning/checkpoints/ft:x/permissions"  # not part of the dated API
    assert dated.error("GET", checkpoint, 404)["code"] == "404"
    invalid = dated.error("POST", JOBS, 400, json={"model": MODEL})
    assert invalid["code"] == "invalidPayload" and invalid["param"] == "training_file"
    bad_json = dated.error("POST", JOBS, 400, data=b"{", headers={"Content-Type": "application/json"})
    assert bad_json["code"] == "invalidPayload"
    assert set(bad_json) == {"code", "message"}
    # Fault rules name /v1 paths and reach the dated API's requests too.
    azure_sim.set_faults(
        FaultPlan(
            rate_limit=FaultRule(count=1, paths=("GET /v1/fine_tuning/jobs",), seconds=2),
            server_error=FaultRule(count=1, paths=("GET /v1/files",), status=500),
        )
    )
    response = dated.session.get(dated.base_url + JOBS, params={"api-version": API_VERSION}, timeout=5)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "429"
    assert response.headers["retry-after-ms"] == "2000"
    assert dated.error("GET", "/files", 500)["code"] == "internalFailure"
    assert azure_sim.state.requests[-1].fault == "server_error"


def test_v1_behaves_like_openai(v1: Client, dated: DatedClient, clock: FakeClock, azure_sim: Simulator) -> None:
    upload = v1.upload(chat_jsonl(10))
    assert upload["status"] == "processed"  # no pending phase in the v1 API
    job = v1.post(JOBS, json={"model": MODEL, "training_file": upload["id"]})
    assert job["status"] == "validating_files"
    # One store: the dated API sees the same job and file in its own words.
    assert dated.call("GET", f"{JOBS}/{job['id']}")["status"] == "created"
    assert dated.call("GET", f"/files/{upload['id']}")["status"] == "pending"
    clock.advance(2)
    assert v1.get(f"{JOBS}/{job['id']}")["status"] == "queued"
    clock.advance(2)
    assert v1.get(f"{JOBS}/{job['id']}")["status"] == "running"
    assert v1.get(JOBS)["data"][0]["id"] == job["id"]
    v1.get(f"{JOBS}/{job['id']}/events")
    v1.get(f"{JOBS}/{job['id']}/checkpoints")
    assert v1.post(f"{JOBS}/{job['id']}/cancel")["status"] == "cancelled"
    # OpenAI's error envelope and codes, not Azure's.
    error = v1.error("GET", "/files/file-nope", 404)
    assert error == {
        "message": "No such File object: file-nope",
        "type": "invalid_request_error",
        "param": "file_id",
        "code": "file_not_found",
    }
    assert v1.error("GET", "/models", 404)["message"] == "Invalid URL (GET /openai/v1/models)"
    assert v1.error("POST", f"{JOBS}/{job['id']}/cancel", 400)["code"] == "job_already_ended"


def test_prefixes_per_dialect(azure_sim: Simulator, sim: Simulator) -> None:
    plain = requests.get(azure_sim.url + "/v1/files", headers={"api-key": API_KEY}, timeout=5)
    assert plain.status_code == 404
    assert plain.json() == {"error": {"code": "404", "message": "Resource not found"}}
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    for path in ("/openai/v1/files", f"/openai/files?api-version={API_VERSION}"):
        response = requests.get(sim.url + path, headers=bearer, timeout=5)
        assert response.status_code == 404
        body = response.json()
        validate_response("GET", path, 404, body)
        assert body["error"]["code"] == "unknown_url"
        assert "apim-request-id" not in response.headers


def test_recorded_headers_redacted(azure_sim: Simulator, v1: Client, dated: DatedClient) -> None:
    v1.get("/files")
    dated.call("GET", "/files")
    requests.get(azure_sim.base_url + "/files", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    records = azure_sim.state.requests.snapshot()
    assert [r.path for r in records] == ["/openai/v1/files", "/openai/files", "/openai/v1/files"]
    assert [r.status for r in records] == [200, 200, 401]
    assert records[0].headers["api-key"] == "***"
    assert records[1].headers["api-key"] == "***"
    assert records[1].query == {"api-version": [API_VERSION]}
    assert records[2].headers["authorization"] == "Bearer ***"
    assert all(API_KEY not in str(r.headers) for r in records)


def test_cli_dialect_azure() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_ft.simulator", "--port", "0", "--dialect", "azure", "--api-key", "k1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("FT_SIMULATOR_URL=http://127.0.0.1:")
        assert line.endswith("/openai/v1\n")
        url = line.strip().split("=", 1)[1]
        assert requests.get(url + "/files", headers={"api-key": "k1"}, timeout=5).status_code == 200
        dated_url = url.removesuffix("/v1") + f"/fine_tuning/jobs?api-version={API_VERSION}"
        assert requests.get(dated_url, headers={"api-key": "k1"}, timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == ""
