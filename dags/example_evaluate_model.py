"""Runs whenever a new ``support-bot`` model is fine-tuned (the asset event of example_fine_tuning).

The asset event's extra carries the model name, the job id and the final metrics; a real
evaluation would call the model on a held-out set here, and a deployment DAG would switch traffic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_ft.assets import create_asset

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

SUPPORT_BOT_MODEL = create_asset(name="support-bot")
MAX_VALID_LOSS = 1.0


def latest_model(context: dict[str, Any]) -> dict[str, Any]:
    """The extra of the newest event that triggered this run (Airflow 3: assets, 2.x: datasets)."""
    events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
    for asset_events in events.values():
        if asset_events:
            return dict(asset_events[-1].extra or {})
    return dict(context["params"].get("model_event") or {})  # manual runs


with DAG(
    dag_id="example_evaluate_model",
    schedule=[SUPPORT_BOT_MODEL],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["fine-tuning", "example"],
    params={"model_event": {}},
    doc_md=__doc__,
) as dag:

    @task
    def evaluate(**context: Any) -> dict[str, Any]:
        event = latest_model(context)
        model = event.get("fine_tuned_model")
        valid_loss = (event.get("metrics") or {}).get("valid_loss")
        verdict = "ready to deploy" if valid_loss is not None and valid_loss <= MAX_VALID_LOSS else "needs review"
        print(f"Evaluating {model} from job {event.get('job_id')}: valid_loss={valid_loss} -> {verdict}")
        return {"model": model, "valid_loss": valid_loss, "verdict": verdict}

    evaluate()
