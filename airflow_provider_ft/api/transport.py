"""Sending ``ApiRequest``s: over a ``requests.Session`` (sync) or a shared ``httpx.AsyncClient`` (async).

Both transports share request preparation, response interpretation and the retry loop's decisions
(``policy.RetryState``); only the I/O calls differ. Heavy imports (requests, httpx) happen when a
transport is built, not when this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_ft import __version__
from airflow_provider_ft.api.config import ClientConfig
from airflow_provider_ft.api.endpoints import ApiRequest
from airflow_provider_ft.api.errors import FineTuningApiError, ResponseFormatError, error_from_response
from airflow_provider_ft.api.policy import Failure, Outcome, RetryPolicy, RetryState

if TYPE_CHECKING:
    import httpx
    import requests

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-ft/{__version__}"
# Bound on requests in flight per event loop: past ~32, httpcore's pool bookkeeping grows with
# queued requests x connections and stalls the triggerer's loop (see README, Performance).
MAX_IN_FLIGHT = 32
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class PreparedCall:
    method: str
    url: str
    headers: dict[str, str]
    params: list[tuple[str, str]]
    json: Mapping[str, Any] | None
    data: dict[str, str] | None
    files: dict[str, tuple[str, bytes, str]] | None

    def __repr__(self) -> str:  # headers hold the key
        return f"PreparedCall({self.method} {self.url})"


def prepare(config: ClientConfig, req: ApiRequest) -> PreparedCall:
    if req.json is not None:
        # Checked here so both transports fail the same way, before sending, and without retrying:
        # requests would raise InvalidJSONError or TypeError and httpx ValueError or TypeError.
        try:
            json.dumps(req.json, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise FineTuningApiError(
                f"the request body cannot be sent as JSON ({err}): use only strings, finite numbers, "
                "booleans, null, lists and objects",
                operation=req.operation,
            ) from None
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **config.auth_headers()}
    files = None
    data = None
    if req.upload is not None:
        files = {"file": (req.upload.filename, req.upload.content, req.upload.content_type)}
        data = dict(req.form)
    return PreparedCall(
        method=req.method,
        url=config.base_url + req.path,
        headers=headers,
        params=list(req.params) + config.query_params(),
        json=req.json,
        data=data,
        files=files,
    )


def redact(text: str, config: ClientConfig) -> str:
    """Remove the key from text that came from outside (server messages, library errors)."""
    key = config.api_key.reveal()
    return text.replace(key, "***") if key else text


def interpret(req: ApiRequest, config: ClientConfig, status: int, headers: Mapping[str, str], body: bytes) -> Any:
    """Decode a 2xx body as JSON or raise the mapped error for anything else."""
    if 200 <= status < 300:
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError:
            snippet = redact(body[:120].decode("utf-8", "replace"), config)
            raise ResponseFormatError(
                f"the API answered HTTP {status} with a body that is not JSON: {snippet!r}. Check that "
                f"the connection's base URL ({config.base_url}) is the API root (it usually ends in /v1).",
                status=status,
                request_id=_request_id(headers),
                operation=req.operation,
            ) from None
    err = error_from_response(status, headers, body, operation=req.operation, resource=req.resource)
    err.api_message = redact(err.api_message, config)
    err.args = (redact(str(err), config),)
    return _raise(err)


def _raise(err: Exception) -> Any:
    raise err


def _request_id(headers: Mapping[str, str]) -> str | None:
    for key, value in headers.items():
        if key.lower() == "x-request-id":
            return value
    return None


# Plain words for the causes users meet, found anywhere in an exception's chain (by class name, so
# neither requests nor httpx has to be imported). The libraries' own texts name pool objects and
# "Max retries exceeded" although this client retries by itself.
_PLAIN_CAUSES = {
    "ConnectionRefusedError": "connection refused",
    "ConnectionResetError": "connection reset by the server",
    "ConnectionAbortedError": "connection aborted",
    "BrokenPipeError": "the server closed the connection while the request was being sent",
    "RemoteDisconnected": "the server closed the connection without answering",
    "NameResolutionError": "could not resolve the host name",
    "gaierror": "could not resolve the host name",
    "ConnectTimeout": "connecting timed out",
    "ConnectTimeoutError": "connecting timed out",
    "PoolTimeout": "no free connection in the pool in time",
    "ReadTimeout": "read timed out",
    "ReadTimeoutError": "read timed out",
    "WriteTimeout": "sending timed out",
    "TimeoutError": "timed out",
}
_LIBRARIES = frozenset({"requests", "urllib3", "httpx", "httpcore", "h11", "anyio"})


def _causes(exc: BaseException, limit: int = 12) -> list[BaseException]:
    """The exception and what it wraps: exception args, ``reason`` (urllib3), causes and contexts."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < limit:
        link = pending.pop(0)
        if any(link is seen for seen in found):
            continue
        found.append(link)
        pending += [arg for arg in link.args if isinstance(arg, BaseException)]
        reason = getattr(link, "reason", None)
        pending += [x for x in (reason, link.__cause__, link.__context__) if isinstance(x, BaseException)]
    return found


def _describe_failure(exc: BaseException) -> str:
    """A short, library-neutral description of a network failure."""
    causes = _causes(exc)
    for link in causes:
        plain = _PLAIN_CAUSES.get(type(link).__name__)
        if plain is not None:
            return plain
    # Otherwise the deepest cause outside the HTTP libraries reads best (e.g. an ssl error).
    for link in reversed(causes):
        if type(link).__module__.split(".")[0] not in _LIBRARIES and str(link):
            return f"{type(link).__name__}: {link}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _transport_error(req: ApiRequest, config: ClientConfig, failure: Failure, exc: BaseException) -> FineTuningApiError:
    what = {
        Failure.CONNECT: "could not connect to",
        Failure.TIMEOUT: "got no answer in time from",
        Failure.DISCONNECT: "lost the connection to",
    }[failure]
    maybe = failure is not Failure.CONNECT and not req.idempotent
    message = redact(f"{what} {config.base_url} ({_describe_failure(exc)})", config)
    if failure is Failure.TIMEOUT:
        message += f"; the timeout is {config.timeout:g}s (connection extra 'timeout')"
    return FineTuningApiError(message, operation=req.operation, maybe_committed=maybe)


def _local_error(req: ApiRequest, config: ClientConfig, exc: BaseException) -> FineTuningApiError:
    """The HTTP library refused to build or send the request: nothing left this process, so no retry."""
    message = redact(f"could not send the request to {config.base_url} ({type(exc).__name__}: {exc})", config)
    return FineTuningApiError(message, operation=req.operation)


def _log_retry(req: ApiRequest, outcome: Outcome, delay: float, state: RetryState) -> None:
    why = (
        f"HTTP {outcome.status}" if outcome.status is not None else (outcome.failure.value if outcome.failure else "?")
    )
    log.warning(
        "%s: %s; retrying in %.1fs (retry %d of at most %d)",
        req.operation,
        why,
        delay,
        state.retries,
        state.policy.max_retries,
    )


_RETRY = object()  # sentinel: the step asks for another attempt


def after_answer(
    req: ApiRequest,
    config: ClientConfig,
    state: RetryState,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[Any, float | None]:
    """One answer received: ``(result, None)`` when done, ``(_RETRY, delay)`` to retry; raises otherwise."""
    if 200 <= status < 300:
        return interpret(req, config, status, headers, body), None
    outcome = Outcome(status=status, headers=headers)
    delay = state.next_delay(outcome)
    if delay is None:
        try:
            interpret(req, config, status, headers, body)
        except FineTuningApiError as err:
            err.maybe_committed = outcome.maybe_processed and not req.idempotent
            raise
    assert delay is not None
    _log_retry(req, outcome, delay, state)
    return _RETRY, delay


def after_failure(
    req: ApiRequest, config: ClientConfig, state: RetryState, failure: Failure, exc: BaseException
) -> float:
    """One attempt failed below HTTP: the delay before retrying, or raise the mapped error."""
    outcome = Outcome(failure=failure)
    delay = state.next_delay(outcome)
    if delay is None:
        raise _transport_error(req, config, failure, exc) from None
    _log_retry(req, outcome, delay, state)
    return delay


def _policy_for(config: ClientConfig, policy: RetryPolicy | None) -> RetryPolicy:
    if policy is None:
        return RetryPolicy(max_retries=config.max_retries)
    return policy


# --- sync -----------------------------------------------------------------------------------------


def _classify_requests_error(exc: BaseException) -> Failure:
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure.CONNECT
    if isinstance(exc, requests.exceptions.Timeout):
        return Failure.TIMEOUT
    # A refused or unresolvable connection never sent anything; a dropped one may have.
    chain: BaseException | None = exc
    seen = 0
    while chain is not None and seen < 10:
        name = type(chain).__name__
        if name in ("NewConnectionError", "NameResolutionError", "ConnectionRefusedError"):
            return Failure.CONNECT
        reason = getattr(chain, "reason", None)
        if isinstance(reason, BaseException) and type(reason).__name__ in (
            "NewConnectionError",
            "NameResolutionError",
        ):
            return Failure.CONNECT
        nxt = chain.args[0] if chain.args and isinstance(chain.args[0], BaseException) else None
        chain = nxt or chain.__cause__ or chain.__context__
        seen += 1
    return Failure.DISCONNECT


def _requests_network_errors() -> tuple[type[BaseException], ...]:
    """The requests errors raised by the network (retryable), as opposed to by building the request."""
    import requests

    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    )


class SyncTransport:
    """Blocking transport for workers. One pooled ``requests.Session`` per transport."""

    def __init__(
        self,
        config: ClientConfig,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests

        self.config = config
        self.policy = _policy_for(config, policy)
        self.session = session or requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"SyncTransport(base_url={self.config.base_url!r})"

    def send(self, req: ApiRequest) -> Any:
        import requests

        call = prepare(self.config, req)
        state = self.policy.start(idempotent=req.idempotent)
        while True:
            try:
                resp = self.session.request(
                    call.method,
                    call.url,
                    headers=call.headers,
                    params=call.params or None,
                    json=call.json,
                    data=call.data,
                    files=call.files,
                    timeout=(min(CONNECT_TIMEOUT, self.config.timeout), self.config.timeout),
                    # Like the async transport: a redirect is reported, not followed (requests would
                    # resend a create's body to wherever a 307 points).
                    allow_redirects=False,
                )
            except _requests_network_errors() as exc:
                self._sleep(after_failure(req, self.config, state, _classify_requests_error(exc), exc))
                continue
            except requests.exceptions.RequestException as exc:
                # InvalidHeader, InvalidURL, InvalidJSONError...: retrying cannot help, and calling them a
                # lost connection would make a create look possibly committed when it never left.
                raise _local_error(req, self.config, exc) from None
            result, delay = after_answer(req, self.config, state, resp.status_code, dict(resp.headers), resp.content)
            if delay is None:
                return result
            self._sleep(delay)

    def close(self) -> None:
        self.session.close()


# --- async ----------------------------------------------------------------------------------------


# In-flight requests are spread over small pools: httpcore re-checks every pooled connection each
# time a request enters or leaves a pool, so one pool of 32 costs far more CPU per request than
# 8 pools of 4 (bench/: at 3,000 waits, 10 ms vs 3.4 ms per poll).
SHARDS = 8
PER_SHARD = max(1, MAX_IN_FLIGHT // SHARDS)


class _LoopClient:
    """The HTTP clients of one event loop, with at most MAX_IN_FLIGHT requests in flight."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        import httpx

        limits = httpx.Limits(max_connections=PER_SHARD, max_keepalive_connections=PER_SHARD, keepalive_expiry=60.0)
        self.clients = [httpx.AsyncClient(limits=limits, follow_redirects=False, verify=tls) for _ in range(SHARDS)]
        self.in_flight = [0] * SHARDS
        self.slots = asyncio.Semaphore(SHARDS * PER_SHARD)

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client with a free connection (the global bound guarantees one exists)."""
        async with self.slots:
            shard = min(range(SHARDS), key=self.in_flight.__getitem__)
            self.in_flight[shard] += 1
            try:
                yield self.clients[shard]
            finally:
                self.in_flight[shard] -= 1

    @property
    def is_closed(self) -> bool:
        return any(client.is_closed for client in self.clients)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


# One set of clients per event loop (the triggerer runs all triggers on one loop): connections are
# pooled across triggers, and a client never crosses loops.
_loop_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = weakref.WeakKeyDictionary()
_tls_context: ssl.SSLContext | None = None


def _make_tls_context() -> ssl.SSLContext:
    try:
        import certifi  # what httpx verifies against by default

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


async def _loop_client() -> _LoopClient:
    global _tls_context
    loop = asyncio.get_running_loop()
    client = _loop_clients.get(loop)
    if client is None or client.is_closed:
        if _tls_context is None:
            # Loading CA certificates takes 20-40 ms of CPU: never on the loop, and once per process.
            _tls_context = await asyncio.to_thread(_make_tls_context)
        client = _loop_clients.get(loop)
        if client is None or client.is_closed:
            client = _LoopClient(_tls_context)
            _loop_clients[loop] = client
    return client


async def aclose_loop_client() -> None:
    """Close this loop's shared clients (tests, benchmarks, shutdown)."""
    client = _loop_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _classify_httpx_error(exc: BaseException) -> Failure:
    import httpx

    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure.CONNECT
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    return Failure.DISCONNECT


class AsyncTransport:
    """Non-blocking transport for triggers, on the loop's shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        config: ClientConfig,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.policy = _policy_for(config, policy)
        self._client = client
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"AsyncTransport(base_url={self.config.base_url!r})"

    async def send(self, req: ApiRequest) -> Any:
        import httpx

        call = prepare(self.config, req)
        state = self.policy.start(idempotent=req.idempotent)
        timeout = httpx.Timeout(self.config.timeout, connect=min(CONNECT_TIMEOUT, self.config.timeout))
        while True:
            shared = await _loop_client()
            try:
                async with shared.lease() as leased:
                    client = self._client or leased
                    resp = await client.request(
                        call.method,
                        call.url,
                        headers=call.headers,
                        params=list(call.params) or None,  # type: ignore[arg-type]
                        json=call.json,
                        data=call.data,
                        files=call.files,
                        timeout=timeout,
                    )
            except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
                await self._sleep(after_failure(req, self.config, state, _classify_httpx_error(exc), exc))
                continue
            except httpx.TransportError as exc:
                # LocalProtocolError (e.g. an illegal header value), UnsupportedProtocol: never sent.
                raise _local_error(req, self.config, exc) from None
            result, delay = after_answer(req, self.config, state, resp.status_code, dict(resp.headers), resp.content)
            if delay is None:
                return result
            await self._sleep(delay)
