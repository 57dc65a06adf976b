"""A hyperparameter sweep with dynamic task mapping: one job per configuration, then pick the best.

``CreateFineTuningJobOperator.partial(...).expand(method=[...])`` creates one job per method (each
tagged with its map index, so a retried map index reuses its own job), mapped sensors wait for them
in the triggerer, and ``pick_best`` chooses the checkpoint with the lowest validation loss.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_ft.operators.files import UploadFineTuningFileOperator
from airflow_provider_ft.operators.fine_tuning import CreateFineTuningJobOperator
from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

DATA = Path(__file__).parent / "data"
POLL_INTERVAL = float(os.environ.get("FT_POLL_INTERVAL", "60"))
SWEEP = [
    {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": n_epochs, "learning_rate_multiplier": lr}}}
    for n_epochs, lr in ((2, 0.5), (3, 1.0), (4, 2.0))
]

with DAG(
    dag_id="example_hyperparameter_sweep",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["fine-tuning", "example"],
    doc_md=__doc__,
) as dag:
    training = UploadFineTuningFileOperator(task_id="upload_training_file", file_path=str(DATA / "train.jsonl"))
    validation = UploadFineTuningFileOperator(
        task_id="upload_validation_file", file_path=str(DATA / "validation.jsonl")
    )
    jobs = CreateFineTuningJobOperator.partial(
        task_id="create_jobs",
        model="gpt-4o-mini-2024-07-18",
        training_file=training.output,
        validation_file=validation.output,
        suffix="sweep",
    ).expand(method=SWEEP)
    waits = FineTuningJobSensor.partial(task_id="wait_for_jobs", poll_interval=POLL_INTERVAL).expand(job_id=jobs.output)

    @task
    def pick_best(models: list[str], ti: Any = None) -> dict[str, Any]:
        """The checkpoint with the lowest validation loss across all jobs of the sweep."""
        per_job = ti.xcom_pull(task_ids="wait_for_jobs", key="checkpoints") or []
        candidates = [c for checkpoints in per_job for c in (checkpoints or [])]
        best = min(candidates, key=lambda c: c["metrics"].get("valid_loss", float("inf")))
        print(
            f"{len(list(models))} models trained; best checkpoint {best['fine_tuned_model_checkpoint']} "
            f"(valid_loss={best['metrics'].get('valid_loss'):.4f}, step {best['step_number']})"
        )
        return {"checkpoint": best["fine_tuned_model_checkpoint"], "valid_loss": best["metrics"].get("valid_loss")}

    pick_best(waits.output)
