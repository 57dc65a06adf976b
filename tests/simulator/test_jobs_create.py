"""POST /v1/fine_tuning/jobs: request validation and the created job."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_ft.simulator import Simulator
from tests.contract.openapi import validate_request
from tests.simulator.conftest import START, Client, chat_jsonl, preference_jsonl

GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}


def test_create_minimal_job(client: Client, training_file: str, sim: Simulator) -> None:
    job = client.post("/fine_tuning/jobs", json={"model": "gpt-4o-mini", "training_file": training_file})
    assert re.fullmatch(r"ftjob-[A-Za-z0-9]{24}", job["id"])
    assert job["object"] == "fine_tuning.job"
    assert job["model"] == "gpt-4o-mini-2024-07-18"  # alias resolved like the service does
    assert job["status"] == "validating_files"
    assert job["created_at"] == int(START)
    assert job["organization_id"] == "org-simulator"
    assert (job["fine_tuned_model"], job["finished_at"], job["trained_tokens"]) == (None, None, None)
    assert job["error"] is None
    assert job["result_files"] == []
    assert job["hyperparameters"] == {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}
    assert job["method"] == {"type": "supervised", "supervised": {"hyperparameters": job["hyperparameters"]}}
    assert isinstance(job["seed"], int)
    assert job["metadata"] is None
    assert job["id"] in sim.state.jobs
    record = sim.state.requests[-1]
    validate_request(record.method, record.path, record.query, record.json)


def test_create_full_supervised_job(client: Client, training_file: str) -> None:
    body = {
        "model": "gpt-4.1-mini-2025-04-14",
        "training_file": training_file,
        "validation_file": training_file,
        "suffix": "support-bot",
        "seed": 42,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}},
        "metadata": {"team": "ml", "run": "7"},
        "integrations": [{"type": "wandb", "wandb": {"project": "ft", "tags": ["a"]}}],
    }
    job = client.post("/fine_tuning/jobs", json=body)
    assert job["seed"] == 42
    assert job["validation_file"] == training_file
    assert job["metadata"] == {"team": "ml", "run": "7"}
    assert job["method"]["supervised"]["hyperparameters"] == {
        "batch_size": 4,
        "learning_rate_multiplier": "auto",
        "n_epochs": 2,
    }
    assert job["integrations"] == [{"type": "wandb", "wandb": {"project": "ft", "tags": ["a"]}}]


def test_dpo_and_reinforcement_jobs(client: Client, sim: Simulator) -> None:
    pref = client.upload(preference_jsonl(10), filename="pref.jsonl")["id"]
    job = client.post(
        "/fine_tuning/jobs",
        json={
            "model": "gpt-4o-2024-08-06",
            "training_file": pref,
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
        },
    )
    assert job["method"]["dpo"]["hyperparameters"]["beta"] == 0.2
    assert job["hyperparameters"] == {}  # the service fills it for supervised jobs only
    rft = client.upload(
        b"".join(b'{"messages": [{"role": "user", "content": "2+2?"}], "label": "4"}\n' for _ in range(10)),
        filename="rft.jsonl",
    )
    assert rft["status"] == "processed"
    job = client.post(
        "/fine_tuning/jobs",
        json={
            "model": "o4-mini",
            "training_file": rft["id"],
            "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER}},
        },
    )
    assert job["model"] == "o4-mini-2025-04-16"
    assert job["method"]["reinforcement"]["grader"] == GRADER


def test_fine_tuned_base_model_is_accepted(client: Client, training_file: str) -> None:
    model = "ft:gpt-4o-mini-2024-07-18:acme:first:AbCd1234"
    job = client.post("/fine_tuning/jobs", json={"model": model, "training_file": training_file})
    assert job["model"] == model


def _metadata(n: int, key_len: int = 3, value_len: int = 3) -> dict[str, str]:
    return {f"{i:0{key_len}d}": "v" * value_len for i in range(n)}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"suffix": "x" * 65}, "suffix"),
        ({"suffix": ""}, "suffix"),
        ({"suffix": 5}, "suffix"),
        ({"hyperparameters": {"n_epochs": 51}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"n_epochs": True}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"batch_size": 0}}, "hyperparameters.batch_size"),
        ({"hyperparameters": {"learning_rate_multiplier": 0}}, "hyperparameters.learning_rate_multiplier"),
        ({"hyperparameters": {"warmup": 3}}, "hyperparameters.warmup"),
        ({"method": {"type": "lora"}}, "method.type"),
        ({"method": {"supervised": {}}}, "method.type"),
        ({"method": {"type": "supervised"}}, "method.supervised"),
        ({"method": {"type": "dpo", "supervised": {}}}, "method.supervised"),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
            "method.supervised.hyperparameters.n_epochs",
        ),
        (
            {
                "method": {"type": "supervised", "supervised": {}},
                "hyperparameters": {"n_epochs": 1},
                "model": "gpt-4o-mini",
            },
            None,
        ),  # allowed: deprecated field with a bare method
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"metadata": _metadata(17)}, "metadata"),
        ({"metadata": _metadata(1, key_len=65)}, "metadata"),
        ({"metadata": _metadata(1, value_len=513)}, "metadata.000"),
        ({"metadata": {"a": 1}}, "metadata.a"),
        ({"frobnicate": True}, "frobnicate"),
        ({"model": "gpt-4"}, "model"),
        ({"model": "o4-mini"}, "model"),  # reinforcement only
        ({"model": None}, "model"),
        ({"training_file": None}, "training_file"),
        ({"integrations": [{"type": "slack", "wandb": {"project": "p"}}]}, "integrations[0].type"),
    ],
)
def test_create_job_validation(client: Client, training_file: str, change: dict[str, Any], param: str | None) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini-2024-07-18", "training_file": training_file, **change}
    if param is None:
        client.post("/fine_tuning/jobs", json=body)
        return
    error = client.error("POST", "/fine_tuning/jobs", 400, json=body)
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


def test_missing_required_fields(client: Client, training_file: str) -> None:
    assert client.error("POST", "/fine_tuning/jobs", 400, json={"training_file": training_file})["param"] == "model"
    assert client.error("POST", "/fine_tuning/jobs", 400, json={"model": "gpt-4o-mini"})["param"] == "training_file"
    assert client.error("POST", "/fine_tuning/jobs", 400, json=[1])["param"] is None


def test_unknown_files_are_404(client: Client, training_file: str) -> None:
    error = client.error(
        "POST", "/fine_tuning/jobs", 404, json={"model": "gpt-4o-mini", "training_file": "file-missing"}
    )
    assert error["param"] == "training_file"
    assert "file-missing" in error["message"]
    error = client.error(
        "POST",
        "/fine_tuning/jobs",
        404,
        json={"model": "gpt-4o-mini", "training_file": training_file, "validation_file": "file-gone"},
    )
    assert error["param"] == "validation_file"
    assert "file-gone" in error["message"]


def test_file_with_wrong_purpose_is_400(client: Client) -> None:
    other = client.upload(chat_jsonl(10), filename="a.jsonl", purpose="batch")["id"]
    error = client.error("POST", "/fine_tuning/jobs", 400, json={"model": "gpt-4o-mini", "training_file": other})
    assert error["param"] == "training_file"
    assert "purpose 'batch'" in error["message"]
