"""Fixtures: a simulator on a fake clock and a client that checks every exchange against the spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_ft.simulator import Simulator
from tests.contract.openapi import validate_request, validate_response

API_KEY = "sk-test-0123456789abcdef"
START = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Client:
    """requests.Session that validates each response body against the spec."""

    def __init__(self, base_url: str, api_key: str | None = API_KEY) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if api_key is not None:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.last: requests.Response | None = None

    def call(
        self,
        method: str,
        path: str,
        *,
        expect: int | None = 200,
        **kwargs: Any,
    ) -> Any:
        response = self.session.request(method, self.base_url + path, timeout=10, **kwargs)
        self.last = response
        assert response.headers["x-request-id"].startswith("req_")
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        validate_response(method, "/v1" + path, response.status_code, body)
        if expect is not None:
            assert response.status_code == expect, response.text
        return body

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    def upload(self, content: bytes, filename: str = "train.jsonl", purpose: str = "fine-tune", **kwargs: Any) -> Any:
        return self.post("/files", files={"file": (filename, content)}, data={"purpose": purpose}, **kwargs)

    def error(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        body = self.call(method, path, expect=status, **kwargs)
        error: dict[str, Any] = body["error"]
        return error


def chat_jsonl(n: int = 10, *, extra: str = "") -> bytes:
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": f"Question {i}{extra}"},
                    {"role": "assistant", "content": f"Answer {i}"},
                ]
            }
        )
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def preference_jsonl(n: int = 10) -> bytes:
    lines = [
        json.dumps(
            {
                "input": {"messages": [{"role": "user", "content": f"Q{i}"}]},
                "preferred_output": [{"role": "assistant", "content": "good"}],
                "non_preferred_output": [{"role": "assistant", "content": "bad"}],
            }
        )
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(api_key=API_KEY, seconds_per_step=1.0, clock=clock, seed=0) as simulator:
        yield simulator
        # Whatever the simulator accepted must also be a request the spec allows.
        for record in simulator.state.requests:
            if record.status == 200:
                validate_request(record.method, record.path, record.query, record.json, record.form)


@pytest.fixture
def client(sim: Simulator) -> Client:
    return Client(sim.base_url)


@pytest.fixture
def training_file(client: Client) -> str:
    file_id: str = client.upload(chat_jsonl(10))["id"]
    return file_id
