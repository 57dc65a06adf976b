"""The vendored spec and the checker in tests/contract/openapi.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.openapi import SPEC_PATH, validate_request, validate_response

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "openapi" / "fine_tuning.yaml"

JOB = {
    "object": "fine_tuning.job",
    "id": "ftjob-abc",
    "model": "gpt-4o-mini-2024-07-18",
    "created_at": 1,
    "finished_at": None,
    "fine_tuned_model": None,
    "organization_id": "org",
    "result_files": [],
    "status": "running",
    "validation_file": None,
    "training_file": "file-a",
    "hyperparameters": {},
    "trained_tokens": None,
    "error": None,
    "seed": 0,
}


@pytest.mark.skipif(not SHARED.exists(), reason="no ../shared checkout next to the repo")
def test_vendored_spec_matches_shared_copy() -> None:
    assert SPEC_PATH.read_bytes() == SHARED.read_bytes()


def test_response_checker_accepts_valid_and_paused() -> None:
    validate_response("GET", "/v1/fine_tuning/jobs/ftjob-abc", 200, JOB)
    validate_response("POST", "/v1/fine_tuning/jobs/ftjob-abc/pause", 200, {**JOB, "status": "paused"})
    validate_response("GET", "/fine_tuning/jobs", 200, {"object": "list", "data": [JOB], "has_more": False})
    validate_response(
        "GET",
        "/v1/files/file-x",
        404,
        {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}},
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**JOB, "status": "done"}, "status: 'done' is not one of"),
        ({k: v for k, v in JOB.items() if k != "seed"}, "'seed' is a required property"),
        ({**JOB, "created_at": "yesterday"}, "created_at: 'yesterday' is not of type 'integer'"),
        ({**JOB, "error": {"code": "x"}}, "error:"),
    ],
)
def test_response_checker_rejects(body: object, fragment: str) -> None:
    with pytest.raises(AssertionError, match="does not match the spec") as info:
        validate_response("GET", "/v1/fine_tuning/jobs/ftjob-abc", 200, body)
    assert fragment in str(info.value)


def test_error_envelope_is_checked() -> None:
    with pytest.raises(AssertionError, match="'param' is a required property"):
        validate_response("GET", "/v1/files", 400, {"error": {"message": "m", "type": "t", "code": None}})
    with pytest.raises(AssertionError, match="no spec path"):
        validate_response("GET", "/v1/models", 200, {})
    with pytest.raises(AssertionError, match="no PUT operation"):
        validate_response("PUT", "/v1/files", 200, {})
    with pytest.raises(AssertionError, match="unexpected status 302"):
        validate_response("GET", "/v1/files", 302, {})


def test_request_checker() -> None:
    validate_request("GET", "/v1/fine_tuning/jobs", {"limit": ["5"], "metadata[team]": ["a"]}, None)
    validate_request("POST", "/v1/fine_tuning/jobs", {}, {"model": "gpt-4o-mini", "training_file": "file-a"})
    validate_request(
        "POST",
        "/v1/files",
        {},
        None,
        {
            "file": "t.jsonl",
            "purpose": "fine-tune",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "3600",
        },
    )
    validate_request("POST", "/v1/fine_tuning/jobs/ftjob-a/cancel", {}, None)
    problems = [
        ("GET", "/v1/fine_tuning/jobs", {"limit": ["many"]}, None, None, "query limit"),
        ("GET", "/v1/fine_tuning/jobs", {"page": ["2"]}, None, None, "not a parameter"),
        ("GET", "/v1/files", {"order": ["up"]}, None, None, "query order"),
        ("POST", "/v1/fine_tuning/jobs", {}, {"model": "gpt-4o-mini"}, None, "'training_file' is a required"),
        ("POST", "/v1/fine_tuning/jobs", {}, {"model": "m", "training_file": "f", "seed": -1}, None, "body seed"),
        ("POST", "/v1/fine_tuning/jobs", {}, None, None, "body: required"),
        ("POST", "/v1/files", {}, None, {"file": "t", "purpose": "fun"}, "form purpose"),
        (
            "POST",
            "/v1/files",
            {},
            None,
            {"file": "t", "purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "5"},
            "form expires_after/seconds",
        ),
        ("POST", "/v1/files", {}, None, {"purpose": "batch"}, "'file' is a required"),
        ("POST", "/v1/fine_tuning/jobs/ftjob-a/cancel", {}, {"x": 1}, None, "takes no request body"),
    ]
    for method, path, query, body, form, fragment in problems:
        with pytest.raises(AssertionError) as info:
            validate_request(method, path, query, body, form)
        assert fragment in str(info.value), (fragment, str(info.value))
