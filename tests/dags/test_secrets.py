"""The API key never leaks: a sentinel key is searched for everywhere a full DAG run leaves traces."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.testing import api_server, read_xcoms
from tests.dags.conftest import ROOT, load_dag, task_states

SENTINEL = "sk-SENTINEL-7f3a9c1e5b2d4f6a8c0e"


@pytest.fixture
def sentinel_server(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("FT_BASE_URL", raising=False)
    with api_server(api_key=SENTINEL, seconds_per_step=0.01, use_environment=False) as server:
        yield server


def test_the_key_appears_nowhere(
    sentinel_server: Any, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_ft.triggers.fine_tuning import FineTuningJobTrigger

    serialized: list[dict[str, Any]] = []
    reprs: list[str] = []
    original_run = FineTuningJobTrigger.run

    def run(self: FineTuningJobTrigger) -> Any:
        serialized.append(self.serialize()[1])
        reprs.append(repr(self))
        return original_run(self)

    monkeypatch.setattr(FineTuningJobTrigger, "run", run)

    dag = load_dag(ROOT / "dags" / "example_fine_tuning.py", "example_fine_tuning")
    run_ = dag.test()
    assert set(task_states(run_).values()) == {"success"}
    output = capfd.readouterr()

    # The captured output really holds the task and trigger logs ...
    assert "Fine-tuned model: ft:" in output.out + output.err
    assert "metrics: step" in output.out + output.err
    # The key was really used (the simulator rejects anything else) ...
    assert any(r.headers.get("authorization") == "Bearer ***" for r in sentinel_server.simulator.state.requests)
    # ... and shows up in none of: task and trigger logs (stdout/stderr), XCom, trigger kwargs, reprs,
    assert SENTINEL not in output.out
    assert SENTINEL not in output.err
    assert SENTINEL not in repr(read_xcoms("example_fine_tuning", run_.run_id))
    assert serialized
    assert SENTINEL not in repr(serialized)
    assert SENTINEL not in repr(reprs)
    # ... nor any file Airflow wrote: the metadata DB (XCom, rendered template fields, trigger rows) and logs.
    home = Path(os.environ["AIRFLOW_HOME"])
    leaking = [str(p) for p in home.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaking == []


def test_errors_and_reprs_do_not_show_the_key(sentinel_server: Any) -> None:
    from airflow_provider_ft.api.errors import FineTuningApiError
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    hook = FineTuningHook()
    for obj in (hook, hook.client, hook.client.config, hook.client.transport, hook.client.config.api_key):
        assert SENTINEL not in repr(obj)
        assert SENTINEL not in str(obj)
    with pytest.raises(FineTuningApiError) as info:
        hook.retrieve_job("ftjob-does-not-exist")
    assert SENTINEL not in str(info.value)
    assert SENTINEL not in repr(info.value.__dict__)
