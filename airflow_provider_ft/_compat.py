"""The only module that knows where Airflow 2.x and 3.x keep things.

Everything else imports Airflow names from here, so supporting a new Airflow line means editing one
file. Imports are the light public entry points (``airflow.sdk`` on 3.x).
"""

from __future__ import annotations

from typing import Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_V_3 = int(AIRFLOW_VERSION.split(".", 1)[0]) >= 3

if AIRFLOW_V_3:
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret as _mask_secret
else:  # Airflow 2.11
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]
    from airflow.utils.log.secrets_masker import mask_secret as _mask_secret  # type: ignore[no-redef]


def mask_secret(value: str) -> None:
    """Register a value with Airflow's secrets masker so task and triggerer logs redact it."""
    _mask_secret(value)


async def aget_connection(conn_id: str) -> Any:
    """Look up a connection without blocking the event loop."""
    getter = getattr(BaseHook, "aget_connection", None)
    if getter is not None:  # Airflow >= 3.1: a native async lookup through the task SDK
        return await getter(conn_id)
    import asyncio

    # Airflow 2.x reads connections with sync code (ORM, secrets backends): run it off the loop.
    return await asyncio.to_thread(BaseHook.get_connection, conn_id)


__all__ = ["AIRFLOW_VERSION", "AIRFLOW_V_3", "BaseHook", "aget_connection", "mask_secret"]
