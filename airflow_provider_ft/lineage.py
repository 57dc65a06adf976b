"""OpenLineage: training files in, fine-tuned model out. Only active where the provider is installed.

``apache-airflow-providers-openlineage`` calls ``get_openlineage_facets_on_complete`` on operators
that define it; without that provider nothing here is imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NAMESPACE = "openai"


def file_dataset_name(file_id: str) -> str:
    return f"files/{file_id}"


def model_dataset_name(model: str) -> str:
    return f"models/{model}"


def operator_lineage(*, files: Iterable[str | None] = (), models: Iterable[str | None] = ()) -> Any:
    """An ``OperatorLineage`` with the given file ids as inputs and models as outputs (None if unavailable)."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    return OperatorLineage(
        inputs=[Dataset(namespace=NAMESPACE, name=file_dataset_name(f)) for f in files if f],
        outputs=[Dataset(namespace=NAMESPACE, name=model_dataset_name(m)) for m in models if m],
    )
