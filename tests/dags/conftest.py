"""Real Airflow runs (``dag.test()``) against the embedded simulator on 127.0.0.1.

DAG files come from two bundles: the repo's ``dags/`` (the examples users see) and
``tests/dags/dag_files`` (scenarios); Airflow 3.3's ``dag.test()`` reads DAGs from bundles.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = {"repo_dags": ROOT / "dags", "scenario_dags": Path(__file__).parent / "dag_files"}

os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {"path": str(p)}}
        for name, p in BUNDLES.items()
    ]
)
os.environ.setdefault("FT_POLL_INTERVAL", "0.5")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow_provider_ft.testing import migrate_metadata_db

    migrate_metadata_db()


@pytest.fixture
def api(airflow_db: None) -> Iterator[Any]:
    """The API server for the default connection: the simulator unless FT_BASE_URL/FT_API_KEY name one."""
    from airflow_provider_ft.testing import api_server

    # Jobs last ~2 s: long enough that a sensor started right after the create call always finds the
    # job running (and defers), short enough to keep the suite fast.
    with api_server(seconds_per_step=0.03) as server:
        yield server


@pytest.fixture
def simulator(api: Any) -> Any:
    if api.simulator is None:
        pytest.skip("needs the embedded simulator (FT_BASE_URL points at another server)")
    return api.simulator


def load_dag(path: Path, dag_id: str) -> Any:
    """Import a DAG file fresh and return one of its DAGs."""
    name = f"_ft_dagfile_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    dag = getattr(module, "dag", None) if getattr(getattr(module, "dag", None), "dag_id", None) == dag_id else None
    dag = dag or getattr(module, dag_id, None)
    assert dag is not None, f"{dag_id} not found in {path}"
    return dag


def task_states(run: Any) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = run.get_task_instances(session=session)
        return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}


@pytest.fixture
def count_trigger_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each FineTuningJobTrigger.run() (proves the task really deferred)."""
    from airflow_provider_ft.triggers.fine_tuning import FineTuningJobTrigger

    runs: list[str] = []
    original = FineTuningJobTrigger.run

    def run(self: FineTuningJobTrigger) -> Any:
        runs.append(self.job_id)
        return original(self)

    monkeypatch.setattr(FineTuningJobTrigger, "run", run)
    return runs
