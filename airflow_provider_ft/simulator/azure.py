"""The Azure OpenAI dialect: which API a path belongs to, api-key auth, and the dated API's differences.

With ``Simulator(dialect="azure")`` one server answers both Azure APIs over the same store:

* ``/openai/v1/...``: the v1 API, OpenAI-compatible (same paths, bodies, statuses and error
  envelope as ``/v1/...``), authenticated by an ``api-key`` header.
* ``/openai/...`` with a required ``api-version`` query parameter: the dated API. POST create-file
  and create-job answer 201; jobs report ``created``/``pending`` where OpenAI says
  ``validating_files``/``queued``; uploads read ``pending`` for the first
  ``FILE_PROCESSING_STEPS`` steps; errors use Azure's ``{"error": {"code", "message"}}`` envelope
  with string codes (``invalidPayload``, ``notFound``, ``"404"``, ``"401"``...).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_ft.simulator.errors import ApiError
from airflow_provider_ft.simulator.state import SimulatorState

Dialect = Literal["openai", "azure"]
DIALECTS: tuple[Dialect, ...] = ("openai", "azure")
OPENAI_PREFIX = "/v1"
AZURE_PREFIX = "/openai"
AZURE_V1_PREFIX = "/openai/v1"
API_VERSION = "api-version"
AUTH_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)
NOT_FOUND_MESSAGE = "Resource not found"
# OpenAI job status -> the dated API's FineTuningState (the rest are spelled alike).
JOB_STATUSES = {"validating_files": "created", "queued": "pending"}
# Status -> Azure error code (ErrorCode enum; the gateway's own answers use the number as a string).
_CODES = {
    400: "invalidPayload",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    413: "invalidPayload",
    429: "429",
    500: "internalFailure",
    502: "serviceUnavailable",
    503: "serviceUnavailable",
}
_STATE_CODES = frozenset({"job_already_ended", "invalid_job_state"})
_CREATED = (("files",), ("fine_tuning", "jobs"))  # POSTs the dated API answers with 201


@dataclass(frozen=True)
class Api:
    """One of the APIs a server speaks, by path prefix."""

    name: Literal["openai", "azure-v1", "azure-dated"]
    prefix: str

    @property
    def dated(self) -> bool:
        return self.name == "azure-dated"

    @property
    def azure(self) -> bool:
        return self.name != "openai"

    def rest(self, path: str) -> str:
        """The path after the prefix (``""`` or ``/...``)."""
        return path[len(self.prefix) :]


OPENAI_API = Api("openai", OPENAI_PREFIX)
AZURE_V1_API = Api("azure-v1", AZURE_V1_PREFIX)
AZURE_DATED_API = Api("azure-dated", AZURE_PREFIX)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def api_for(dialect: Dialect, path: str) -> Api | None:
    """The API serving ``path`` in ``dialect``, or None (404)."""
    if dialect == "openai":
        return OPENAI_API if _under(path, OPENAI_PREFIX) else None
    if _under(path, AZURE_V1_PREFIX):
        return AZURE_V1_API
    return AZURE_DATED_API if _under(path, AZURE_PREFIX) else None


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND_MESSAGE, code="unknown_url")


def auth_error(headers: dict[str, str], api_key: str) -> ApiError | None:
    """401 unless the request carries ``api-key: <key>`` and no Authorization header.

    ``headers`` has lower-case names. A Bearer header means an Entra ID token to Azure, never
    the resource key, so it is refused even next to a valid ``api-key``.
    """
    key = headers.get("api-key")
    if "authorization" in headers or key is None or not hmac.compare_digest(key.strip().encode(), api_key.encode()):
        return ApiError(401, AUTH_MESSAGE, code="401")
    return None


def api_version_error(query: dict[str, list[str]]) -> ApiError | None:
    values = query.get(API_VERSION)
    if not values or not values[-1].strip():
        return ApiError(
            400,
            "Missing required query parameter: api-version. The api-version query parameter "
            "(?api-version=) is required for all requests.",
            param=API_VERSION,
            code="missing_api_version",
        )
    return None


def azure_code(error: ApiError) -> str:
    if error.code == "unknown_url":
        return "404"
    if error.status == 401:
        return "401"
    if error.status == 400 and error.code in _STATE_CODES:
        return "unexpectedEntityState"
    return _CODES.get(error.status, str(error.status))


def error_body(error: ApiError) -> dict[str, Any]:
    """Azure's envelope: ``code`` and ``message`` always, ``param`` when there is one."""
    message = NOT_FOUND_MESSAGE if error.code == "unknown_url" else error.message
    inner: dict[str, Any] = {"code": azure_code(error), "message": message}
    if error.param is not None:
        inner["param"] = error.param
    return {"error": inner}


def dated_status(method: str, segments: list[str]) -> int:
    """201 for the dated API's create-file and create-job, else 200."""
    return 201 if method == "POST" and tuple(segments) in _CREATED else 200


def dated_route_excluded(segments: list[str]) -> bool:
    """Checkpoint permissions are not part of the dated API."""
    return segments[:2] == ["fine_tuning", "checkpoints"]


def dated_view(state: SimulatorState, payload: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-shaped answer as the dated API spells it (job statuses, pending uploads)."""
    if payload.get("object") == "list" and isinstance(payload.get("data"), list):
        data = [_dated_item(state, item) if isinstance(item, dict) else item for item in payload["data"]]
        return {**payload, "data": data}
    return _dated_item(state, payload)


def _dated_item(state: SimulatorState, item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("object")
    if kind == "fine_tuning.job":
        status = item.get("status")
        if isinstance(status, str) and status in JOB_STATUSES:
            return {**item, "status": JOB_STATUSES[status]}
    elif kind == "file" and "status" in item and state.file_processing(str(item.get("id"))):
        pending = {**item, "status": "pending"}
        pending.pop("status_details", None)
        return pending
    return item
