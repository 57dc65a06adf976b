"""Bad input gets a clear, actionable error: the README's table, one test per row.

Each case names the culprit and says what to do; none surfaces a bare KeyError or the internals
of the HTTP library. Server-side cases run against the simulator (or a canned server) on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.api.policy import RetryPolicy
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
from airflow_provider_ft.operators.files import UploadFineTuningFileOperator
from airflow_provider_ft.operators.fine_tuning import CreateFineTuningJobOperator
from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor
from airflow_provider_ft.simulator import FaultPlan, FaultRule, Simulator
from airflow_provider_ft.testing import connection_uri_json
from airflow_provider_ft.validation import TrainingDataError

pytestmark = pytest.mark.integration

KEY = "sk-badinput-SECRET-1234567890"
CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
INTERNALS = ("Traceback", "KeyError", "HTTPConnectionPool", "urllib3", "httpcore", "Max retries exceeded")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(api_key=KEY, seconds_per_step=0.01) as simulator:
        yield simulator


@pytest.fixture
def conn(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> str:
    sim.set_faults(None)
    monkeypatch.setenv("AIRFLOW_CONN_FT_BAD", connection_uri_json(KEY, sim.base_url, max_retries=2))
    return "ft_bad"


def _hook(conn_id: str = "ft_bad", **kw: Any) -> FineTuningHook:
    return FineTuningHook(conn_id, retry_policy=RetryPolicy(max_retries=2, base_delay=0.01), **kw)


def _training_file(sim: Simulator, conn: str) -> str:
    content = "\n".join(json.dumps(CHAT) for _ in range(10)).encode()
    return _hook(conn).upload_file(content, filename="ok.jsonl").id


@pytest.fixture
def canned() -> Iterator[Callable[[int, bytes], str]]:
    """A server that answers every request with one canned status and body."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()


def _expect(error: BaseException, *needles: str) -> None:
    text = str(error)
    for needle in needles:
        assert needle in text, f"{needle!r} missing from: {text}"
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} leaked into: {text}"
    assert KEY not in text


def _write(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _upload(path: str, **kw: Any) -> Any:
    return UploadFineTuningFileOperator(task_id="u", file_path=path, conn_id="ft_bad", **kw).execute({})


# --- the connection ---------------------------------------------------------------------------------


def test_01_missing_connection() -> None:
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_not_defined").retrieve_job("ftjob-1")
    _expect(info.value, "connection 'ft_not_defined' is not defined", "AIRFLOW_CONN_FT_NOT_DEFINED")


def test_02_empty_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_EMPTY", connection_uri_json("", "https://api.openai.com/v1"))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_empty").retrieve_job("ftjob-1")
    _expect(info.value, "'ft_empty' has no API key", "Password field")


def test_03_wrong_key(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_WRONG", connection_uri_json("sk-wrong-key-000000", sim.base_url))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_wrong").retrieve_job("ftjob-1")
    assert info.value.status == 401
    _expect(info.value, "HTTP 401", "Check the API key in the connection's Password field")


def test_04_base_url_without_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_NOSCHEME", connection_uri_json(KEY, "api.openai.com/v1"))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_noscheme").retrieve_job("ftjob-1")
    _expect(info.value, "'api.openai.com/v1' is not an http(s) URL", "scheme included")


def test_05_plain_http_to_a_remote_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_HTTP", connection_uri_json(KEY, "http://gateway.example.com/v1"))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_http").retrieve_job("ftjob-1")
    _expect(info.value, "Refusing to send the API key over plain http to 'gateway.example.com'", "use https")


def test_06_timeout_that_is_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_TIMEOUT", connection_uri_json(KEY, "https://api.openai.com/v1", timeout="soon"))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_timeout").retrieve_job("ftjob-1")
    _expect(info.value, "extra field 'timeout' must be a number", "'soon'")


def test_07_server_not_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_DOWN", connection_uri_json(KEY, "http://127.0.0.1:9/v1"))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_down").retrieve_job("ftjob-1")
    _expect(info.value, "could not connect to http://127.0.0.1:9/v1", "refused")


# --- ids --------------------------------------------------------------------------------------------


def test_08_unknown_job_id(conn: str) -> None:
    with pytest.raises(FineTuningApiError) as info:
        _hook().retrieve_job("ftjob-doesnotexist")
    assert info.value.status == 404
    _expect(info.value, "fine-tuning job ftjob-doesnotexist was not found", "Check the id")


def test_09_unknown_training_file(conn: str) -> None:
    with pytest.raises(FineTuningApiError) as info:
        _hook().create_job({"model": "gpt-4o-mini-2024-07-18", "training_file": "file-nope"})
    assert info.value.param == "training_file"
    _expect(info.value, "file-nope", "param=training_file")


def test_10_job_id_templated_to_an_empty_string(conn: str) -> None:
    sensor = FineTuningJobSensor(task_id="w", job_id="", conn_id=conn, deferrable=False)
    with pytest.raises(ValueError, match="fine-tuning job id is empty") as info:
        sensor.poke({"ti": None})
    _expect(info.value, "check that the upstream task pushed it to XCom")


# --- training data ----------------------------------------------------------------------------------


def test_11_training_file_not_jsonl(tmp_path: Path, conn: str) -> None:
    path = _write(tmp_path, "train.jsonl", [json.dumps(CHAT)] * 3 + ["prompt,completion"] + [json.dumps(CHAT)] * 7)
    with pytest.raises(TrainingDataError) as info:
        _upload(path)
    _expect(info.value, f"{path} line 4", "JSON")


def test_12_empty_training_file(tmp_path: Path, conn: str) -> None:
    path = _write(tmp_path, "train.jsonl", [])
    with pytest.raises(TrainingDataError) as info:
        _upload(path)
    _expect(info.value, path, "10")


def test_13_wrong_role(tmp_path: Path, conn: str) -> None:
    bad = {"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path = _write(tmp_path, "train.jsonl", [json.dumps(CHAT)] * 5 + [json.dumps(bad)] + [json.dumps(CHAT)] * 5)
    with pytest.raises(TrainingDataError) as info:
        _upload(path)
    _expect(info.value, f"{path} line 6", "messages[0].role", "'bot'")


def test_14_line_too_long(tmp_path: Path, conn: str) -> None:
    huge = {"messages": [{"role": "user", "content": "x" * 300_000}, {"role": "assistant", "content": "ok"}]}
    path = _write(tmp_path, "train.jsonl", [json.dumps(huge)] + [json.dumps(CHAT)] * 10)
    with pytest.raises(TrainingDataError) as info:
        _upload(path)
    _expect(info.value, f"{path} line 1", "too long")


def test_15_too_few_examples(tmp_path: Path, conn: str) -> None:
    path = _write(tmp_path, "train.jsonl", [json.dumps(CHAT)] * 3)
    with pytest.raises(TrainingDataError) as info:
        _upload(path)
    _expect(info.value, path, "3", "10")


def test_16_missing_training_file_path(tmp_path: Path, conn: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        _upload(str(tmp_path / "missing.jsonl"))
    _expect(info.value, "missing.jsonl", "does not exist")


# --- the create request -----------------------------------------------------------------------------


def test_17_invalid_method_type(sim: Simulator, conn: str) -> None:
    file_id = _training_file(sim, conn)
    with pytest.raises(FineTuningApiError) as info:
        _hook().create_job({"model": "gpt-4o-mini-2024-07-18", "training_file": file_id, "method": {"type": "magic"}})
    assert info.value.status == 400
    _expect(info.value, "param=method.type")


def test_18_invalid_hyperparameters(sim: Simulator, conn: str) -> None:
    file_id = _training_file(sim, conn)
    body = {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": file_id,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}},
    }
    with pytest.raises(FineTuningApiError) as info:
        _hook().create_job(body)
    _expect(info.value, "n_epochs")
    assert info.value.param is not None and "n_epochs" in info.value.param


def test_19_suffix_too_long(conn: str) -> None:
    op = CreateFineTuningJobOperator(task_id="c", model="m", training_file="file-1", suffix="s" * 80, conn_id=conn)
    with pytest.raises(ValueError, match="suffix") as info:
        op.build_request({})
    _expect(info.value, "suffix", "80 characters", "allows 64")


def test_20_metadata_over_16_keys(conn: str) -> None:
    op = CreateFineTuningJobOperator(
        task_id="c", model="m", training_file="file-1", metadata={f"k{i}": "v" for i in range(17)}, conn_id=conn
    )
    with pytest.raises(ValueError, match="metadata") as info:
        op.build_request({"airflow_dag_id": "d"})
    _expect(info.value, "metadata has 17 keys", "limit of 16")


def test_21_unknown_model(sim: Simulator, conn: str) -> None:
    file_id = _training_file(sim, conn)
    with pytest.raises(FineTuningApiError) as info:
        _hook().create_job({"model": "gpt-unknown-9000", "training_file": file_id})
    _expect(info.value, "param=model")


# --- what comes back --------------------------------------------------------------------------------


def test_22_response_that_is_not_json(canned: Callable[[int, bytes], str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_HTML", connection_uri_json(KEY, canned(200, b"<html>login page</html>")))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_html").retrieve_job("ftjob-1")
    _expect(info.value, "not JSON", "<html>login page", "base URL")


def test_23_response_missing_fields(canned: Callable[[int, bytes], str], monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps({"id": "ftjob-1", "object": "fine_tuning.job"}).encode()
    monkeypatch.setenv("AIRFLOW_CONN_FT_PARTIAL", connection_uri_json(KEY, canned(200, body)))
    with pytest.raises(FineTuningApiError) as info:
        _hook("ft_partial").retrieve_job("ftjob-1")
    _expect(info.value, "ftjob-1", "without the required field 'status'")


def test_24_unexpected_status_value_is_waited_on_not_fatal(
    canned: Callable[[int, bytes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    job = {
        "id": "ftjob-1",
        "object": "fine_tuning.job",
        "status": "reticulating_splines",
        "model": "m",
        "created_at": 1,
        "training_file": "file-1",
    }
    monkeypatch.setenv("AIRFLOW_CONN_FT_ODD", connection_uri_json(KEY, canned(200, json.dumps(job).encode())))
    retrieved = _hook("ft_odd").retrieve_job("ftjob-1")
    assert retrieved.status.value == "reticulating_splines"
    assert not retrieved.status.is_terminal


def test_25_rate_limit_exhausted(sim: Simulator, conn: str) -> None:
    sim.set_faults(FaultPlan(rate_limit=FaultRule(share=1.0, seconds=0.01)))
    with pytest.raises(FineTuningApiError) as info:
        _hook().retrieve_job("ftjob-1")
    assert info.value.status == 429
    _expect(info.value, "HTTP 429", "retries were exhausted", "max_retries")


def test_26_timeout(sim: Simulator, conn: str) -> None:
    sim.set_faults(FaultPlan(slow=FaultRule(share=1.0, seconds=2.0)))
    with pytest.raises(FineTuningApiError) as info:
        _hook(timeout=0.3, max_retries=0).list_jobs(limit=1)
    _expect(info.value, "got no answer in time", "the timeout is 0.3s", "'timeout'")


def test_27_dpo_data_for_a_supervised_job(tmp_path: Path, conn: str) -> None:
    pref = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "a"}],
        "non_preferred_output": [{"role": "assistant", "content": "b"}],
    }
    path = _write(tmp_path, "prefs.jsonl", [json.dumps(pref)] * 10)
    with pytest.raises(TrainingDataError) as info:
        _upload(path, method="supervised")
    _expect(info.value, path, "preference")
