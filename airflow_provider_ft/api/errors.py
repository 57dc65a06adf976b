"""The one error type of the client, and how an HTTP answer or a transport failure becomes one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Under Airflow the error is an AirflowException, so tasks fail the usual way; the core works without it.
try:
    from airflow.exceptions import AirflowException as _Base  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only outside Airflow
    _Base = Exception  # type: ignore[assignment,misc]


class FineTuningApiError(_Base):  # type: ignore[misc,valid-type]
    """An API call failed. Carries the API's error fields and the request id for support tickets."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        operation: str | None = None,
        maybe_committed: bool = False,
    ) -> None:
        self.api_message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.request_id = request_id
        self.operation = operation
        # True when the request may have reached the server and taken effect although no answer came
        # back (read timeout, dropped connection): a non-idempotent call must be reconciled, not resent.
        self.maybe_committed = maybe_committed
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.operation} failed" if self.operation else "OpenAI API call failed"
        if self.status is not None:
            head += f" (HTTP {self.status})"
        details = [
            f"{name}={value}"
            for name, value in (
                ("type", self.type),
                ("code", self.code),
                ("param", self.param),
                ("request_id", self.request_id),
            )
            if value
        ]
        text = f"{head}: {self.api_message}"
        if details:
            text += f" [{', '.join(details)}]"
        hint = _hint(self.status, self.code)
        if hint:
            text += f" {hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the fields when the exception is pickled (e.g. across Airflow processes).
        return (_rebuild, (self.api_message, self.__dict__.copy()))


def _rebuild(message: str, state: dict[str, Any]) -> FineTuningApiError:
    err = FineTuningApiError.__new__(FineTuningApiError)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    err.args = (err._render(),)
    return err


class ResponseFormatError(FineTuningApiError):
    """The server answered 2xx with something that is not the documented shape."""


def _hint(status: int | None, code: str | None) -> str:
    if status == 401:
        return "Check the API key in the connection's Password field."
    if status == 403:
        return "The key lacks access: check its project/organization and permissions."
    if status == 429 and code == "insufficient_quota":
        return "The account is out of quota: check billing."
    if status == 429:
        return "Rate limited and retries were exhausted: raise max_retries or run fewer jobs at once."
    if status is not None and status >= 500:
        return "The service had a problem and retries were exhausted; try again later."
    return ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, operation: str, resource: str | None = None
) -> FineTuningApiError:
    """Map a non-2xx answer to a FineTuningApiError, using the ``{"error": {...}}`` envelope when present."""
    request_id = _header(headers, "x-request-id")
    fields: dict[str, Any] = {}
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        fields = parsed["error"]
    elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        fields = parsed  # some gateways answer with a flat object
    message = fields.get("message") if isinstance(fields.get("message"), str) else None
    if not message:
        snippet = body[:200].decode("utf-8", "replace").strip()
        message = f"unexpected answer: {snippet!r}" if snippet else "empty answer"
    if status == 404 and resource:
        message = (
            f"{resource} was not found ({message}). Check the id and that the connection's key "
            "belongs to the project that owns it."
        )
    return FineTuningApiError(
        message,
        status=status,
        type=_str_or_none(fields.get("type")),
        param=_str_or_none(fields.get("param")),
        code=_str_or_none(fields.get("code")),
        request_id=request_id,
        operation=operation,
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
