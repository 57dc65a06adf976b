"""Job control as tasks: create a job, pause it, resume it, then cancel it.

Shows the Pause/Resume/Cancel operators and how a cancelled job looks to a sensor: with
``soft_fail=True`` the wait is skipped instead of failed, and a final task (``all_done``) reports the
job's last status. Runs against the real API or the simulator like ``example_fine_tuning``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow_provider_ft.hooks.fine_tuning import FineTuningHook
from airflow_provider_ft.operators.files import UploadFineTuningFileOperator
from airflow_provider_ft.operators.fine_tuning import (
    CancelFineTuningJobOperator,
    CreateFineTuningJobOperator,
    PauseFineTuningJobOperator,
    ResumeFineTuningJobOperator,
)
from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

DATA = Path(__file__).parent / "data"
POLL_INTERVAL = float(os.environ.get("FT_POLL_INTERVAL", "60"))

with DAG(
    dag_id="example_fine_tuning_control",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["fine-tuning", "example"],
    doc_md=__doc__,
) as dag:
    upload = UploadFineTuningFileOperator(task_id="upload_training_file", file_path=str(DATA / "train.jsonl"))
    create = CreateFineTuningJobOperator(
        task_id="create_job", model="gpt-4o-mini-2024-07-18", training_file=upload.output, suffix="control"
    )
    # Waits for the job to start running (its files are validated first), then pauses it.
    pause = PauseFineTuningJobOperator(
        task_id="pause_job", job_id=create.output, wait_until_running=True, poll_interval=POLL_INTERVAL
    )
    resume = ResumeFineTuningJobOperator(task_id="resume_job", job_id=create.output)
    cancel = CancelFineTuningJobOperator(task_id="cancel_job", job_id=create.output)
    wait = FineTuningJobSensor(
        task_id="wait_for_job", job_id=create.output, poll_interval=POLL_INTERVAL, soft_fail=True
    )

    @task(trigger_rule="all_done")
    def final_status(job_id: str) -> str:
        job = FineTuningHook().retrieve_job(job_id)
        print(f"Job {job.id} ended {job.status.value}")
        return job.status.value

    pause >> resume >> cancel >> wait >> final_status(create.output)
