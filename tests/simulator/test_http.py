"""Auth, the error envelope, routing, request recording, keep-alive and concurrency."""

from __future__ import annotations

import json
import socket
import time

import requests

from airflow_provider_ft.simulator import Simulator
from tests.simulator.conftest import API_KEY, Client


def test_missing_key_is_401_envelope(sim: Simulator) -> None:
    error = Client(sim.base_url, api_key=None).error("GET", "/fine_tuning/jobs", 401)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    assert "didn't provide an API key" in error["message"]


def test_wrong_key_is_401_and_never_echoed(sim: Simulator) -> None:
    wrong = "sk-wrong-secret-key-abcdef123456"
    error = Client(sim.base_url, api_key=wrong).error("GET", "/files", 401)
    assert error["code"] == "invalid_api_key"
    assert error["message"].startswith("Incorrect API key provided: sk-wro***")
    assert wrong not in error["message"]
    assert "secret" not in error["message"]
    assert sim.state.requests[-1].status == 401


def test_short_wrong_key_is_fully_masked(sim: Simulator) -> None:
    error = Client(sim.base_url, api_key="abc").error("GET", "/files", 401)
    assert "Incorrect API key provided: ***." in error["message"]


def test_non_bearer_scheme_is_rejected(sim: Simulator) -> None:
    response = requests.get(sim.base_url + "/files", headers={"Authorization": f"Basic {API_KEY}"}, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_unknown_route_404_and_wrong_method_405(client: Client) -> None:
    error = client.error("GET", "/fine_tuning/nope", 404)
    assert error["message"] == "Invalid URL (GET /v1/fine_tuning/nope)"
    response = client.session.delete(client.base_url + "/fine_tuning/jobs", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, GET"
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["x-request-id"].startswith("req_")


def test_paths_outside_v1_are_404_envelopes(sim: Simulator) -> None:
    response = requests.get(sim.url + "/files", timeout=5)
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_invalid_json_body_is_400(client: Client) -> None:
    error = client.error(
        "POST", "/fine_tuning/jobs", 400, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert "could not parse the JSON body" in error["message"]


def test_requests_are_recorded_with_redacted_auth(client: Client, sim: Simulator) -> None:
    client.get(
        "/fine_tuning/jobs",
        params={"limit": "5", "metadata[team]": "a"},
        headers={"OpenAI-Organization": "org-123", "OpenAI-Project": "proj_9"},
    )
    record = sim.state.requests[-1]
    assert record.method == "GET"
    assert record.path == "/v1/fine_tuning/jobs"
    assert record.query == {"limit": ["5"], "metadata[team]": ["a"]}
    assert record.headers["authorization"] == "Bearer ***"
    assert record.headers["openai-organization"] == "org-123"
    assert record.headers["openai-project"] == "proj_9"
    assert record.status == 200
    assert API_KEY not in json.dumps(record.headers)


def test_multipart_upload_is_recorded_without_bytes(client: Client, sim: Simulator) -> None:
    client.upload(b"x" * 100, filename="notes.txt", purpose="assistants")
    record = sim.state.requests[-1]
    assert record.form == {"purpose": "assistants", "file": "notes.txt"}
    assert record.files == {"file": {"filename": "notes.txt", "bytes": 100}}
    assert record.json is None


def test_keep_alive_reuses_one_connection(sim: Simulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(f"GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\r\n".encode())
            status = stream.readline()
            headers = {}
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            assert status.startswith(b"HTTP/1.1 200")
            assert json.loads(body)["object"] == "list"


def test_thousand_concurrent_connections(sim: Simulator) -> None:
    # One client thread, 1,000 sockets open at once: the server needs the deep listen
    # backlog and a thread per connection.
    request = f"GET /v1/fine_tuning/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\r\n"
    started = time.monotonic()
    sockets = [socket.create_connection(("127.0.0.1", sim.port), timeout=20) for _ in range(1000)]
    try:
        for sock in sockets:
            sock.sendall(request.encode())
        ok = 0
        for sock in sockets:
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            ok += data.startswith(b"HTTP/1.1 200")
        assert ok == 1000
    finally:
        for sock in sockets:
            sock.close()
    assert time.monotonic() - started < 15
