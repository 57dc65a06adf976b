"""How connections become client settings (no network)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

KEY = "sk-hook-SECRET-abcdef"


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_own_connection_type_with_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(
        monkeypatch,
        "ft_a",
        conn_type="openai_fine_tuning",
        password=KEY,
        host="https://gw.example/v1",
        extra={"organization": "org-1", "project": "proj-1", "timeout": "12", "max_retries": 2},
    )
    config = FineTuningHook("ft_a").client.config
    assert (config.base_url, config.organization, config.project, config.timeout, config.max_retries) == (
        "https://gw.example/v1",
        "org-1",
        "proj-1",
        12.0,
        2,
    )


def test_official_openai_connection_works_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(
        monkeypatch,
        "openai_default",
        conn_type="openai",
        password=KEY,
        extra={"openai_client_kwargs": {"organization": "org-2", "project": "proj-2"}},
    )
    config = FineTuningHook().client.config
    assert (config.base_url, config.organization, config.project) == (
        "https://api.openai.com/v1",
        "org-2",
        "proj-2",
    )


def test_hook_arguments_override_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "ft_b", conn_type="openai_fine_tuning", password=KEY, extra={"timeout": 5})
    config = FineTuningHook("ft_b", timeout=99, max_retries=0).client.config
    assert (config.timeout, config.max_retries) == (99, 0)


def test_connection_uri_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FT_URI", f"openai-fine-tuning://:{KEY}@127.0.0.1:8089/v1?organization=o")
    config = FineTuningHook("ft_uri").client.config
    assert (config.base_url, config.organization) == ("http://127.0.0.1:8089/v1", "o")
    monkeypatch.setenv("AIRFLOW_CONN_FT_URI2", f"openai-fine-tuning://:{KEY}@gw.example/v1")
    assert FineTuningHook("ft_uri2").client.config.base_url == "https://gw.example/v1"


def test_missing_connection_says_how_to_create_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FineTuningApiError, match="AIRFLOW_CONN_NOPE_NOT_THERE"):
        _ = FineTuningHook("nope_not_there").client


def test_connection_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "ft_nokey", conn_type="openai_fine_tuning", password="")
    with pytest.raises(FineTuningApiError, match="has no API key"):
        _ = FineTuningHook("ft_nokey").client


def test_bad_extra_number_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "ft_bad", conn_type="openai_fine_tuning", password=KEY, extra={"timeout": "soon"})
    with pytest.raises(FineTuningApiError, match="'timeout' must be a number"):
        _ = FineTuningHook("ft_bad").client


def test_base_url_without_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "ft_noscheme", conn_type="openai_fine_tuning", password=KEY, host="api.openai.com/v1")
    with pytest.raises(FineTuningApiError, match="scheme included") as info:
        _ = FineTuningHook("ft_noscheme").client
    assert KEY not in str(info.value)


def test_key_not_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "ft_repr", conn_type="openai_fine_tuning", password=KEY)
    hook = FineTuningHook("ft_repr")
    for obj in (hook, hook.client, hook.client.config, hook.client.transport):
        assert KEY not in repr(obj)


def test_test_connection_reports_failure_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 on loopback refuses connections: the Test button must show a message, not a traceback.
    _set_conn(
        monkeypatch,
        "ft_down",
        conn_type="openai_fine_tuning",
        password=KEY,
        host="http://127.0.0.1:9/v1",
        extra={"max_retries": 0},
    )
    ok, message = FineTuningHook("ft_down").test_connection()
    assert not ok and "could not connect to http://127.0.0.1:9/v1" in message and KEY not in message


def test_triggers_on_one_loop_share_one_connection_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A triggerer starting many waits looks the connection up once per loop (and again after the TTL)."""
    import asyncio

    from airflow_provider_ft.hooks import fine_tuning as hook_module

    _set_conn(monkeypatch, "ft_shared", conn_type="openai_fine_tuning", password=KEY)
    lookups: list[str] = []
    original = hook_module.aget_connection

    async def counting(conn_id: str) -> object:
        lookups.append(conn_id)
        await asyncio.sleep(0.01)  # a slow lookup: the others must wait for it, not start their own
        return await original(conn_id)

    monkeypatch.setattr(hook_module, "aget_connection", counting)

    async def start_many() -> set[int]:
        clients = await asyncio.gather(*(FineTuningHook("ft_shared").aget_client() for _ in range(200)))
        return {id(c.config) for c in clients}

    assert len(asyncio.run(start_many())) == 1
    assert lookups == ["ft_shared"]
    asyncio.run(start_many())  # a new loop (a new triggerer process) looks it up again
    assert lookups == ["ft_shared", "ft_shared"]

    async def after_ttl() -> None:
        await FineTuningHook("ft_shared").aget_client()
        monkeypatch.setattr(hook_module, "CONFIG_TTL", -1.0)
        await FineTuningHook("ft_shared").aget_client()

    asyncio.run(after_ttl())
    assert len(lookups) == 4
