"""One API server for the whole integration session.

By default the embedded simulator on 127.0.0.1 (fast clock: 10 ms per training step). With
``FT_BASE_URL`` and ``FT_API_KEY`` set, that server instead (the real API included): ``api.simulator``
is then None and tests marked ``simulator_only`` (faults, recorded requests, forced failures) skip.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from airflow_provider_ft.api.models import FineTuningJob, JobStatus
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
from airflow_provider_ft.simulator import RecordedRequest, Simulator
from airflow_provider_ft.testing import connection_uri_json
from tests.simulator.conftest import chat_jsonl

CONN_ID = "ft_integration"
# Long and distinctive, so a leak is found by a plain substring search.
SIMULATOR_KEY = "sk-integration-SECRET-6f1d2c9a8b7e"
SECONDS_PER_STEP = 0.01

# Records of requests a test sent on purpose against the spec (to check the server's 400s); the
# spec walk skips exactly these and nothing else. Keyed by id(): records live as long as the log.
DELIBERATELY_INVALID: set[int] = set()


@dataclass
class Api:
    conn_id: str
    base_url: str
    api_key: str
    simulator: Simulator | None


@pytest.fixture(scope="session")
def api() -> Iterator[Api]:
    env_name = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    previous = os.environ.get(env_name)
    base_url, api_key = os.environ.get("FT_BASE_URL"), os.environ.get("FT_API_KEY")
    simulator = None
    if not (base_url and api_key):
        simulator = Simulator(api_key=SIMULATOR_KEY, seconds_per_step=SECONDS_PER_STEP, seed=20240601).start()
        base_url, api_key = simulator.base_url, SIMULATOR_KEY
    os.environ[env_name] = connection_uri_json(api_key, base_url)
    try:
        yield Api(CONN_ID, base_url, api_key, simulator)
    finally:
        if previous is None:
            os.environ.pop(env_name, None)
        else:
            os.environ[env_name] = previous
        if simulator is not None:
            simulator.stop()


@pytest.fixture(autouse=True)
def _server_rules(request: pytest.FixtureRequest, api: Api, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Skip simulator-only tests on a real server; clear faults; no log record may hold the key."""
    if request.node.get_closest_marker("simulator_only") and api.simulator is None:
        pytest.skip("needs the embedded simulator (FT_BASE_URL/FT_API_KEY point at another server)")
    caplog.set_level(logging.DEBUG)
    if api.simulator is not None:
        api.simulator.set_faults(None)
    yield
    if api.simulator is not None:
        api.simulator.set_faults(None)
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]
    leaked = [r.name for r in records if api.api_key in r.getMessage()]
    assert not leaked, f"the API key appeared in log records of {leaked}"


@pytest.fixture
def sim(api: Api) -> Simulator:
    if api.simulator is None:
        pytest.skip("needs the embedded simulator (FT_BASE_URL/FT_API_KEY point at another server)")
    return api.simulator


@pytest.fixture
def hook(api: Api) -> FineTuningHook:
    return FineTuningHook(api.conn_id)


@contextmanager
def recorded(sim: Simulator) -> Iterator[list[RecordedRequest]]:
    """The requests the simulator received inside the block (the list fills when the block ends)."""
    start = len(sim.state.requests)
    sent: list[RecordedRequest] = []
    yield sent
    sent.extend(sim.state.requests.snapshot()[start:])


@contextmanager
def deliberately_invalid(sim: Simulator | None) -> Iterator[None]:
    """Exempt the requests sent inside the block from the spec walk (they break the spec on purpose)."""
    if sim is None:  # a real server: nothing is recorded, nothing to exempt
        yield
        return
    with recorded(sim) as sent:
        yield
    assert sent, "the block sent nothing"
    DELIBERATELY_INVALID.update(id(r) for r in sent)


def wait_for(
    hook: FineTuningHook, job_id: str, done: Callable[[FineTuningJob], bool], timeout: float = 15.0
) -> FineTuningJob:
    deadline = time.monotonic() + timeout
    while True:
        job = hook.retrieve_job(job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status.value} after {timeout}s")
        time.sleep(0.05)


def wait_until_succeeded(hook: FineTuningHook, job_id: str) -> FineTuningJob:
    job = wait_for(hook, job_id, lambda j: j.status.is_terminal)
    assert job.status is JobStatus.SUCCEEDED, job.error
    return job


def create_long_job(hook: FineTuningHook, training_file: str, **metadata: str) -> FineTuningJob:
    """A job that trains for ~5 s on the simulator: long enough to pause, resume and cancel."""
    body = {
        "model": "gpt-4o-mini",
        "training_file": training_file,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 50}}},
        "metadata": {"purpose": "long", **metadata},
    }
    return hook.create_job(body)


@pytest.fixture(scope="session")
def training_file(api: Api) -> str:
    """A valid 10-example chat file, uploaded once."""
    return FineTuningHook(api.conn_id).upload_file(chat_jsonl(10), filename="integration-train.jsonl").id


@pytest.fixture(scope="session")
def finished_job(api: Api) -> FineTuningJob:
    """A succeeded job: 10 examples x 3 epochs = 30 steps, checkpoints at steps 10, 20 and 30."""
    hook = FineTuningHook(api.conn_id)
    file_id = hook.upload_file(chat_jsonl(10), filename="finished.jsonl").id
    job = hook.create_job({"model": "gpt-4o-mini", "training_file": file_id, "suffix": "finished"})
    return wait_until_succeeded(hook, job.id)


@pytest.fixture(scope="session")
def chatty_job(api: Api) -> FineTuningJob:
    """A succeeded job with more events than one page holds (100): 40 examples x 3 epochs."""
    hook = FineTuningHook(api.conn_id)
    file_id = hook.upload_file(chat_jsonl(40), filename="chatty.jsonl").id
    job = hook.create_job({"model": "gpt-4o-mini", "training_file": file_id})
    return wait_until_succeeded(hook, job.id)


# created, validating, validated, started, 120 steps, 2 checkpoint notes, new model, completed
CHATTY_EVENTS = 4 + 120 + 2 + 2
