"""The HTTP core without a server: request preparation, answer handling, retry steps, error classes.

Network failures are real ones, from sockets on 127.0.0.1 that refuse, stall, close or reset.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import requests

from airflow_provider_ft import __version__
from airflow_provider_ft.api import endpoints
from airflow_provider_ft.api.client import AsyncFineTuningClient, FineTuningClient
from airflow_provider_ft.api.config import ApiKey, ClientConfig
from airflow_provider_ft.api.errors import FineTuningApiError, ResponseFormatError
from airflow_provider_ft.api.policy import Failure, RetryPolicy
from airflow_provider_ft.api.transport import (
    _RETRY,
    USER_AGENT,
    AsyncTransport,
    SyncTransport,
    _classify_httpx_error,
    _classify_requests_error,
    _describe_failure,
    after_answer,
    after_failure,
    interpret,
    prepare,
)
from airflow_provider_ft.simulator.multipart import parse_multipart

KEY = "sk-transport-SECRET-5a4b3c2d1e"
BASE = "https://api.example.test/v1"
CONFIG = ClientConfig(api_key=ApiKey(KEY), base_url=BASE, organization="org-7", project="proj_9", timeout=7)
JSONL = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'


def _error_body(message: str = "m", **fields: object) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", **fields}}).encode()


# --- prepare: URL, headers, query, bodies ------------------------------------------------------------


def test_prepare_json_call_and_headers() -> None:
    body = {"model": "gpt-4o-mini", "training_file": "file-1"}
    call = prepare(CONFIG, endpoints.create_job(body))
    assert (call.method, call.url, call.json, call.data, call.files, call.params) == (
        "POST",
        f"{BASE}/fine_tuning/jobs",
        body,
        None,
        None,
        [],
    )
    assert call.headers == {
        "Accept": "application/json",
        "User-Agent": f"airflow-provider-ft/{__version__}",
        "Authorization": f"Bearer {KEY}",
        "OpenAI-Organization": "org-7",
        "OpenAI-Project": "proj_9",
    }


def test_prepare_without_organization_or_project() -> None:
    call = prepare(ClientConfig(api_key=ApiKey(KEY), base_url=BASE), endpoints.retrieve_job("ftjob-1"))
    assert call.headers == {"Accept": "application/json", "User-Agent": USER_AGENT, "Authorization": f"Bearer {KEY}"}
    assert call.url == f"{BASE}/fine_tuning/jobs/ftjob-1"


def test_organization_and_project_are_trimmed_and_line_breaks_rejected() -> None:
    config = ClientConfig(api_key=ApiKey(KEY), organization=" org-7 ", project="  ")
    assert (config.organization, config.project) == ("org-7", None)
    with pytest.raises(ValueError, match="organization contains a line break"):
        ClientConfig(api_key=ApiKey(KEY), organization="org-7\n")
    with pytest.raises(ValueError, match="project must be a string"):
        ClientConfig(api_key=ApiKey(KEY), project=7)  # type: ignore[arg-type]


def test_prepare_query_parameters_keep_order_and_deep_objects() -> None:
    call = prepare(CONFIG, endpoints.list_jobs(after="ftjob-1", limit=5, metadata={"team": "ml", "env": "prod"}))
    assert call.params == [("after", "ftjob-1"), ("limit", "5"), ("metadata[team]", "ml"), ("metadata[env]", "prod")]


def test_prepare_upload_fields() -> None:
    call = prepare(CONFIG, endpoints.upload_file("train.jsonl", JSONL, expires_after_seconds=3600))
    assert call.json is None
    assert call.files == {"file": ("train.jsonl", JSONL, "application/jsonl")}
    assert call.data == {
        "purpose": "fine-tune",
        "expires_after[anchor]": "created_at",
        "expires_after[seconds]": "3600",
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, object()])
def test_body_that_is_not_json_fails_before_sending(bad: object) -> None:
    req = endpoints.create_job({"model": "gpt-4o-mini", "training_file": "file-1", "metadata": {"x": bad}})
    with pytest.raises(FineTuningApiError, match="the request body cannot be sent as JSON") as caught:
        prepare(CONFIG, req)
    assert (caught.value.operation, caught.value.maybe_committed, caught.value.status) == (
        "create fine-tuning job",
        False,
        None,
    )


def test_reprs_never_show_the_key() -> None:
    call = prepare(CONFIG, endpoints.create_job({"model": "m", "training_file": "f"}))
    assert repr(call) == f"PreparedCall(POST {BASE}/fine_tuning/jobs)"
    texts = {
        "call": repr(call),
        "sync": repr(SyncTransport(CONFIG)),
        "async": repr(AsyncTransport(CONFIG)),
        "client": repr(FineTuningClient(CONFIG)),
        "aclient": repr(AsyncFineTuningClient(CONFIG)),
        "config": repr(CONFIG),
        "key": repr(CONFIG.api_key) + str(CONFIG.api_key),
    }
    assert texts["sync"] == f"SyncTransport(base_url='{BASE}')"
    assert texts["async"] == f"AsyncTransport(base_url='{BASE}')"
    assert [name for name, text in texts.items() if KEY in text] == []


# --- what goes on the wire (requests and httpx build the real messages) ------------------------------

Answer = tuple[int, dict[str, str], bytes]


class CapturingSession(requests.Session):
    """A real requests.Session whose adapter step is replaced: records the prepared requests."""

    def __init__(self, answers: list[Answer | BaseException]) -> None:
        super().__init__()
        self.answers = answers
        self.sent: list[requests.PreparedRequest] = []
        self.send_kwargs: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        self.send_kwargs.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, headers, body = answer
        response = requests.Response()
        response.status_code, response._content, response.request = status, body, request
        response.headers.update(headers)
        return response


def _sync(
    answers: list[Answer | BaseException], policy: RetryPolicy | None = None
) -> tuple[SyncTransport, CapturingSession, list[float]]:
    session = CapturingSession(answers)
    sleeps: list[float] = []
    sender = SyncTransport(CONFIG, policy or RetryPolicy(max_retries=3), session=session, sleep=sleeps.append)
    return sender, session, sleeps


def test_requests_wire_headers_and_multipart() -> None:
    sender, session, _ = _sync([(200, {}, json.dumps({"id": "file-1", "object": "file"}).encode())])
    sender.send(endpoints.upload_file("train.jsonl", JSONL))
    (sent,) = session.sent
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert (sent.headers["OpenAI-Organization"], sent.headers["OpenAI-Project"]) == ("org-7", "proj_9")
    assert (sent.headers["User-Agent"], sent.headers["Accept"]) == (USER_AGENT, "application/json")
    content_type = sent.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert isinstance(sent.body, bytes)
    assert b"Content-Type: application/jsonl" in sent.body
    form = parse_multipart(content_type, sent.body)
    assert form.fields == {"purpose": "fine-tune"}
    assert (form.files["file"].filename, form.files["file"].content) == ("train.jsonl", JSONL)
    kwargs = session.send_kwargs[0]
    assert (kwargs["timeout"], kwargs["allow_redirects"]) == ((7.0, 7.0), False)


def test_httpx_wire_headers_and_multipart() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "file-1", "object": "file"})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await AsyncTransport(CONFIG, client=client).send(endpoints.upload_file("train.jsonl", JSONL))

    asyncio.run(main())
    (sent,) = seen
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert (sent.headers["OpenAI-Organization"], sent.headers["OpenAI-Project"]) == ("org-7", "proj_9")
    assert (sent.headers["User-Agent"], sent.headers["Accept"]) == (USER_AGENT, "application/json")
    body = sent.read()
    assert b"Content-Type: application/jsonl" in body
    form = parse_multipart(sent.headers["Content-Type"], body)
    assert form.fields == {"purpose": "fine-tune"}
    assert (form.files["file"].filename, form.files["file"].content) == ("train.jsonl", JSONL)


# --- interpret ---------------------------------------------------------------------------------------


def test_interpret_success_bodies() -> None:
    req = endpoints.retrieve_job("ftjob-1")
    assert interpret(req, CONFIG, 200, {}, b'{"id": "ftjob-1"}') == {"id": "ftjob-1"}
    assert interpret(req, CONFIG, 204, {}, b"") == {}


def test_interpret_non_json_success_names_the_base_url_and_hides_the_key() -> None:
    body = f"<html>login page for {KEY}</html>".encode()
    with pytest.raises(ResponseFormatError) as caught:
        interpret(endpoints.retrieve_job("ftjob-1"), CONFIG, 200, {"X-Request-Id": "req_9"}, body)
    err = caught.value
    assert (err.status, err.request_id) == (200, "req_9")
    assert str(err) == (
        "retrieve fine-tuning job ftjob-1 failed (HTTP 200): the API answered HTTP 200 with a body that is not "
        "JSON: '<html>login page for ***</html>'. Check that the connection's base URL "
        f"({BASE}) is the API root (it usually ends in /v1). [request_id=req_9]"
    )


def test_interpret_maps_errors_with_all_fields() -> None:
    body = _error_body("No such job", param="fine_tuning_job_id", code="fine_tuning_job_not_found")
    with pytest.raises(FineTuningApiError) as caught:
        interpret(endpoints.retrieve_job("ftjob-9"), CONFIG, 404, {"x-request-id": "req_1"}, body)
    err = caught.value
    assert (err.status, err.type, err.param, err.code, err.request_id, err.operation) == (
        404,
        "invalid_request_error",
        "fine_tuning_job_id",
        "fine_tuning_job_not_found",
        "req_1",
        "retrieve fine-tuning job ftjob-9",
    )
    assert err.api_message == (
        "fine-tuning job ftjob-9 was not found (No such job). Check the id and that the connection's key "
        "belongs to the project that owns it."
    )


def test_interpret_redacts_a_key_the_server_echoes() -> None:
    with pytest.raises(FineTuningApiError) as caught:
        interpret(endpoints.list_files(), CONFIG, 401, {}, _error_body(f"Incorrect API key provided: {KEY}."))
    err = caught.value
    assert err.api_message == "Incorrect API key provided: ***."
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in "".join(map(str, err.args))


def test_interpret_gateway_page_without_envelope() -> None:
    with pytest.raises(FineTuningApiError) as caught:
        interpret(endpoints.list_files(), CONFIG, 502, {}, b"<html>Bad Gateway</html>")
    assert caught.value.api_message == "unexpected answer: '<html>Bad Gateway</html>'"


# --- after_answer / after_failure ---------------------------------------------------------------------


def test_after_answer_success_and_retry_delays() -> None:
    req = endpoints.retrieve_job("ftjob-1")
    state = RetryPolicy(max_retries=3, base_delay=9).start()
    assert after_answer(req, CONFIG, state, 200, {}, b'{"id": "ftjob-1"}') == ({"id": "ftjob-1"}, None)
    assert after_answer(req, CONFIG, state, 429, {"retry-after-ms": "250"}, _error_body()) == (_RETRY, 0.25)
    assert after_answer(req, CONFIG, state, 429, {"Retry-After": "3"}, _error_body()) == (_RETRY, 3.0)
    assert state.retries == 2


def test_after_answer_gives_up_on_a_retry_after_beyond_the_policy() -> None:
    state = RetryPolicy(max_retry_after=60).start()
    with pytest.raises(FineTuningApiError) as caught:
        after_answer(endpoints.list_files(), CONFIG, state, 429, {"retry-after-ms": "90000"}, _error_body("slow"))
    assert caught.value.status == 429 and state.retries == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_after_answer_never_retries_client_errors(status: int) -> None:
    state = RetryPolicy().start()
    with pytest.raises(FineTuningApiError) as caught:
        after_answer(endpoints.list_files(), CONFIG, state, status, {}, _error_body())
    assert (caught.value.status, caught.value.maybe_committed, state.retries) == (status, False, 0)


def test_after_answer_on_a_create() -> None:
    req = endpoints.create_job({"model": "m", "training_file": "f"})
    # 500: the application may have run, so the create is not resent and the caller must reconcile.
    state = RetryPolicy().start(idempotent=False)
    with pytest.raises(FineTuningApiError) as caught:
        after_answer(req, CONFIG, state, 500, {}, _error_body("boom"))
    assert (caught.value.status, caught.value.maybe_committed, state.retries) == (500, True, 0)
    # 503 and 429: turned away before the application, safe to resend.
    state = RetryPolicy(base_delay=0.5).start(idempotent=False)
    assert after_answer(req, CONFIG, state, 503, {}, _error_body())[0] is _RETRY
    assert after_answer(req, CONFIG, state, 429, {"retry-after-ms": "10"}, _error_body()) == (_RETRY, 0.01)


def test_after_answer_exhausted_has_the_hint() -> None:
    state = RetryPolicy(max_retries=1, base_delay=0.01).start()
    req = endpoints.list_files()
    assert after_answer(req, CONFIG, state, 502, {}, _error_body())[0] is _RETRY
    with pytest.raises(FineTuningApiError) as caught:
        after_answer(req, CONFIG, state, 502, {}, _error_body("bad gateway"))
    assert str(caught.value) == (
        "list files failed (HTTP 502): bad gateway [type=invalid_request_error] "
        "The service had a problem and retries were exhausted; try again later."
    )


def test_after_failure_on_a_create() -> None:
    req = endpoints.create_job({"model": "m", "training_file": "f"})
    state = RetryPolicy(base_delay=0.5).start(idempotent=False)
    delay = after_failure(req, CONFIG, state, Failure.CONNECT, ConnectionRefusedError(111, "refused"))
    assert 0.375 <= delay <= 0.625  # nothing was sent: retried with backoff
    for failure in (Failure.DISCONNECT, Failure.TIMEOUT):
        with pytest.raises(FineTuningApiError) as caught:
            after_failure(req, CONFIG, state, failure, ConnectionResetError(104, "reset"))
        assert caught.value.maybe_committed is True
    assert state.retries == 1


def test_after_failure_messages() -> None:
    req = endpoints.list_files()
    state = RetryPolicy(max_retries=0).start()
    with pytest.raises(FineTuningApiError) as caught:
        after_failure(req, CONFIG, state, Failure.TIMEOUT, TimeoutError("timed out"))
    assert str(caught.value) == (
        f"list files failed: got no answer in time from {BASE} (timed out); "
        "the timeout is 7s (connection extra 'timeout')"
    )
    assert caught.value.maybe_committed is False
    with pytest.raises(FineTuningApiError) as caught:
        after_failure(req, CONFIG, state, Failure.CONNECT, OSError(f"proxy refused Bearer {KEY}"))
    assert str(caught.value) == f"list files failed: could not connect to {BASE} (OSError: proxy refused Bearer ***)"
    with pytest.raises(FineTuningApiError) as caught:
        after_failure(req, CONFIG, state, Failure.DISCONNECT, ConnectionResetError(104, "Connection reset by peer"))
    assert str(caught.value) == f"list files failed: lost the connection to {BASE} (connection reset by the server)"


# --- real network failures and their classification ---------------------------------------------------


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def raw_server(behaviour: str) -> Iterator[tuple[str, list[int]]]:
    """A TCP server that reads one request per connection, then: 'silent' (never answers), 'close'
    (FIN), 'reset' (RST) or 'redirect' (307 to itself). Yields its base URL and a connection count."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    stop = threading.Event()
    accepted: list[int] = []
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(1)
            held.append(conn)
            conn.recv(65536)
            if behaviour == "close":
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            elif behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif behaviour == "redirect":
                conn.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v1/again\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@contextmanager
def full_backlog() -> Iterator[str]:
    """A listener whose accept queue is full: new connections stall in the handshake (connect timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(server.getsockname())
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield url
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def _requests_error(url: str, timeout: tuple[float, float] = (1.0, 0.3)) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as caught:
        requests.get(url + "/files", timeout=timeout)
    return caught.value


def _httpx_error(url: str, timeout: httpx.Timeout | None = None) -> httpx.TransportError:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=timeout or httpx.Timeout(0.3, connect=1.0)) as client:
            await client.get(url + "/files")

    with pytest.raises(httpx.TransportError) as caught:
        asyncio.run(main())
    return caught.value


def test_requests_errors_are_classified() -> None:
    refused = _requests_error(f"http://127.0.0.1:{_closed_port()}/v1")
    assert type(refused) is requests.ConnectionError
    assert _classify_requests_error(refused) is Failure.CONNECT
    assert _describe_failure(refused) == "connection refused"  # not urllib3's "HTTPConnectionPool(...)"
    with full_backlog() as url:
        stalled = _requests_error(url, timeout=(0.2, 1.0))
    assert type(stalled) is requests.ConnectTimeout
    assert _classify_requests_error(stalled) is Failure.CONNECT
    assert _describe_failure(stalled) == "connecting timed out"
    with raw_server("silent") as (url, _):
        silent = _requests_error(url)
    assert type(silent) is requests.ReadTimeout
    assert _classify_requests_error(silent) is Failure.TIMEOUT
    assert _describe_failure(silent) == "read timed out"
    for behaviour, description in (
        ("close", "the server closed the connection without answering"),
        ("reset", "connection reset by the server"),
    ):
        with raw_server(behaviour) as (url, _):
            dropped = _requests_error(url)
        assert type(dropped) is requests.ConnectionError
        assert _classify_requests_error(dropped) is Failure.DISCONNECT, behaviour
        assert _describe_failure(dropped) == description


def test_httpx_errors_are_classified() -> None:
    refused = _httpx_error(f"http://127.0.0.1:{_closed_port()}/v1")
    assert type(refused) is httpx.ConnectError
    assert _classify_httpx_error(refused) is Failure.CONNECT
    assert _describe_failure(refused) == "connection refused"
    with full_backlog() as url:
        stalled = _httpx_error(url, httpx.Timeout(1.0, connect=0.2))
    assert type(stalled) is httpx.ConnectTimeout
    assert _classify_httpx_error(stalled) is Failure.CONNECT
    assert _classify_httpx_error(httpx.PoolTimeout("all connections busy")) is Failure.CONNECT
    with raw_server("silent") as (url, _):
        silent = _httpx_error(url)
    assert type(silent) is httpx.ReadTimeout
    assert _classify_httpx_error(silent) is Failure.TIMEOUT
    assert _describe_failure(silent) == "read timed out"  # httpx's own text is empty here
    with raw_server("close") as (url, _):
        closed = _httpx_error(url)
    assert type(closed) is httpx.RemoteProtocolError
    assert _classify_httpx_error(closed) is Failure.DISCONNECT
    with raw_server("reset") as (url, _):
        reset = _httpx_error(url)
    assert isinstance(reset, httpx.ReadError | httpx.RemoteProtocolError)
    assert _classify_httpx_error(reset) is Failure.DISCONNECT
    assert _describe_failure(reset) == "connection reset by the server"


# --- the send loops over real sockets -------------------------------------------------------------------


def _config(url: str, **kwargs: Any) -> ClientConfig:
    return ClientConfig(api_key=ApiKey(KEY), base_url=url, **kwargs)


CREATE = endpoints.create_job({"model": "gpt-4o-mini", "training_file": "file-1"})
POLICY = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.001)


def test_sync_send_retries_a_refused_create_and_reports_it() -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(FineTuningApiError) as caught:
        SyncTransport(_config(url), POLICY, sleep=sleeps.append).send(CREATE)
    assert str(caught.value) == f"create fine-tuning job failed: could not connect to {url} (connection refused)"
    assert (len(sleeps), caught.value.maybe_committed) == (2, False)


def test_sync_send_never_resends_a_create_whose_connection_dropped() -> None:
    sleeps: list[float] = []
    with raw_server("close") as (url, accepted):
        with pytest.raises(FineTuningApiError, match="lost the connection") as caught:
            SyncTransport(_config(url), POLICY, sleep=sleeps.append).send(CREATE)
        assert (len(accepted), sleeps, caught.value.maybe_committed) == (1, [], True)
        with pytest.raises(FineTuningApiError, match="lost the connection") as caught:
            SyncTransport(_config(url), POLICY, sleep=sleeps.append).send(endpoints.list_files())
        assert (len(accepted), len(sleeps), caught.value.maybe_committed) == (4, 2, False)


def test_sync_send_times_out_with_the_configured_timeout() -> None:
    with raw_server("silent") as (url, _), pytest.raises(FineTuningApiError) as caught:
        SyncTransport(_config(url, timeout=0.2), RetryPolicy(max_retries=0)).send(endpoints.list_files())
    assert str(caught.value).endswith("; the timeout is 0.2s (connection extra 'timeout')")


def test_sync_send_reports_redirects_instead_of_following_them() -> None:
    with raw_server("redirect") as (url, accepted), pytest.raises(FineTuningApiError) as caught:
        SyncTransport(_config(url, timeout=2), POLICY).send(CREATE)
    assert (caught.value.status, len(accepted)) == (307, 1)


def test_sync_local_errors_are_raised_at_once() -> None:
    bad_header = requests.exceptions.InvalidHeader("Invalid leading whitespace in header value")
    sender, session, sleeps = _sync([bad_header, (200, {}, b"{}")])
    with pytest.raises(FineTuningApiError) as caught:
        sender.send(endpoints.list_files())
    assert str(caught.value) == (
        f"list files failed: could not send the request to {BASE} "
        "(InvalidHeader: Invalid leading whitespace in header value)"
    )
    assert (sleeps, caught.value.maybe_committed, len(session.sent)) == ([], False, 1)


def test_sync_send_retries_answers_then_returns() -> None:
    sender, _, sleeps = _sync(
        [(503, {}, _error_body()), (429, {"retry-after-ms": "40"}, _error_body()), (200, {}, b"[]")]
    )
    assert sender.send(endpoints.list_files()) == []
    assert len(sleeps) == 2 and sleeps[1] == 0.04


def _async_send(
    config: ClientConfig, req: endpoints.ApiRequest, handler: Callable[[httpx.Request], httpx.Response] | None = None
) -> tuple[Any, list[float]]:
    awaited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        awaited.append(seconds)

    async def main() -> Any:
        if handler is None:
            return await AsyncTransport(config, POLICY, sleep=fake_sleep).send(req)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await AsyncTransport(config, POLICY, client=client, sleep=fake_sleep).send(req)

    try:
        return asyncio.run(main()), awaited
    except FineTuningApiError as err:
        err.awaited = awaited  # type: ignore[attr-defined]
        raise


def test_async_send_over_real_sockets() -> None:
    with pytest.raises(FineTuningApiError, match="could not connect to") as caught:
        _async_send(_config(f"http://127.0.0.1:{_closed_port()}/v1"), CREATE)
    assert (len(caught.value.awaited), caught.value.maybe_committed) == (2, False)  # type: ignore[attr-defined]
    with (
        raw_server("close") as (url, accepted),
        pytest.raises(FineTuningApiError, match="lost the connection") as caught,
    ):
        _async_send(_config(url), CREATE)
    assert (len(accepted), caught.value.awaited, caught.value.maybe_committed) == (1, [], True)  # type: ignore[attr-defined]


def test_async_local_errors_are_raised_at_once() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.LocalProtocolError("Illegal header value b'org\\n'")

    with pytest.raises(FineTuningApiError) as caught:
        _async_send(CONFIG, endpoints.list_files(), handler)
    assert str(caught.value) == (
        f"list files failed: could not send the request to {BASE} (LocalProtocolError: Illegal header value b'org\\n')"
    )
    assert (len(calls), caught.value.awaited) == (1, [])  # type: ignore[attr-defined]


def test_async_send_retries_answers_then_returns() -> None:
    answers = [httpx.Response(503, content=_error_body()), httpx.Response(200, json={"ok": True})]
    result, awaited = _async_send(CONFIG, endpoints.list_files(), lambda request: answers.pop(0))
    assert result == {"ok": True} and len(awaited) == 1


def test_loop_client_bounds_requests_per_pool_and_in_total() -> None:
    """At most PER_SHARD requests per httpx pool and MAX_IN_FLIGHT in all, however many callers wait."""
    import asyncio
    import ssl

    from airflow_provider_ft.api import transport as t

    async def main() -> tuple[int, int]:
        lc = t._LoopClient(ssl.create_default_context())
        worst_shard = worst_total = 0

        async def one() -> None:
            nonlocal worst_shard, worst_total
            async with lc.lease():
                worst_shard = max(worst_shard, *lc.in_flight)
                worst_total = max(worst_total, sum(lc.in_flight))
                await asyncio.sleep(0.001)

        await asyncio.gather(*(one() for _ in range(500)))
        assert lc.in_flight == [0] * t.SHARDS
        await lc.aclose()
        return worst_shard, worst_total

    worst_shard, worst_total = asyncio.run(main())
    assert worst_shard == t.PER_SHARD
    assert worst_total == t.MAX_IN_FLIGHT
