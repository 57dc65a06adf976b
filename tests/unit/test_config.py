from __future__ import annotations

import pytest

from airflow_provider_ft.api.config import DEFAULT_BASE_URL, ApiKey, ClientConfig, ConfigError

KEY = "sk-config-SECRET"


def test_key_never_shows_in_repr() -> None:
    config = ClientConfig(api_key=ApiKey(KEY), organization="org-1")
    assert KEY not in repr(config) and KEY not in str(config.api_key)
    assert config.auth_headers() == {"Authorization": f"Bearer {KEY}", "OpenAI-Organization": "org-1"}


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_key_is_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="API key is empty"):
        ApiKey(value)


def test_default_base_url_and_trailing_slash() -> None:
    assert ClientConfig(api_key=ApiKey(KEY), base_url="").base_url == DEFAULT_BASE_URL
    assert ClientConfig(api_key=ApiKey(KEY), base_url="https://x.example/v1/").base_url == "https://x.example/v1"


def test_base_url_without_scheme_is_rejected() -> None:
    with pytest.raises(ConfigError, match="scheme included"):
        ClientConfig(api_key=ApiKey(KEY), base_url="api.openai.com/v1")


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(ConfigError, match="Refusing to send the API key over plain http"):
        ClientConfig(api_key=ApiKey(KEY), base_url="http://example.com/v1")
    for ok in ("http://127.0.0.1:8080/v1", "http://localhost:1/v1", "http://[::1]:9/v1"):
        assert ClientConfig(api_key=ApiKey(KEY), base_url=ok).base_url == ok


@pytest.mark.parametrize(("field", "value"), [("timeout", 0), ("max_retries", -1)])
def test_bad_numbers_are_rejected(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        ClientConfig(api_key=ApiKey(KEY), **{field: value})  # type: ignore[arg-type]
