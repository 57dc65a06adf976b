"""Fine-tune a model as a pipeline: upload data -> create job -> wait (deferrable) -> report.

On success the sensor emits an event for the ``openai-ft://support-bot`` asset, which schedules
``example_evaluate_model``.

Runs unchanged against the real API (connection ``openai_default`` holding a real key) or offline
against the embedded simulator (``make demo``). ``FT_POLL_INTERVAL`` shortens polling for the demo.
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

with DAG(
    dag_id="example_fine_tuning",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["fine-tuning", "example"],
    doc_md=__doc__,
) as dag:
    upload_training = UploadFineTuningFileOperator(task_id="upload_training_file", file_path=str(DATA / "train.jsonl"))
    upload_validation = UploadFineTuningFileOperator(
        task_id="upload_validation_file", file_path=str(DATA / "validation.jsonl")
    )
    create_job = CreateFineTuningJobOperator(
        task_id="create_job",
        model="gpt-4o-mini-2024-07-18",
        training_file=upload_training.output,
        validation_file=upload_validation.output,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        suffix="support-bot",
        metadata={"team": "support"},
    )
    wait_for_job = FineTuningJobSensor(
        task_id="wait_for_job",
        job_id=create_job.output,
        poll_interval=POLL_INTERVAL,
        timeout=6 * 3600,
        cancel_on_timeout=True,
        # Emits an event for openai-ft://support-bot: example_evaluate_model runs on each new model.
        model_asset="support-bot",
    )

    @task
    def report(model: str, ti: Any = None) -> dict[str, Any]:
        """Uses what the sensor pushed: the model name (return value) and its checkpoints."""
        checkpoints: list[dict[str, Any]] = ti.xcom_pull(task_ids="wait_for_job", key="checkpoints") or []
        print(f"Fine-tuned model: {model}")
        print(f"{'step':>6}  {'train_loss':>10}  {'valid_loss':>10}  checkpoint")
        for ckpt in checkpoints:
            metrics = ckpt.get("metrics", {})
            print(
                f"{ckpt['step_number']:>6}  {metrics.get('train_loss', float('nan')):>10.4f}  "
                f"{metrics.get('valid_loss', float('nan')):>10.4f}  {ckpt['fine_tuned_model_checkpoint']}"
            )
        best = min(checkpoints, key=lambda c: c.get("metrics", {}).get("valid_loss", float("inf")), default=None)
        return {
            "model": model,
            "checkpoints": len(checkpoints),
            "best_checkpoint": best["fine_tuned_model_checkpoint"] if best else None,
        }

    report(wait_for_job.output)
