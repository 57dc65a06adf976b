"""Apache Airflow provider for the OpenAI fine-tuning API.

This module is imported by Airflow's providers manager at start-up and by every DAG file that
imports an operator, so it must stay cheap: no Airflow, HTTP or simulator imports here.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

CONN_TYPE = "openai_fine_tuning"
DEFAULT_CONN_ID = "openai_default"


_MODEL_ASSET_URIS = {
    "schemes": ["openai-ft"],
    "handler": "airflow_provider_ft.assets.sanitize_uri",
    "factory": "airflow_provider_ft.assets.create_asset",
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager (``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-ft",
        "name": "OpenAI Fine-Tuning",
        "description": "Run OpenAI fine-tuning jobs from Airflow: upload training data, create, "
        "wait for (deferrable) and cancel jobs; with an offline simulator of the API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "OpenAI Fine-Tuning",
                "external-doc-url": "https://platform.openai.com/docs/guides/fine-tuning",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "OpenAI Fine-Tuning",
                "python-modules": ["airflow_provider_ft.hooks.fine_tuning"],
            }
        ],
        "operators": [
            {
                "integration-name": "OpenAI Fine-Tuning",
                "python-modules": [
                    "airflow_provider_ft.operators.fine_tuning",
                    "airflow_provider_ft.operators.files",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "OpenAI Fine-Tuning",
                "python-modules": ["airflow_provider_ft.sensors.fine_tuning"],
            }
        ],
        "triggers": [
            {
                "integration-name": "OpenAI Fine-Tuning",
                "python-modules": ["airflow_provider_ft.triggers.fine_tuning"],
            }
        ],
        "extra-links": ["airflow_provider_ft.links.FineTuningJobLink"],
        # openai-ft://<name>: a fine-tuned model line (Airflow 3 reads asset-uris, 2.x dataset-uris).
        "asset-uris": [_MODEL_ASSET_URIS],
        "dataset-uris": [_MODEL_ASSET_URIS],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_ft.hooks.fine_tuning.FineTuningHook",
                "hook-name": "OpenAI Fine-Tuning",
                # Read by Airflow >= 3.2 without importing the hook; 2.x uses the hook's form methods.
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "API key", "host": "Base URL"},
                    "placeholders": {
                        "host": "https://api.openai.com/v1",
                        "password": "sk-...",
                    },
                },
                "conn-fields": {
                    "organization": {
                        "label": "Organization",
                        "description": "Sent as the OpenAI-Organization header (optional).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "project": {
                        "label": "Project",
                        "description": "Sent as the OpenAI-Project header (optional).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per-request timeout.",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "api_type": {
                        "label": "API type",
                        "description": "'azure' for an Azure OpenAI resource (api-key header); detected from "
                        "*.openai.azure.com hosts.",
                        "schema": {"type": ["string", "null"], "enum": ["openai", "azure", None]},
                    },
                    "api_version": {
                        "label": "Azure API version",
                        "description": "Azure's dated API (e.g. 2024-10-21); leave empty for Azure's v1 API.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries on 408/409/429/5xx, timeouts and connection errors.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
                    },
                },
            }
        ],
    }
