"""How a wait ends, through real Airflow runs against the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_provider_ft.testing import read_xcoms
from tests.dags.conftest import load_dag, task_states

SCENARIOS = Path(__file__).parent / "dag_files" / "ft_scenarios.py"


def _run(dag_id: str) -> tuple[Any, dict[str, str]]:
    run = load_dag(SCENARIOS, dag_id).test()
    return run, task_states(run)


def _only_job(simulator: Any) -> Any:
    assert len(simulator.state.jobs) == 1
    (job_id,) = simulator.state.jobs
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    return FineTuningHook().retrieve_job(job_id)


def test_failed_job_fails_the_sensor(simulator: Any, count_trigger_runs: list[str]) -> None:
    run, states = _run("ft_job_fails")
    assert states == {"upload": "success", "create": "success", "wait": "failed"}
    job = _only_job(simulator)
    assert job.status.value == "failed"
    assert count_trigger_runs in ([], [job.id]), "deferred (or found the job already failed), never twice"
    assert str(getattr(run.state, "value", run.state)) == "failed"


def test_cancelled_job_fails_the_sensor(simulator: Any) -> None:
    _, states = _run("ft_job_cancelled")
    assert states == {"upload": "success", "create": "success", "cancel": "success", "wait": "failed"}
    assert _only_job(simulator).status.value == "cancelled"


def test_cancelled_job_skips_the_sensor_with_soft_fail(simulator: Any) -> None:
    _, states = _run("ft_job_cancelled_soft")
    assert states["wait"] == "skipped"
    assert _only_job(simulator).status.value == "cancelled"


def test_timeout_fails_and_cancels_the_job(simulator: Any, count_trigger_runs: list[str]) -> None:
    _, states = _run("ft_wait_times_out")
    assert states == {"upload": "success", "create": "success", "pause": "success", "wait": "failed"}
    job = _only_job(simulator)
    assert count_trigger_runs == [job.id]
    assert job.status.value == "cancelled", "cancel_on_timeout=True must cancel the paused job"


def test_create_operator_waits_in_the_triggerer(simulator: Any, count_trigger_runs: list[str]) -> None:
    run, states = _run("ft_create_and_wait_deferrable")
    assert states == {"upload": "success", "create": "success"}
    job = _only_job(simulator)
    assert count_trigger_runs == [job.id]
    xcoms = read_xcoms("ft_create_and_wait_deferrable", run.run_id)
    assert xcoms[("create", -1, "return_value")] == job.id
    assert xcoms[("create", -1, "fine_tuned_model")] == job.fine_tuned_model
    assert ":waited:" in job.fine_tuned_model


def test_create_operator_waits_on_the_worker(simulator: Any, count_trigger_runs: list[str]) -> None:
    run, states = _run("ft_create_and_wait_blocking")
    assert states == {"upload": "success", "create": "success"}
    job = _only_job(simulator)
    assert count_trigger_runs == []
    assert read_xcoms("ft_create_and_wait_blocking", run.run_id)[("create", -1, "fine_tuned_model")] == (
        job.fine_tuned_model
    )


def test_sensor_in_poke_mode(simulator: Any, count_trigger_runs: list[str]) -> None:
    run, states = _run("ft_sensor_poke")
    assert states["wait"] == "success"
    job = _only_job(simulator)
    assert count_trigger_runs == []
    xcoms = read_xcoms("ft_sensor_poke", run.run_id)
    assert xcoms[("wait", -1, "return_value")] == job.fine_tuned_model
    assert len(xcoms[("wait", -1, "checkpoints")]) == 3


def test_retry_after_create_reconnects_to_the_same_job(simulator: Any) -> None:
    run, states = _run("ft_retry_after_create")
    assert states == {"upload": "success", "create": "success", "wait": "success"}
    job = _only_job(simulator)  # exactly one job although the create task ran twice
    assert job.status.value == "succeeded"
    assert read_xcoms("ft_retry_after_create", run.run_id)[("create", -1, "return_value")] == job.id


def test_lost_create_response_creates_exactly_one_job(simulator: Any) -> None:
    from airflow_provider_ft.simulator import FaultPlan, FaultRule

    simulator.set_faults(FaultPlan(lost_response=FaultRule(count=1, paths=("POST /v1/fine_tuning/jobs",))))
    _, states = _run("ft_faults")
    assert states == {"upload": "success", "create": "success", "wait": "success"}
    job = _only_job(simulator)
    assert job.status.value == "succeeded"
    posts = [r for r in simulator.state.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
    assert len(posts) == 1, "the lost create must be found by its tags, not sent again"


def test_sensor_in_reschedule_mode(simulator: Any, count_trigger_runs: list[str]) -> None:
    run, states = _run("ft_sensor_reschedule")
    assert states["wait"] == "success"
    job = _only_job(simulator)
    assert count_trigger_runs == []
    assert read_xcoms("ft_sensor_reschedule", run.run_id)[("wait", -1, "fine_tuned_model")] == job.fine_tuned_model
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    with create_session() as session:
        (ti,) = [ti for ti in run.get_task_instances(session=session) if ti.task_id == "wait"]
        query = session.query(TaskReschedule)
        if hasattr(TaskReschedule, "ti_id"):  # Airflow 3 keys reschedules by task instance id
            reschedules = query.filter(TaskReschedule.ti_id == ti.id).count()
        else:
            reschedules = query.filter(TaskReschedule.task_id == "wait", TaskReschedule.run_id == run.run_id).count()
    assert reschedules >= 1, "the sensor must have released its slot at least once"
