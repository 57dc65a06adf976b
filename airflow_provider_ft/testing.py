"""Run DAGs offline: point a connection at the embedded simulator (or at a server you name).

For users' own DAG tests as much as for this project's::

    from airflow_provider_ft.testing import api_server

    def test_my_dag():
        with api_server() as server:      # starts the simulator, sets AIRFLOW_CONN_OPENAI_DEFAULT
            dag.test()
            assert server.simulator.state.jobs  # inspect what the DAG did

When ``FT_BASE_URL`` and ``FT_API_KEY`` are set (or the connection's ``AIRFLOW_CONN_...`` variable
already is), that server is used instead and ``server.simulator`` is None, so the same test can run
against any implementation of the API, the real one included.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_ft import CONN_TYPE, DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow_provider_ft.simulator import Simulator

SIMULATOR_KEY = "sk-simulator-offline"


@dataclass
class ApiServer:
    conn_id: str
    base_url: str | None  # None: taken from a connection that was already configured
    simulator: Simulator | None

    @property
    def is_simulated(self) -> bool:
        return self.simulator is not None


def connection_uri_json(api_key: str, base_url: str, **extra: Any) -> str:
    """The ``AIRFLOW_CONN_<ID>`` value (JSON form) for a key and base URL."""
    return json.dumps({"conn_type": CONN_TYPE, "password": api_key, "host": base_url, "extra": extra})


@contextmanager
def api_server(
    conn_id: str = DEFAULT_CONN_ID,
    *,
    seconds_per_step: float = 0.02,
    use_environment: bool = True,
    api_key: str = SIMULATOR_KEY,
    azure_api_version: str | None = None,
    **simulator_kwargs: Any,
) -> Iterator[ApiServer]:
    """Yield a server for ``conn_id``: the environment's if configured, else a fresh simulator."""
    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    if use_environment and os.environ.get("FT_BASE_URL") and os.environ.get("FT_API_KEY"):
        previous = os.environ.get(env_name)
        os.environ[env_name] = connection_uri_json(os.environ["FT_API_KEY"], os.environ["FT_BASE_URL"])
        try:
            yield ApiServer(conn_id, os.environ["FT_BASE_URL"], None)
        finally:
            _restore(env_name, previous)
        return
    if use_environment and os.environ.get(env_name):
        yield ApiServer(conn_id, None, None)
        return
    from airflow_provider_ft.simulator import Simulator

    simulator = Simulator(api_key=api_key, seconds_per_step=seconds_per_step, **simulator_kwargs).start()
    previous = os.environ.get(env_name)
    if simulator.dialect == "azure":
        # Azure's v1 API by default; with azure_api_version, its dated API (/openai?api-version=...).
        base_url = simulator.azure_dated_url if azure_api_version else simulator.base_url
        extra: dict[str, Any] = {"api_type": "azure", "max_retries": 3}
        if azure_api_version:
            extra["api_version"] = azure_api_version
        os.environ[env_name] = connection_uri_json(api_key, base_url, **extra)
    else:
        os.environ[env_name] = connection_uri_json(api_key, simulator.base_url, max_retries=3)
    try:
        yield ApiServer(conn_id, simulator.base_url, simulator)
    finally:
        _restore(env_name, previous)
        simulator.stop()


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def migrate_metadata_db() -> None:
    """Create or upgrade the metadata DB of the current AIRFLOW_HOME (``dag.test()`` needs one)."""
    import subprocess
    import sys
    from pathlib import Path

    airflow_cli = Path(sys.executable).with_name("airflow")
    command = (
        [str(airflow_cli), "db", "migrate"]
        if airflow_cli.exists()
        else [sys.executable, "-m", "airflow", "db", "migrate"]
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def read_xcoms(dag_id: str, run_id: str) -> dict[tuple[str, int, str], Any]:
    """All XComs of a DAG run as ``{(task_id, map_index, key): value}`` (after ``dag.test()``)."""
    from airflow.utils.session import create_session

    from airflow_provider_ft._compat import AIRFLOW_V_3

    with create_session() as session:
        if AIRFLOW_V_3:
            from airflow.models.xcom import XComModel

            rows: list[Any] = list(session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id)).all())
            return {(r.task_id, r.map_index, r.key): XComModel.deserialize_value(r) for r in rows}
        from airflow.models.xcom import XCom

        rows = list(XCom.get_many(run_id=run_id, dag_ids=dag_id, session=session).all())
        # Airflow 2 rows come back with ``value`` already decoded on load.
        return {
            (r.task_id, r.map_index, r.key): r.value if not isinstance(r.value, bytes) else XCom.deserialize_value(r)
            for r in rows
        }


def read_asset_events(uri: str) -> list[dict[str, Any]]:
    """The extras of all events recorded for an asset (dataset on Airflow 2), oldest first."""
    from airflow.utils.session import create_session

    from airflow_provider_ft._compat import AIRFLOW_V_3

    with create_session() as session:
        if AIRFLOW_V_3:
            from airflow.models.asset import AssetEvent, AssetModel

            query = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            rows = query.filter(AssetModel.uri == uri).order_by(AssetEvent.id).all()
        else:
            from airflow.models.dataset import DatasetEvent, DatasetModel

            query = session.query(DatasetEvent).join(DatasetModel, DatasetEvent.dataset_id == DatasetModel.id)
            rows = query.filter(DatasetModel.uri == uri).order_by(DatasetEvent.id).all()
        return [dict(row.extra or {}) for row in rows]
