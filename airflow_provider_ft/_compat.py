"""The only module that knows where Airflow 2.x and 3.x keep things.

Everything else imports Airflow names from here, so supporting a new Airflow line means editing one
file. Imports are the light public entry points (``airflow.sdk`` on 3.x).
"""

from __future__ import annotations

from typing import Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_V_3 = int(AIRFLOW_VERSION.split(".", 1)[0]) >= 3

if AIRFLOW_V_3:
    from airflow.sdk import Asset as Asset
    from airflow.sdk import BaseHook as BaseHook
    from airflow.sdk import BaseOperator as BaseOperator
    from airflow.sdk import BaseOperatorLink as BaseOperatorLink
    from airflow.sdk import BaseSensorOperator as BaseSensorOperator
    from airflow.sdk import PokeReturnValue as PokeReturnValue
    from airflow.sdk import conf as conf
    from airflow.sdk.exceptions import AirflowSensorTimeout as AirflowSensorTimeout
    from airflow.sdk.exceptions import AirflowSkipException as AirflowSkipException
    from airflow.sdk.exceptions import TaskDeferred as TaskDeferred
    from airflow.sdk.execution_time.xcom import XCom as XCom
    from airflow.sdk.log import mask_secret as _mask_secret
else:  # Airflow 2.11
    from airflow.configuration import conf as conf  # type: ignore[no-redef,assignment]
    from airflow.datasets import Dataset as Asset  # type: ignore[no-redef,attr-defined,assignment]  # noqa: F401
    from airflow.exceptions import AirflowSensorTimeout as AirflowSensorTimeout  # type: ignore[no-redef,attr-defined]
    from airflow.exceptions import AirflowSkipException as AirflowSkipException  # type: ignore[no-redef,attr-defined]
    from airflow.exceptions import TaskDeferred as TaskDeferred  # type: ignore[no-redef,attr-defined]
    from airflow.hooks.base import BaseHook as BaseHook  # type: ignore[no-redef,attr-defined]
    from airflow.models.baseoperator import BaseOperator as BaseOperator  # type: ignore[no-redef,attr-defined]
    from airflow.models.baseoperatorlink import (  # type: ignore[no-redef,attr-defined]
        BaseOperatorLink as BaseOperatorLink,
    )
    from airflow.models.xcom import XCom as XCom  # type: ignore[no-redef,attr-defined]
    from airflow.sensors.base import (  # type: ignore[no-redef,attr-defined,assignment]
        BaseSensorOperator as BaseSensorOperator,
    )
    from airflow.sensors.base import PokeReturnValue as PokeReturnValue  # type: ignore[no-redef,attr-defined]
    from airflow.utils.log.secrets_masker import mask_secret as _mask_secret  # type: ignore[no-redef]

# Task context: a TypedDict on 3.x, a Mapping on 2.x; operators only index it.
Context = Any


def default_deferrable() -> bool:
    """The ``[operators] default_deferrable`` setting, read when an operator is built."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def mask_secret(value: str) -> None:
    """Register a value with Airflow's secrets masker so task and triggerer logs redact it."""
    _mask_secret(value)


def object_storage_path(uri: str) -> Any:
    """An ``ObjectStoragePath`` for a URI (imported only when a task reads remote data)."""
    if AIRFLOW_V_3:
        from airflow.sdk import ObjectStoragePath
    else:
        from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]
    return ObjectStoragePath(uri)


def _ti_key(ti: Any) -> dict[str, Any]:
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "map_index": -1 if map_index is None else map_index,
    }


def _has_async_comms() -> bool:
    """The triggerer's comms have ``asend``; the in-process ones of ``dag.test()`` only ``send``."""
    from airflow.sdk.execution_time import task_runner

    return hasattr(getattr(task_runner, "SUPERVISOR_COMMS", None), "asend")


async def aget_task_xcom(ti: Any, key: str) -> Any:
    """Read an XCom of a task instance from a trigger without blocking the event loop."""
    import asyncio

    if AIRFLOW_V_3 and _has_async_comms():
        return await XCom.aget_one(key=key, **_ti_key(ti))
    # Airflow 2 reads the DB; dag.test()'s in-process comms are sync: either way, off the loop.
    return await asyncio.to_thread(XCom.get_one, key=key, **_ti_key(ti))


async def aset_task_xcom(ti: Any, key: str, value: Any) -> None:
    """Write an XCom of a task instance from a trigger without blocking the event loop."""
    import asyncio

    if AIRFLOW_V_3 and _has_async_comms():
        await XCom.aset(key, value, **_ti_key(ti))
        return
    await asyncio.to_thread(XCom.set, key=key, value=value, **_ti_key(ti))


async def aget_connection(conn_id: str) -> Any:
    """Look up a connection without blocking the event loop."""
    getter = getattr(BaseHook, "aget_connection", None)
    if getter is not None:  # Airflow >= 3.1: a native async lookup through the task SDK
        return await getter(conn_id)
    import asyncio

    # Airflow 2.x reads connections with sync code (ORM, secrets backends): run it off the loop.
    return await asyncio.to_thread(BaseHook.get_connection, conn_id)


__all__ = ["AIRFLOW_VERSION", "AIRFLOW_V_3", "BaseHook", "aget_connection", "mask_secret"]
