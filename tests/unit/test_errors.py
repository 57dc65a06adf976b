from __future__ import annotations

import json
import pickle

from airflow.exceptions import AirflowException

from airflow_provider_ft.api.config import ApiKey, ClientConfig
from airflow_provider_ft.api.endpoints import retrieve_job
from airflow_provider_ft.api.errors import FineTuningApiError, error_from_response
from airflow_provider_ft.api.transport import interpret

KEY = "sk-unit-SECRET-0123456789"


def _envelope(**fields: object) -> bytes:
    return json.dumps({"error": {"message": "m", "type": "t", "param": None, "code": None, **fields}}).encode()


def test_error_carries_all_api_fields_and_request_id() -> None:
    body = _envelope(
        message="Invalid n_epochs",
        type="invalid_request_error",
        param="hyperparameters.n_epochs",
        code="invalid_value",
    )
    err = error_from_response(400, {"X-Request-Id": "req_123"}, body, operation="create fine-tuning job")
    assert isinstance(err, AirflowException)
    assert (err.status, err.type, err.param, err.code, err.request_id) == (
        400,
        "invalid_request_error",
        "hyperparameters.n_epochs",
        "invalid_value",
        "req_123",
    )
    text = str(err)
    assert "create fine-tuning job failed (HTTP 400): Invalid n_epochs" in text
    assert "param=hyperparameters.n_epochs" in text and "request_id=req_123" in text


def test_401_says_to_check_the_key() -> None:
    err = error_from_response(401, {}, _envelope(message="Incorrect API key provided"), operation="x")
    assert "Check the API key in the connection's Password field" in str(err)


def test_404_names_the_missing_resource() -> None:
    err = error_from_response(
        404, {}, _envelope(message="No such job"), operation="retrieve", resource="fine-tuning job ftjob-nope"
    )
    assert "fine-tuning job ftjob-nope was not found" in str(err)


def test_non_json_error_body_is_summarised() -> None:
    err = error_from_response(502, {}, b"<html>Bad gateway</html>", operation="x")
    assert "unexpected answer" in str(err) and "Bad gateway" in str(err)
    assert error_from_response(500, {}, b"", operation="x").api_message == "empty answer"


def test_error_survives_pickling() -> None:
    err = error_from_response(400, {"x-request-id": "req_9"}, _envelope(param="suffix"), operation="op")
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, FineTuningApiError)
    assert (copy.param, copy.request_id, str(copy)) == ("suffix", "req_9", str(err))


def test_interpret_redacts_the_key_from_server_messages() -> None:
    config = ClientConfig(api_key=ApiKey(KEY))
    body = _envelope(message=f"Incorrect API key provided: {KEY}")
    try:
        interpret(retrieve_job("ftjob-1"), config, 401, {}, body)
    except FineTuningApiError as err:
        assert KEY not in str(err) and KEY not in err.api_message
    else:
        raise AssertionError("expected an error")


def test_interpret_rejects_non_json_success() -> None:
    config = ClientConfig(api_key=ApiKey(KEY))
    try:
        interpret(retrieve_job("ftjob-1"), config, 200, {}, b"<html>hi</html>")
    except FineTuningApiError as err:
        assert "not JSON" in str(err) and "base URL" in str(err)
    else:
        raise AssertionError("expected an error")
