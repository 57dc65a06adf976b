"""HTTP front of the simulator: routing, auth, error envelope, multipart, fault injection.

The OpenAI dialect serves ``/v1``; the Azure dialect serves ``/openai/v1`` and the dated
``/openai`` API instead (see azure.py), over the same store.

Built on ``http.server.ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive) so
it needs nothing outside the standard library and can serve about a thousand concurrent pollers.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_ft.simulator import azure
from airflow_provider_ft.simulator.azure import DIALECTS, Api, Dialect
from airflow_provider_ft.simulator.errors import ApiError, invalid
from airflow_provider_ft.simulator.faults import FaultInjector, FaultPlan
from airflow_provider_ft.simulator.multipart import Form, MultipartError, parse_multipart
from airflow_provider_ft.simulator.state import RecordedRequest, SimulatorState

log = logging.getLogger(__name__)

API_PREFIX = azure.OPENAI_PREFIX
ADMIN_PREFIX = "/__simulator__"
MAX_BODY_BYTES = 64 * 1024 * 1024
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
    "not valid JSON.)"
)
_FAULT_MESSAGES = {
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    json_error: bool = False
    form: Form | None = None
    form_error: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.one(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(f"Invalid '{name}': expected an integer, got {raw!r}.", name, "invalid_type") from None
        if not low <= value <= high:
            raise invalid(f"Invalid '{name}': must be between {low} and {high}, got {value}.", name, "invalid_value")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.one(name) or default
        if value not in allowed:
            raise invalid(
                f"Invalid '{name}': expected one of {', '.join(allowed)}, got {value!r}.",
                name,
                "invalid_value",
            )
        return value

    def json_body(self, required: bool = True) -> Any:
        if self.json_error:
            raise invalid(_BAD_JSON, None, "invalid_json")
        if self.json is None and required:
            raise invalid("This request needs a JSON body.", None, "missing_body")
        return self.json


Handler = Callable[[SimulatorState, _Request], dict[str, Any]]


def _list_files(state: SimulatorState, req: _Request) -> dict[str, Any]:
    return state.list_files(
        purpose=req.one("purpose"),
        limit=req.integer("limit", 10000, 1, 10000),
        order=req.choice("order", "desc", ("asc", "desc")),
        after=req.one("after"),
    )


def _create_file(state: SimulatorState, req: _Request) -> dict[str, Any]:
    if req.form is None:
        raise invalid(
            req.form_error or "Uploads must be sent as multipart/form-data with fields 'file' and 'purpose'.",
            None,
            "invalid_content_type",
        )
    fields = dict(req.form.fields)
    upload = req.form.files.get("file")
    if upload is None:
        raise invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    purpose = fields.pop("purpose", None)
    if purpose is None:
        raise invalid("Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter")
    expires: dict[str, Any] | None = None
    for key in list(fields):
        if key in ("expires_after[anchor]", "expires_after[seconds]"):
            expires = expires or {}
            expires[key[len("expires_after[") : -1]] = fields.pop(key)
    for key in fields:
        raise invalid(f"Unrecognized request argument supplied: {key}", key, "unknown_parameter")
    if expires is not None:
        for part in ("anchor", "seconds"):
            if part not in expires:
                raise invalid(
                    f"Missing required parameter: 'expires_after[{part}]'.",
                    f"expires_after.{part}",
                    "missing_required_parameter",
                )
        try:
            expires["seconds"] = int(expires["seconds"])
        except ValueError:
            raise invalid(
                "Invalid 'expires_after.seconds': expected an integer.",
                "expires_after.seconds",
                "invalid_type",
            ) from None
    return state.create_file(filename=upload.filename, content=upload.content, purpose=purpose, expires_after=expires)


def _list_jobs(state: SimulatorState, req: _Request) -> dict[str, Any]:
    metadata = {
        key[len("metadata[") : -1]: values[-1]
        for key, values in req.query.items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    return state.list_jobs(after=req.one("after"), limit=req.integer("limit", 20, 1, 100), metadata=metadata or None)


def _list_permissions(state: SimulatorState, req: _Request) -> dict[str, Any]:
    return state.list_permissions(
        req.params["fine_tuned_model_checkpoint"],
        project_id=req.one("project_id"),
        after=req.one("after"),
        limit=req.integer("limit", 10, 1, 100),
        order=req.choice("order", "descending", ("ascending", "descending")),
    )


_JOB = ("fine_tuning", "jobs", "{fine_tuning_job_id}")
_PERMS = ("fine_tuning", "checkpoints", "{fine_tuned_model_checkpoint}", "permissions")
ROUTES: list[tuple[str, tuple[str, ...], Handler]] = [
    ("GET", ("files",), _list_files),
    ("POST", ("files",), _create_file),
    ("GET", ("files", "{file_id}"), lambda s, r: s.get_file(r.params["file_id"])),
    ("DELETE", ("files", "{file_id}"), lambda s, r: s.delete_file(r.params["file_id"])),
    ("POST", ("fine_tuning", "jobs"), lambda s, r: s.create_job(r.json_body())),
    ("GET", ("fine_tuning", "jobs"), _list_jobs),
    ("GET", _JOB, lambda s, r: s.get_job(r.params["fine_tuning_job_id"])),
    ("POST", (*_JOB, "cancel"), lambda s, r: s.cancel_job(r.params["fine_tuning_job_id"])),
    ("POST", (*_JOB, "pause"), lambda s, r: s.pause_job(r.params["fine_tuning_job_id"])),
    ("POST", (*_JOB, "resume"), lambda s, r: s.resume_job(r.params["fine_tuning_job_id"])),
    (
        "GET",
        (*_JOB, "events"),
        lambda s, r: s.list_events(
            r.params["fine_tuning_job_id"], after=r.one("after"), limit=r.integer("limit", 20, 1, 100)
        ),
    ),
    (
        "GET",
        (*_JOB, "checkpoints"),
        lambda s, r: s.list_checkpoints(
            r.params["fine_tuning_job_id"], after=r.one("after"), limit=r.integer("limit", 10, 1, 100)
        ),
    ),
    ("GET", _PERMS, _list_permissions),
    (
        "POST",
        _PERMS,
        lambda s, r: s.create_permissions(r.params["fine_tuned_model_checkpoint"], r.json_body()),
    ),
    (
        "DELETE",
        (*_PERMS, "{permission_id}"),
        lambda s, r: s.delete_permission(r.params["fine_tuned_model_checkpoint"], r.params["permission_id"]),
    ),
]


def route(method: str, segments: list[str], prefix: str = API_PREFIX) -> tuple[Handler, dict[str, str]]:
    """Find the handler for ``segments`` (the path after ``prefix``, split and unquoted)."""
    allowed = []
    for want_method, template, handler in ROUTES:
        if len(template) != len(segments):
            continue
        params = {}
        for want, got in zip(template, segments, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            if want_method == method:
                return handler, params
            allowed.append(want_method)
    path = prefix + "/" + "/".join(segments)
    if allowed:
        raise ApiError(
            405,
            f"Method {method} is not allowed for {path}; use {', '.join(allowed)}.",
            code="method_not_allowed",
            headers={"Allow": ", ".join(allowed)},
        )
    raise ApiError(404, f"Invalid URL ({method} {path})", code="unknown_url")


def mask_key(key: str) -> str:
    """Enough of a key to recognise it, never enough to use it."""
    return f"{key[:6]}***" if len(key) > 12 else "***"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # don't keep a list of every connection thread ever started
    request_queue_size = 2048  # listen backlog: a thousand pollers may connect at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every keep-alive thread so stop() leaves nothing serving."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ft-simulator"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    timeout = 120  # idle keep-alive connections give their thread back eventually
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Protocol-level failures (bad request line, oversized headers) get the envelope too.
        self.close_connection = True
        error = ApiError(code, message or "Bad request", code=None)
        self._send(code, error.body(), _request_id(), error.headers)

    # ---- plumbing -------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise ApiError(413, "Request body too large.", code="request_too_large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "Request body too large.", code="request_too_large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: object, request_id: str, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", request_id)
            self.send_header("openai-version", "2020-10-01")
            if self.server.simulator.dialect == "azure":
                self.send_header("apim-request-id", str(uuid.uuid4()))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the client went away; nothing to answer
            self.close_connection = True

    def _drop(self, *, reset: bool) -> None:
        """Close without answering: RST for a reset, FIN for a lost response."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # The fd only closes once the handler's file objects are closed too.
                self.wfile.close()
                self.rfile.close()
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self) -> None:
        request_id = _request_id()
        sim = self.server.simulator
        url = urlsplit(self.path)
        path = url.path
        api = azure.api_for(sim.dialect, path)
        try:
            body = self._read_body()
        except (ApiError, ValueError) as exc:
            self.close_connection = True  # the stream position is unknown now
            error = exc if isinstance(exc, ApiError) else invalid("Malformed request body.")
            self._send(error.status, _envelope(api, error), request_id)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        req = _Request(self.command, path, parse_qs(url.query, keep_blank_values=True), headers, body)
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            self._answer(request_id, lambda: sim.admin(req, self._admin_auth_error(sim, headers)))
            return
        if api is None:
            if sim.dialect == "azure":
                self._send(404, azure.error_body(azure.not_found()), request_id)
            else:
                error = ApiError(404, f"Invalid URL ({self.command} {path})", code="unknown_url")
                self._send(404, error.body(), request_id)
            return
        _parse_body(req)
        record = _record(req)
        sim.state.requests.append(record)
        auth_error = azure.auth_error(headers, sim.api_key) if api.azure else self._auth_error(sim.api_key)
        if auth_error is not None:
            record.status = 401
            self._send(401, azure.error_body(auth_error) if api.azure else auth_error.body(), request_id)
            return
        version_error = azure.api_version_error(req.query) if api.dated else None
        if version_error is not None:
            record.status = version_error.status
            self._send(version_error.status, _envelope(api, version_error), request_id)
            return
        # Fault rules name OpenAI paths (/v1/...); each API's path maps onto them.
        decision = sim.faults.decide(self.command, API_PREFIX + api.rest(path))
        record.fault = decision.label
        if decision.reset:
            self._drop(reset=True)
            return
        if decision.delay > 0:
            time.sleep(decision.delay)
        if decision.status is not None:
            record.status = decision.status
            message, kind, code = _FAULT_MESSAGES.get(decision.status, _FAULT_MESSAGES[500])
            headers_out = {}
            if decision.status == 429:
                seconds = max(decision.retry_after, 0.001)
                headers_out = {
                    "retry-after-ms": str(int(seconds * 1000)),
                    # The spec's header is whole seconds, at least 1.
                    "Retry-After": str(max(1, int(-(-seconds // 1)))),
                }
            error = ApiError(decision.status, message, type=kind, code=code, headers=headers_out)
            self._send(error.status, _envelope(api, error), request_id, error.headers)
            return
        segments = [unquote(s) for s in api.rest(path).strip("/").split("/")]
        status, payload, headers_out = _dispatch(sim.state, req, segments, api)
        record.status = status
        if decision.lose_response:
            self._drop(reset=False)
            return
        self._send(status, payload, request_id, headers_out)

    def _answer(self, request_id: str, compute: Callable[[], dict[str, Any]]) -> None:
        try:
            self._send(200, compute(), request_id)
        except ApiError as exc:
            self._send(exc.status, exc.body(), request_id, exc.headers)

    def _admin_auth_error(self, sim: Simulator, headers: dict[str, str]) -> ApiError | None:
        # The Azure dialect's admin endpoints also take its api-key header.
        if sim.dialect == "azure" and azure.auth_error(headers, sim.api_key) is None:
            return None
        return self._auth_error(sim.api_key)

    def _auth_error(self, api_key: str) -> ApiError | None:
        header = self.headers.get("Authorization")
        if not header:
            return ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key "
                "in an Authorization header using Bearer auth (i.e. Authorization: "
                "Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.encode(), api_key.encode()):
            return ApiError(
                401,
                f"Incorrect API key provided: {mask_key(key)}. Check the key given to the simulator.",
                code="invalid_api_key",
            )
        return None


def _envelope(api: Api | None, error: ApiError) -> dict[str, Any]:
    """The error body as ``api`` writes it (Azure's envelope in the dated API)."""
    return azure.error_body(error) if api is not None and api.dated else error.body()


def _request_id() -> str:
    return "req_" + os.urandom(16).hex()


def _parse_body(req: _Request) -> None:
    content_type = req.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        try:
            req.form = parse_multipart(content_type, req.body)
        except MultipartError as exc:
            req.form_error = f"Could not parse the multipart/form-data body: {exc}."
    elif req.body.strip():
        try:
            req.json = json.loads(req.body)
        except ValueError:
            req.json_error = True


def _record(req: _Request) -> RecordedRequest:
    headers = dict(req.headers)
    if "authorization" in headers:
        headers["authorization"] = "Bearer ***"
    if "api-key" in headers:
        headers["api-key"] = "***"
    record = RecordedRequest(
        method=req.method, path=req.path, query=req.query, headers=headers, json=req.json, time=time.time()
    )
    if req.form is not None:
        record.form = dict(req.form.fields)
        for name, upload in req.form.files.items():
            record.form[name] = upload.filename
            record.files[name] = {"filename": upload.filename, "bytes": len(upload.content)}
    return record


def _dispatch(
    state: SimulatorState, req: _Request, segments: list[str], api: Api = azure.OPENAI_API
) -> tuple[int, dict[str, Any], dict[str, str]]:
    try:
        if api.dated and azure.dated_route_excluded(segments):
            raise azure.not_found()
        handler, req.params = route(req.method, segments, api.prefix)
        payload = handler(state, req)
        if api.dated:
            return azure.dated_status(req.method, segments), azure.dated_view(state, payload), {}
        return 200, payload, {}
    except ApiError as exc:
        return exc.status, _envelope(api, exc), exc.headers
    except Exception:  # a simulator bug must still answer in the API's envelope
        log.exception("simulator error on %s %s", req.method, req.path)
        error = ApiError(500, _FAULT_MESSAGES[500][0], type="server_error")
        return 500, _envelope(api, error), {}


class Simulator:
    """An offline OpenAI fine-tuning API on 127.0.0.1, for tests and demos.

    ``start()`` serves in daemon threads; ``base_url`` ends in ``/v1`` like the real API.
    ``clock`` (unix seconds) drives every job's lifecycle; pass a fake one for deterministic
    tests. ``faults`` injects errors into API requests (see FaultPlan; rules name /v1 paths).

    ``dialect="azure"`` speaks Azure OpenAI instead: ``base_url`` is the OpenAI-compatible
    ``.../openai/v1`` API and ``azure_dated_url`` the dated ``.../openai`` API (``api-version``
    query parameter), both authenticated by an ``api-key`` header (see azure.py).
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-simulator",
        seconds_per_step: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
        organization: str = "org-simulator",
        faults: FaultPlan | None = None,
        max_recorded_requests: int = 10_000,
        dialect: Dialect = "openai",
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
        self.api_key = api_key
        self.dialect: Dialect = dialect
        self.host = host
        self._port = port
        self.state = SimulatorState(
            seconds_per_step=seconds_per_step,
            clock=clock,
            seed=seed,
            organization=organization,
            max_recorded_requests=max_recorded_requests,
        )
        self.faults = FaultInjector(faults)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> Simulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long stop() may wait for the accept loop
            name=f"ft-simulator-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Root URL (the admin endpoints live under it, outside /v1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style API: ``.../v1``, or ``.../openai/v1`` in the Azure dialect."""
        return self.url + (azure.AZURE_V1_PREFIX if self.dialect == "azure" else API_PREFIX)

    @property
    def azure_dated_url(self) -> str:
        """The Azure dialect's dated API, ``.../openai`` (send ``?api-version=...``)."""
        if self.dialect != "azure":
            raise ValueError("azure_dated_url needs Simulator(dialect='azure')")
        return self.url + azure.AZURE_PREFIX

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Replace the fault plan (None: no faults); counters and RNG start afresh."""
        self.faults.set_plan(plan)

    # ---- admin endpoints (outside the APIs, never faulted) --------------------------------
    def admin(self, req: _Request, auth_error: ApiError | None) -> dict[str, Any]:
        if auth_error is not None:
            raise auth_error
        _parse_body(req)
        parts = req.path[len(ADMIN_PREFIX) :].strip("/").split("/")
        if parts == ["faults"] and req.method == "GET":
            return self.faults.plan.to_dict()
        if parts == ["faults"] and req.method == "PUT":
            body = req.json_body(required=False)
            if body is not None and not isinstance(body, dict):
                raise invalid("The fault plan must be a JSON object.")
            try:
                self.set_faults(FaultPlan.from_dict(body) if body else None)
            except (ValueError, TypeError) as exc:
                raise invalid(f"Invalid fault plan: {exc}") from None
            return self.faults.plan.to_dict()
        if parts == ["reset"] and req.method == "POST":
            self.state.reset()
            self.set_faults(None)
            return {"reset": True}
        if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "fail" and req.method == "POST":
            body = req.json_body(required=False) or {}
            if not isinstance(body, dict):
                raise invalid("The body must be a JSON object.")
            return self.state.fail_job(
                parts[1],
                str(body.get("code", "server_error")),
                str(body.get("message", "The job failed due to an internal server error.")),
            )
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")
