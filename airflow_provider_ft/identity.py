"""Which task instance a job belongs to, written into the job's ``metadata``.

A retried task looks its job up by these tags instead of creating another one. The try number is
deliberately left out: every try of one task instance shares the tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TAG_PREFIX = "airflow_"
TAG_KEYS = ("airflow_dag_id", "airflow_run_id", "airflow_task_id", "airflow_map_index")
MAX_METADATA_KEYS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512


def task_instance_tags(context: Mapping[str, Any]) -> dict[str, str]:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {
        "airflow_dag_id": str(ti.dag_id)[:MAX_VALUE_CHARS],
        "airflow_run_id": str(ti.run_id)[:MAX_VALUE_CHARS],
        "airflow_task_id": str(ti.task_id)[:MAX_VALUE_CHARS],
        "airflow_map_index": str(-1 if map_index is None else map_index),
    }


def merge_metadata(user: Mapping[str, Any] | None, tags: Mapping[str, str]) -> dict[str, str]:
    """The user's metadata plus the task tags, checked against the API's limits with a clear error."""
    merged: dict[str, str] = {}
    for key, value in (user or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metadata keys must be non-empty strings, got {key!r}")
        if key in tags:
            raise ValueError(f"metadata key {key!r} is reserved: the operator sets it to find its job on retry")
        if len(key) > MAX_KEY_CHARS:
            raise ValueError(f"metadata key {key[:20]!r}... is {len(key)} characters; the API allows {MAX_KEY_CHARS}")
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_VALUE_CHARS:
            raise ValueError(f"metadata[{key!r}] is {len(text)} characters; the API allows {MAX_VALUE_CHARS}")
        merged[key] = text
    if len(merged) + len(tags) > MAX_METADATA_KEYS:
        raise ValueError(
            f"metadata has {len(merged)} keys; with the {len(tags)} keys the operator adds to find its job "
            f"on retry that exceeds the API's limit of {MAX_METADATA_KEYS}: keep at most "
            f"{MAX_METADATA_KEYS - len(tags)} keys"
        )
    merged.update(tags)
    return merged
