"""Azure OpenAI: api-key auth, the v1 API and the dated API (api-version, 201s, created/pending)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.api.config import ApiKey, ClientConfig, ConfigError
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
from airflow_provider_ft.operators.files import UploadFineTuningFileOperator
from airflow_provider_ft.simulator import Simulator
from airflow_provider_ft.testing import connection_uri_json

pytestmark = pytest.mark.integration

KEY = "azure-key-SECRET-0123456789"
TRAIN = Path(__file__).resolve().parents[2] / "dags" / "data" / "train.jsonl"
API_VERSION = "2024-10-21"


def test_azure_hosts_are_detected_and_completed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AZ1", connection_uri_json(KEY, "https://myres.openai.azure.com"))
    config = FineTuningHook("az1").client.config
    assert (config.dialect, config.base_url) == ("azure", "https://myres.openai.azure.com/openai/v1")
    assert config.auth_headers() == {"api-key": KEY}
    assert config.query_params() == []

    monkeypatch.setenv(
        "AIRFLOW_CONN_AZ2", connection_uri_json(KEY, "https://myres.openai.azure.com/", api_version=API_VERSION)
    )
    config = FineTuningHook("az2").client.config
    assert config.base_url == "https://myres.openai.azure.com/openai"
    assert config.query_params() == [("api-version", API_VERSION)]


def test_azure_by_api_type_on_a_gateway_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AZ3", connection_uri_json(KEY, "https://gw.example/openai/v1", api_type="azure"))
    config = FineTuningHook("az3").client.config
    assert (config.dialect, config.base_url) == ("azure", "https://gw.example/openai/v1")


def test_azure_configuration_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="resource's endpoint"):
        ClientConfig(api_key=ApiKey(KEY), dialect="azure")
    with pytest.raises(ConfigError, match="drop the /v1"):
        ClientConfig(
            api_key=ApiKey(KEY),
            base_url="https://r.openai.azure.com/openai/v1",
            dialect="azure",
            api_version=API_VERSION,
        )
    with pytest.raises(ConfigError, match="only applies to Azure"):
        ClientConfig(api_key=ApiKey(KEY), api_version=API_VERSION)


@pytest.fixture(scope="module")
def azure() -> Iterator[Simulator]:
    with Simulator(api_key=KEY, seconds_per_step=0.01, dialect="azure") as sim:
        yield sim


@pytest.fixture(params=["v1", "dated"])
def conn_id(request: pytest.FixtureRequest, azure: Simulator, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "v1":
        value = connection_uri_json(KEY, azure.base_url, api_type="azure")
    else:
        value = connection_uri_json(KEY, azure.azure_dated_url, api_type="azure", api_version=API_VERSION)
    monkeypatch.setenv("AIRFLOW_CONN_FT_AZURE", value)
    return "ft_azure"


def _wait(hook: FineTuningHook, job_id: str) -> Any:
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = hook.retrieve_job(job_id)
        seen.append(job.status.value)
        if job.status.is_terminal:
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end: {seen[-5:]}")


def test_whole_job_through_both_azure_apis(azure: Simulator, conn_id: str) -> None:
    hook = FineTuningHook(conn_id)
    assert hook.test_connection()[0]
    file_id = UploadFineTuningFileOperator(
        task_id="u", file_path=str(TRAIN), conn_id=conn_id, poll_interval=0.02
    ).execute({})
    assert hook.retrieve_file(file_id).status == "processed"
    created = hook.create_job({"model": "gpt-4o-mini-2024-07-18", "training_file": file_id, "suffix": "az"})
    job, seen = _wait(hook, created.id)
    assert job.status.value == "succeeded"
    assert job.fine_tuned_model and ":az:" in job.fine_tuned_model
    # Azure's "created"/"pending" are read as the provider's validating_files/queued.
    assert set(seen) <= {"validating_files", "queued", "running", "succeeded"}
    assert [e.message for e in hook.events_since(job.id, None)][-1]
    assert len(list(hook.iter_checkpoints(job.id))) == 3

    requests = [r for r in azure.state.requests if r.path.endswith(f"/fine_tuning/jobs/{job.id}")]
    assert requests
    assert all(r.headers.get("api-key") == "***" and "authorization" not in r.headers for r in requests)
    dated = "api-version" in json.dumps(requests[-1].query)
    assert dated == (hook.client.config.api_version is not None)


def test_dated_api_status_names_are_mapped(azure: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FT_AZ_DATED",
        connection_uri_json(KEY, azure.azure_dated_url, api_type="azure", api_version=API_VERSION),
    )
    hook = FineTuningHook("ft_az_dated")
    file_id = hook.upload_file(TRAIN).id
    raw_first = hook.create_job({"model": "gpt-4o-mini-2024-07-18", "training_file": file_id})
    assert raw_first.raw["status"] in ("created", "pending")
    assert raw_first.status.value in ("validating_files", "queued")
    assert not raw_first.status.is_terminal


def test_wrong_azure_key_is_explained(azure: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_AZ_BAD", connection_uri_json("wrong", azure.base_url, api_type="azure"))
    ok, message = FineTuningHook("ft_az_bad").test_connection()
    assert not ok
    assert "HTTP 401" in message
    assert "Access denied" in message
