"""``FineTuningHook``: an Airflow connection turned into a fine-tuning API client.

The hook only reads the connection and delegates; HTTP, retries, errors and pagination live in
``airflow_provider_ft.api``.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from airflow_provider_ft import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_ft._compat import BaseHook, aget_connection, mask_secret
from airflow_provider_ft.api.client import AsyncFineTuningClient, FineTuningClient, ListResult
from airflow_provider_ft.api.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ApiKey,
    ClientConfig,
    ConfigError,
    is_azure_url,
    is_loopback_host,
)
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.api.models import (
    Checkpoint,
    CheckpointPermission,
    FileObject,
    FineTuningJob,
    JobEvent,
)
from airflow_provider_ft.api.policy import RetryPolicy

# Where settings may sit in the connection's extra: our own keys, the 2.x form's prefixed keys, and
# the official OpenAI provider's ``openai_client_kwargs`` (so its ``openai`` connections work as they are).


def _extra_value(extra: Mapping[str, Any], key: str) -> Any:
    for candidate in (key, f"extra__{CONN_TYPE}__{key}"):
        value = extra.get(candidate)
        if value not in (None, ""):
            return value
    kwargs = extra.get("openai_client_kwargs")
    if isinstance(kwargs, dict) and kwargs.get(key) not in (None, ""):
        return kwargs[key]
    return None


def _number(conn_id: str, key: str, value: Any, kind: type[int] | type[float]) -> float | int:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Connection {conn_id!r}: extra field {key!r} must be a number, got {value!r}.") from None
    return number


def config_from_connection(conn: Any, *, timeout: float | None = None, max_retries: int | None = None) -> ClientConfig:
    """Build the client settings from an Airflow connection (shared by the sync and async paths)."""
    conn_id = getattr(conn, "conn_id", None) or "?"
    password = conn.password or ""
    if not password.strip():
        raise ConfigError(
            f"Connection {conn_id!r} has no API key: put the key in its Password field, e.g. "
            f'AIRFLOW_CONN_{conn_id.upper()}=\'{{"conn_type": "{CONN_TYPE}", "password": "sk-..."}}\'.'
        )
    mask_secret(password.strip())
    extra = conn.extra_dejson if conn.extra else {}
    host = _extra_value(extra, "base_url") or conn.host
    if host and "://" not in host and "/" not in host:
        # A URI connection (openai-fine-tuning://:KEY@host:port/v1) splits the URL into host, port and
        # schema and drops the scheme: rebuild it, https unless it is a local simulator.
        scheme = "http" if is_loopback_host(host) else "https"
        port = f":{conn.port}" if conn.port else ""
        path = f"/{conn.schema}" if conn.schema else ""
        host = f"{scheme}://{host}{port}{path}"
    try:
        raw_timeout = timeout if timeout is not None else _extra_value(extra, "timeout")
        raw_retries = max_retries if max_retries is not None else _extra_value(extra, "max_retries")
        api_type = str(_extra_value(extra, "api_type") or "").lower()
        dialect = "azure" if api_type in ("azure", "azure_ad") or (not api_type and is_azure_url(host)) else "openai"
        return ClientConfig(
            dialect=dialect,
            api_version=_extra_value(extra, "api_version") if dialect == "azure" else None,
            api_key=ApiKey(password),
            base_url=host or "",
            organization=_extra_value(extra, "organization"),
            project=_extra_value(extra, "project"),
            timeout=float(_number(conn_id, "timeout", raw_timeout, float))
            if raw_timeout is not None
            else DEFAULT_TIMEOUT,
            max_retries=int(_number(conn_id, "max_retries", raw_retries, int))
            if raw_retries is not None
            else DEFAULT_MAX_RETRIES,
        )
    except ConfigError as err:
        raise ConfigError(f"Connection {conn_id!r}: {err}") from None


CONFIG_TTL = 300.0


class _CachedConfig:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.config: ClientConfig | None = None
        self.fetched_at = 0.0


# Per event loop, per connection id: the settings triggers share (see FineTuningHook.aget_client).
_async_configs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _CachedConfig]] = (
    weakref.WeakKeyDictionary()
)


class FineTuningHook(BaseHook):  # type: ignore[misc]
    """Talk to the OpenAI fine-tuning API through an Airflow connection.

    :param conn_id: Connection id. Password = API key; Host = base URL (default
        ``https://api.openai.com/v1``); extra: ``organization``, ``project``, ``timeout``, ``max_retries``,
        and for Azure OpenAI ``api_type`` ("azure") and ``api_version`` (dated API).
        Connections of the official provider's ``openai`` type work unchanged.
    :param timeout: Per-request timeout in seconds; overrides the connection's.
    :param max_retries: Retries on 408/409/429/5xx and network errors; overrides the connection's.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "OpenAI Fine-Tuning"

    def __init__(
        self,
        conn_id: str = DEFAULT_CONN_ID,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_policy = retry_policy

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    # --- connection -------------------------------------------------------------------------------

    def _lookup_connection(self) -> Any:
        try:
            return self.get_connection(self.conn_id)
        except Exception as err:
            if type(err).__name__ != "AirflowNotFoundException":
                raise
            raise FineTuningApiError(
                f"connection {self.conn_id!r} is not defined. Create it in the UI (type "
                f"'OpenAI Fine-Tuning') or set AIRFLOW_CONN_{self.conn_id.upper()}='{{\"conn_type\": "
                f'"{CONN_TYPE}", "password": "sk-..."}}\'.',
                operation="looking up the connection",
            ) from None

    def _config(self, conn: Any) -> ClientConfig:
        try:
            return config_from_connection(conn, timeout=self.timeout, max_retries=self.max_retries)
        except ConfigError as err:
            raise FineTuningApiError(str(err), operation="reading the connection") from None

    @cached_property
    def client(self) -> FineTuningClient:
        return FineTuningClient(self._config(self._lookup_connection()), self.retry_policy)

    def get_conn(self) -> FineTuningClient:
        return self.client

    async def aget_client(self) -> AsyncFineTuningClient:
        """The async client for triggers; the connection is looked up without blocking the loop.

        Triggers on one loop share the client settings of a connection for ``CONFIG_TTL`` seconds:
        a triggerer (re)starting a thousand waits does one connection lookup, not a thousand, and a
        rotated key is still picked up within minutes.
        """
        if self.timeout is not None or self.max_retries is not None:
            return AsyncFineTuningClient(await self._aconfig(), self.retry_policy)
        cache = _async_configs.setdefault(asyncio.get_running_loop(), {})
        entry = cache.get(self.conn_id)
        if entry is None:
            entry = cache[self.conn_id] = _CachedConfig()
        async with entry.lock:
            if entry.config is None or time.monotonic() - entry.fetched_at > CONFIG_TTL:
                entry.config = await self._aconfig()
                entry.fetched_at = time.monotonic()
            config = entry.config
        return AsyncFineTuningClient(config, self.retry_policy)

    async def _aconfig(self) -> ClientConfig:
        try:
            conn = await aget_connection(self.conn_id)
        except Exception as err:
            if type(err).__name__ != "AirflowNotFoundException":
                raise
            raise FineTuningApiError(
                f"connection {self.conn_id!r} is not defined.", operation="looking up the connection"
            ) from None
        return self._config(conn)

    def test_connection(self) -> tuple[bool, str]:
        """Called by the UI's Test button: one cheap authenticated call."""
        try:
            self.client.list_jobs(limit=1)
        except Exception as err:  # the UI shows the message; never raise from here
            return False, str(err)
        return True, f"Connected to {self.client.config.base_url}: the API key is valid."

    # --- 2.x connection form (3.2+ reads the same from the provider info) --------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        return {
            "organization": StringField(lazy_gettext("Organization"), widget=BS3TextFieldWidget()),
            "project": StringField(lazy_gettext("Project"), widget=BS3TextFieldWidget()),
            "timeout": IntegerField(
                lazy_gettext("Timeout (seconds)"),
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=1)],
            ),
            "api_type": StringField(lazy_gettext("API type (openai or azure)"), widget=BS3TextFieldWidget()),
            "api_version": StringField(lazy_gettext("Azure API version"), widget=BS3TextFieldWidget()),
            "max_retries": IntegerField(
                lazy_gettext("Max retries"),
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=0, max=20)],
            ),
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_ft import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    # --- jobs -------------------------------------------------------------------------------------

    def create_job(self, body: Mapping[str, Any]) -> FineTuningJob:
        """POST /fine_tuning/jobs with the request body as the API defines it."""
        return self.client.create_job(body)

    def retrieve_job(self, job_id: str) -> FineTuningJob:
        return self.client.retrieve_job(job_id)

    def list_jobs(
        self, after: str | None = None, limit: int | None = None, metadata: Mapping[str, str] | None = None
    ) -> ListResult[FineTuningJob]:
        return self.client.list_jobs(after=after, limit=limit, metadata=metadata)

    def iter_jobs(self, metadata: Mapping[str, str] | None = None) -> Iterator[FineTuningJob]:
        """All jobs (newest first), across pages, optionally filtered by metadata."""
        return self.client.iter_jobs(metadata=metadata)

    def cancel_job(self, job_id: str) -> FineTuningJob:
        return self.client.cancel_job(job_id)

    def pause_job(self, job_id: str) -> FineTuningJob:
        return self.client.pause_job(job_id)

    def resume_job(self, job_id: str) -> FineTuningJob:
        return self.client.resume_job(job_id)

    # --- events and checkpoints -------------------------------------------------------------------

    def list_events(self, job_id: str, after: str | None = None, limit: int | None = None) -> ListResult[JobEvent]:
        return self.client.list_events(job_id, after=after, limit=limit)

    def iter_events(self, job_id: str) -> Iterator[JobEvent]:
        """All events of a job, newest first, across pages."""
        return self.client.iter_events(job_id)

    def events_since(self, job_id: str, last_seen_id: str | None) -> list[JobEvent]:
        """Events newer than ``last_seen_id``, oldest first."""
        return self.client.events_since(job_id, last_seen_id)

    def list_checkpoints(
        self, job_id: str, after: str | None = None, limit: int | None = None
    ) -> ListResult[Checkpoint]:
        return self.client.list_checkpoints(job_id, after=after, limit=limit)

    def iter_checkpoints(self, job_id: str) -> Iterator[Checkpoint]:
        """All checkpoints of a job, newest first, across pages."""
        return self.client.iter_checkpoints(job_id)

    def list_checkpoint_permissions(
        self, checkpoint: str, project_id: str | None = None
    ) -> ListResult[CheckpointPermission]:
        return self.client.list_checkpoint_permissions(checkpoint, project_id=project_id)

    def create_checkpoint_permission(self, checkpoint: str, project_ids: list[str]) -> list[CheckpointPermission]:
        return self.client.create_checkpoint_permission(checkpoint, project_ids)

    def delete_checkpoint_permission(self, checkpoint: str, permission_id: str) -> bool:
        return self.client.delete_checkpoint_permission(checkpoint, permission_id)

    # --- files ------------------------------------------------------------------------------------

    def upload_file(
        self, source: str | os.PathLike[str] | bytes, filename: str | None = None, purpose: str = "fine-tune"
    ) -> FileObject:
        """Multipart upload of a local file (or bytes with a filename)."""
        return self.client.upload_file(source, filename=filename, purpose=purpose)

    def retrieve_file(self, file_id: str) -> FileObject:
        return self.client.retrieve_file(file_id)

    def list_files(
        self, purpose: str | None = None, after: str | None = None, limit: int | None = None
    ) -> ListResult[FileObject]:
        return self.client.list_files(purpose=purpose, after=after, limit=limit)

    def iter_files(self, purpose: str | None = None) -> Iterator[FileObject]:
        return self.client.iter_files(purpose=purpose)

    def delete_file(self, file_id: str) -> bool:
        return self.client.delete_file(file_id)
