"""Client settings: where to send requests, with which credentials, and how patiently."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 5


class ConfigError(ValueError):
    """A setting is unusable; the message says which one and how to fix it."""


class ApiKey:
    """The API key. Its repr and str never show the value, so it cannot leak through logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or not value.strip():
            raise ConfigError(
                "The API key is empty: put the key in the connection's Password field "
                "(or AIRFLOW_CONN_..._PASSWORD / the password part of the connection URI)."
            )
        if any(ch in value for ch in "\r\n"):
            raise ConfigError("The API key contains a line break; paste it again without one.")
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ApiKey('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(raw: str | None) -> str:
    """Validate a base URL and strip the trailing slash.

    Plain http is allowed only to loopback addresses (the simulator): anything else would send the
    key in clear text.
    """
    if raw is None or not raw.strip():
        return DEFAULT_BASE_URL
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"Base URL {url!r} is not an http(s) URL: set the connection's Host to a full URL "
            f"such as {DEFAULT_BASE_URL!r} (scheme included)."
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"Refusing to send the API key over plain http to {parts.hostname!r}: use https, "
            "or a loopback address (127.0.0.1, localhost) for a local simulator."
        )
    return url


DIALECTS = ("openai", "azure")
AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


def is_azure_url(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    return host.endswith(AZURE_HOST_SUFFIXES)


def azure_base_url(url: str, *, dated: bool) -> str:
    """Complete a resource URL (https://NAME.openai.azure.com) with the API root it needs."""
    if url == DEFAULT_BASE_URL:
        raise ConfigError(
            "Azure OpenAI needs the resource's endpoint as the base URL, e.g. https://NAME.openai.azure.com"
        )
    path = urlsplit(url).path.rstrip("/")
    if path in ("", "/openai"):
        return url.rstrip("/").removesuffix("/openai") + ("/openai" if dated else "/openai/v1")
    if dated and path.endswith("/openai/v1"):
        raise ConfigError(
            f"Base URL {url!r} is Azure's v1 API, but api_version selects the dated API: drop the /v1 "
            "or remove api_version."
        )
    return url


@dataclass(frozen=True)
class ClientConfig:
    """Everything a transport needs to talk to one API deployment."""

    api_key: ApiKey = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    organization: str | None = None
    project: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    # "openai", or "azure" for an Azure OpenAI resource (api-key header). With ``api_version`` set,
    # Azure's dated API is used (``/openai/...?api-version=...``); without it, its v1 API.
    dialect: str = "openai"
    api_version: str | None = None

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ConfigError(f"dialect must be one of {', '.join(DIALECTS)}, got {self.dialect!r}.")
        if self.api_version is not None and self.dialect != "azure":
            raise ConfigError("api_version only applies to Azure OpenAI: set api_type 'azure' as well.")
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        if self.dialect == "azure":
            object.__setattr__(self, "base_url", azure_base_url(self.base_url, dated=self.api_version is not None))
        for name in ("organization", "project"):
            # They become headers: stray spaces or line breaks (pasted into a form) would make every
            # request fail inside the HTTP library, so reject or trim them here with a clear message.
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, got {value!r}.")
            if any(ch in value for ch in "\r\n"):
                raise ConfigError(f"{name} contains a line break; set it again without one.")
            object.__setattr__(self, name, value.strip() or None)
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout!r}.")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, got {self.max_retries!r}.")

    def auth_headers(self) -> dict[str, str]:
        if self.dialect == "azure":
            return {"api-key": self.api_key.reveal()}
        headers = {"Authorization": f"Bearer {self.api_key.reveal()}"}
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def query_params(self) -> list[tuple[str, str]]:
        """Parameters every request carries (Azure's dated API needs ``api-version``)."""
        return [("api-version", self.api_version)] if self.api_version else []
