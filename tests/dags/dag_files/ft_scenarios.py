"""DAGs for the integration tests: each one a way a fine-tuning wait can end.

They live in a DAG folder (Airflow 3.3's ``dag.test()`` reads DAGs from a bundle) and read the poll
interval from FT_POLL_INTERVAL so the tests stay fast against the simulator.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_ft.operators.files import UploadFineTuningFileOperator
from airflow_provider_ft.operators.fine_tuning import (
    CancelFineTuningJobOperator,
    CreateFineTuningJobOperator,
    PauseFineTuningJobOperator,
)
from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[assignment]

TRAIN = str(Path(__file__).resolve().parents[3] / "dags" / "data" / "train.jsonl")
POLL = float(os.environ.get("FT_POLL_INTERVAL", "0.5"))
MODEL = "gpt-4o-mini-2024-07-18"
START = datetime(2025, 1, 1)


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["ft-test"])


# The job fails mid-run (the simulator honours this metadata key); the sensor must fail the task.
with _dag("ft_job_fails") as ft_job_fails:
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
    create = CreateFineTuningJobOperator(
        task_id="create", model=MODEL, training_file=upload.output, metadata={"simulator_outcome": "fail"}
    )
    FineTuningJobSensor(task_id="wait", job_id=create.output, poll_interval=POLL)

# The job is cancelled: the sensor fails the task, or skips it with soft_fail.
for soft_fail in (False, True):
    with _dag(f"ft_job_cancelled{'_soft' if soft_fail else ''}") as cancelled_dag:
        upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
        create = CreateFineTuningJobOperator(task_id="create", model=MODEL, training_file=upload.output)
        cancel = CancelFineTuningJobOperator(task_id="cancel", job_id=create.output)
        wait = FineTuningJobSensor(task_id="wait", job_id=create.output, poll_interval=POLL, soft_fail=soft_fail)
        cancel >> wait
    globals()[cancelled_dag.dag_id] = cancelled_dag

# A paused job never ends: the sensor times out and, as asked, cancels it.
with _dag("ft_wait_times_out") as ft_wait_times_out:
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
    create = CreateFineTuningJobOperator(task_id="create", model=MODEL, training_file=upload.output)
    pause = PauseFineTuningJobOperator(
        task_id="pause", job_id=create.output, wait_until_running=True, poll_interval=POLL
    )
    wait = FineTuningJobSensor(
        task_id="wait", job_id=create.output, poll_interval=POLL, timeout=3, cancel_on_timeout=True
    )
    pause >> wait

# The create operator waits itself, deferrable and not.
for deferrable in (True, False):
    with _dag(f"ft_create_and_wait_{'deferrable' if deferrable else 'blocking'}") as create_wait_dag:
        upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
        CreateFineTuningJobOperator(
            task_id="create",
            model=MODEL,
            training_file=upload.output,
            suffix="waited",
            wait_for_completion=True,
            deferrable=deferrable,
            poll_interval=POLL,
        )
    globals()[create_wait_dag.dag_id] = create_wait_dag

# The sensor in poke mode (no triggerer).
with _dag("ft_sensor_poke") as ft_sensor_poke:
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
    create = CreateFineTuningJobOperator(task_id="create", model=MODEL, training_file=upload.output)
    FineTuningJobSensor(
        task_id="wait", job_id=create.output, deferrable=False, mode="poke", poll_interval=POLL, poke_interval=POLL
    )


class CrashAfterCreate(CreateFineTuningJobOperator):
    """Dies right after creating its job on the first try, like a worker killed mid-task."""

    def execute(self, context: Any) -> Any:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated worker death after the create call")
        return result


# Retried after the job was created: the retry must reconnect to it, not create another.
with _dag("ft_retry_after_create") as ft_retry_after_create:
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
    create = CrashAfterCreate(
        task_id="create", model=MODEL, training_file=upload.output, retries=2, retry_delay=timedelta(seconds=0)
    )
    FineTuningJobSensor(task_id="wait", job_id=create.output, poll_interval=POLL)

# Same DAG shape for fault-injection tests (lost create responses, 429s, resets).
with _dag("ft_faults") as ft_faults:
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN, retries=2, retry_delay=timedelta(0))
    create = CreateFineTuningJobOperator(
        task_id="create", model=MODEL, training_file=upload.output, retries=2, retry_delay=timedelta(0)
    )
    FineTuningJobSensor(task_id="wait", job_id=create.output, poll_interval=POLL, retries=2, retry_delay=timedelta(0))


class ChaosCreate(CreateFineTuningJobOperator):
    """Dies after creating its job on some first tries (seeded by the run id), like a killed worker."""

    def execute(self, context: Any) -> Any:
        import random

        result = super().execute(context)
        ti = context["ti"]
        death_rate = float(os.environ.get("FT_CHAOS_WORKER_DEATH", "0"))
        if ti.try_number == 1 and random.Random(f"{ti.run_id}/death").random() < death_rate:
            raise RuntimeError("chaos: worker died after the create call")
        return result


# The chaos test's DAG: every task retries, as a production DAG would.
with _dag("ft_chaos") as ft_chaos:
    retry = {"retries": 4, "retry_delay": timedelta(0)}
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN, **retry)
    create = ChaosCreate(task_id="create", model=MODEL, training_file=upload.output, **retry)
    FineTuningJobSensor(task_id="wait", job_id=create.output, poll_interval=POLL, **retry)

# The sensor in reschedule mode: the worker slot is released between pokes.
with _dag("ft_sensor_reschedule") as ft_sensor_reschedule:
    upload = UploadFineTuningFileOperator(task_id="upload", file_path=TRAIN)
    create = CreateFineTuningJobOperator(task_id="create", model=MODEL, training_file=upload.output)
    FineTuningJobSensor(
        task_id="wait", job_id=create.output, deferrable=False, mode="reschedule", poll_interval=POLL, poke_interval=1
    )
