"""The example DAG end to end: upload -> create -> deferrable sensor -> report."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_ft.testing import read_asset_events, read_xcoms
from tests.dags.conftest import ROOT, load_dag, task_states


def _register_datasets_on_airflow2(dag: Any) -> None:
    """Airflow 2's dag.test() records dataset events only for datasets the DAG processor has stored."""
    from airflow_provider_ft._compat import AIRFLOW_V_3

    if AIRFLOW_V_3:
        return
    from airflow.models.dataset import DatasetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for task in dag.tasks:
            for outlet in task.outlets:
                if not session.query(DatasetModel).filter(DatasetModel.uri == outlet.uri).count():
                    session.add(DatasetModel(uri=outlet.uri))


def test_example_dag_succeeds_and_xcom_matches_the_simulators_record(
    simulator: Any, count_trigger_runs: list[str]
) -> None:
    dag = load_dag(ROOT / "dags" / "example_fine_tuning.py", "example_fine_tuning")
    _register_datasets_on_airflow2(dag)
    run = dag.test()

    states = task_states(run)
    assert states == dict.fromkeys(
        ["upload_training_file", "upload_validation_file", "create_job", "wait_for_job", "report"], "success"
    )
    assert len(simulator.state.jobs) == 1, "exactly one job per run"
    (job_id,) = simulator.state.jobs
    assert count_trigger_runs == [job_id], "the sensor must have deferred to the trigger"

    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    hook = FineTuningHook()
    job = hook.retrieve_job(job_id)
    checkpoints = list(hook.iter_checkpoints(job_id))
    xcoms = read_xcoms("example_fine_tuning", run.run_id)

    assert xcoms[("create_job", -1, "return_value")] == job_id
    assert xcoms[("wait_for_job", -1, "return_value")] == job.fine_tuned_model
    assert xcoms[("wait_for_job", -1, "fine_tuned_model")] == job.fine_tuned_model
    assert xcoms[("wait_for_job", -1, "job_id")] == job_id
    assert xcoms[("wait_for_job", -1, "trained_tokens")] == job.trained_tokens
    assert xcoms[("wait_for_job", -1, "result_files")] == job.result_files
    pushed = xcoms[("wait_for_job", -1, "checkpoints")]
    assert [c["id"] for c in pushed] == [c.id for c in checkpoints]
    assert [c["step_number"] for c in pushed] == sorted((c.step_number for c in checkpoints), reverse=True)
    assert pushed[0]["metrics"] == checkpoints[0].metrics
    assert xcoms[("report", -1, "return_value")]["model"] == job.fine_tuned_model

    assert job.metadata["team"] == "support"
    assert job.metadata["airflow_dag_id"] == "example_fine_tuning"
    assert job.metadata["airflow_task_id"] == "create_job"
    assert job.metadata["airflow_run_id"] == run.run_id

    # The new model is announced as an event of the openai-ft://support-bot asset.
    from airflow_provider_ft.assets import create_asset

    events = read_asset_events(create_asset(name="support-bot").uri)
    assert events[-1]["fine_tuned_model"] == job.fine_tuned_model
    assert events[-1]["job_id"] == job_id
    assert events[-1]["metrics"] == checkpoints[0].metrics
    assert events[-1]["checkpoints"][0] == checkpoints[0].fine_tuned_model_checkpoint


def test_control_example_pauses_resumes_and_cancels(simulator: Any) -> None:
    dag = load_dag(ROOT / "dags" / "example_fine_tuning_control.py", "example_fine_tuning_control")
    run = dag.test()
    states = task_states(run)
    assert states == {
        "upload_training_file": "success",
        "create_job": "success",
        "pause_job": "success",
        "resume_job": "success",
        "cancel_job": "success",
        "wait_for_job": "skipped",
        "final_status": "success",
    }
    xcoms = read_xcoms("example_fine_tuning_control", run.run_id)
    assert xcoms[("pause_job", -1, "return_value")] == "paused"
    assert xcoms[("resume_job", -1, "return_value")] == "running"
    assert xcoms[("cancel_job", -1, "return_value")] == "cancelled"
    assert xcoms[("final_status", -1, "return_value")] == "cancelled"
    (job_id,) = simulator.state.jobs
    assert simulator.state.job_status(job_id) == "cancelled"


def test_evaluate_dag_is_scheduled_on_the_model_asset_and_reads_its_event() -> None:
    dag = load_dag(ROOT / "dags" / "example_evaluate_model.py", "example_evaluate_model")
    module = __import__("sys").modules["_ft_dagfile_example_evaluate_model"]
    condition = getattr(dag.timetable, "asset_condition", None) or dag.timetable.dataset_condition
    uris = [obj.uri for obj in condition.objects]
    assert [u.rstrip("/") for u in uris] == ["openai-ft://support-bot"]

    class Event:
        extra = {"fine_tuned_model": "ft:m:org:support-bot:x", "job_id": "ftjob-1", "metrics": {"valid_loss": 0.5}}

    key = "triggering_asset_events"
    context = {key: {"openai-ft://support-bot": [Event()]}, "params": {}}
    assert module.latest_model(context)["fine_tuned_model"] == "ft:m:org:support-bot:x"


def test_sweep_example_maps_one_job_per_configuration_and_picks_the_best(simulator: Any) -> None:
    dag = load_dag(ROOT / "dags" / "example_hyperparameter_sweep.py", "example_hyperparameter_sweep")
    run = dag.test()
    assert set(task_states(run).values()) == {"success"}

    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    hook = FineTuningHook()
    jobs = [hook.retrieve_job(job_id) for job_id in simulator.state.jobs]
    assert len(jobs) == 3
    assert sorted(j.metadata["airflow_map_index"] for j in jobs) == ["0", "1", "2"]
    epochs = sorted(j.raw["method"]["supervised"]["hyperparameters"]["n_epochs"] for j in jobs)
    assert epochs == [2, 3, 4]

    all_checkpoints = [c for j in jobs for c in hook.iter_checkpoints(j.id)]
    best = min(all_checkpoints, key=lambda c: c.metrics["valid_loss"])
    picked = read_xcoms("example_hyperparameter_sweep", run.run_id)[("pick_best", -1, "return_value")]
    assert picked == {"checkpoint": best.fine_tuned_model_checkpoint, "valid_loss": best.metrics["valid_loss"]}


@pytest.mark.parametrize("api_version", [None, "2024-10-21"], ids=["azure-v1", "azure-dated"])
def test_example_dag_against_azure_openai(airflow_db: None, api_version: str | None) -> None:
    from airflow_provider_ft.testing import api_server

    with api_server(dialect="azure", azure_api_version=api_version, use_environment=False) as server:
        dag = load_dag(ROOT / "dags" / "example_fine_tuning.py", "example_fine_tuning")
        run = dag.test()
        assert set(task_states(run).values()) == {"success"}
        xcoms = read_xcoms("example_fine_tuning", run.run_id)
        assert xcoms[("wait_for_job", -1, "fine_tuned_model")].startswith("ft:gpt-4o-mini")
        assert len(server.simulator.state.jobs) == 1


def test_trigger_records_its_progress_in_the_tasks_xcom(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real XCom path (supervisor comms on Airflow 3, the DB on 2.x) that lets a restarted trigger resume.

    dag.test() runs triggers without a task instance, so the test gives the trigger the real one's key."""
    import types

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from airflow_provider_ft.triggers.fine_tuning import PROGRESS_XCOM_KEY, FineTuningJobTrigger

    original = FineTuningJobTrigger.run

    def run(self: FineTuningJobTrigger) -> Any:
        with create_session() as session:
            dag_run = (
                session.query(DagRun)
                .filter(DagRun.dag_id == "example_fine_tuning", DagRun.state == "running")
                .order_by(DagRun.id.desc())
                .first()
            )
            assert dag_run is not None
            run_id = dag_run.run_id
        self.task_instance = types.SimpleNamespace(
            dag_id="example_fine_tuning", task_id="wait_for_job", run_id=run_id, map_index=-1, try_number=1
        )
        return original(self)

    monkeypatch.setattr(FineTuningJobTrigger, "run", run)
    dag = load_dag(ROOT / "dags" / "example_fine_tuning.py", "example_fine_tuning")
    dag_run = dag.test()
    assert set(task_states(dag_run).values()) == {"success"}

    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    (job_id,) = simulator.state.jobs
    newest_event = next(FineTuningHook().iter_events(job_id))
    recorded = read_xcoms("example_fine_tuning", dag_run.run_id).get(("wait_for_job", -1, PROGRESS_XCOM_KEY))
    assert recorded == newest_event.id
