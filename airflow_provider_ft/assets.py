"""Assets for fine-tuned models: ``openai-ft://<name>``, one per model line a pipeline trains.

The sensor (and the waiting create operator) emits an event for the asset on success, with the new
model name, the job id and the final metrics in the event's extra, so an evaluation or deployment
DAG can be scheduled on "a new fine-tuned model is ready".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from urllib.parse import SplitResult

SCHEME = "openai-ft"


def create_asset(*, name: str, extra: dict[str, Any] | None = None) -> Any:
    """The Asset (Dataset on Airflow 2) for a model line, e.g. ``create_asset(name="support-bot")``."""
    from airflow_provider_ft._compat import Asset

    if not name.strip():
        raise ValueError("The model asset needs a name, e.g. create_asset(name='support-bot').")
    return Asset(uri=f"{SCHEME}://{name.strip().strip('/')}", extra=extra or {})


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI check for the scheme (registered in the provider info)."""
    if not uri.netloc:
        raise ValueError(f"{SCHEME}:// URIs name the model line: {SCHEME}://<name>, e.g. {SCHEME}://support-bot")
    return uri


def is_model_asset(obj: Any) -> bool:
    uri = getattr(obj, "uri", None)
    return isinstance(uri, str) and uri.startswith(f"{SCHEME}://")


def model_event_extra(
    *, fine_tuned_model: str | None, job_id: str, trained_tokens: int | None, checkpoints: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a new-model asset event carries: enough for a downstream DAG to evaluate or deploy it."""
    final_metrics = dict(checkpoints[0].get("metrics") or {}) if checkpoints else {}
    return {
        "fine_tuned_model": fine_tuned_model,
        "job_id": job_id,
        "trained_tokens": trained_tokens,
        "metrics": final_metrics,
        "checkpoints": [c.get("fine_tuned_model_checkpoint") for c in checkpoints],
    }
