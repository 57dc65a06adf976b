from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_ft import get_provider_info

AIRFLOW_DIR = Path(airflow.__file__).parent


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_metadata_matches_provider_yaml_schema() -> None:
    yaml_schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    conn_schema = yaml_schema["properties"]["connection-types"]
    if "ui-field-behaviour" not in json.dumps(conn_schema):
        return  # Airflow < 3.2 reads the form from the hook's methods instead
    jsonschema.validate(get_provider_info()["connection-types"], conn_schema)


def test_ui_field_behaviour_matches_form_schema() -> None:
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    schema = json.loads((AIRFLOW_DIR / "customized_form_field_behaviours.schema.json").read_text())
    jsonschema.validate(FineTuningHook.get_ui_field_behaviour(), schema)


def test_package_name_is_the_distribution_name_and_entry_point_is_registered() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-ft"
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_ft")]
    assert len(eps) == 1 and eps[0].load() is get_provider_info
    assert eps[0].dist is not None and eps[0].dist.metadata["Name"] == info["package-name"]


def test_every_class_named_in_provider_info_imports() -> None:
    import importlib

    info = get_provider_info()
    names = [c["hook-class-name"] for c in info.get("connection-types", [])]
    names += [link for link in info.get("extra-links", [])]
    modules = [
        m
        for section in ("hooks", "operators", "sensors", "triggers")
        for entry in info.get(section, [])
        for m in entry["python-modules"]
    ]
    for name in names:
        module, _, attr = name.rpartition(".")
        assert getattr(importlib.import_module(module), attr)
    for module in modules:
        importlib.import_module(module)


def test_connection_form_widgets_for_airflow_2() -> None:
    """Airflow 2.x builds the connection form from the hook (3.2+ reads conn-fields from the provider info)."""
    import pytest

    pytest.importorskip("wtforms")
    pytest.importorskip("flask_appbuilder")
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    widgets = FineTuningHook.get_connection_form_widgets()
    assert set(widgets) == {"organization", "project", "timeout", "max_retries", "api_type", "api_version"}
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert set(widgets) == set(conn_fields), "the 2.x form and the 3.x provider info offer the same fields"
    behaviour = FineTuningHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"password": "API key", "host": "Base URL"}
    assert "login" in behaviour["hidden_fields"]


def test_test_connection_is_wired_for_the_ui_button() -> None:
    """The UI's Test button calls ``test_connection`` on the hook class registered for the conn type."""
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

    info = get_provider_info()["connection-types"][0]
    assert info["hook-class-name"].endswith(".FineTuningHook")
    assert FineTuningHook.conn_type == info["connection-type"]
    assert "test_connection" in FineTuningHook.__dict__


def test_airflows_providers_manager_sees_the_connection_form() -> None:
    """What the UI renders: relabelled fields, the extra fields, and a testable connection type."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["openai_fine_tuning"]
    assert behaviour["relabeling"] == {"password": "API key", "host": "Base URL"}
    widgets = {name.rsplit("__", 1)[-1] for name in manager.connection_form_widgets if "openai_fine_tuning" in name}
    assert widgets == {"organization", "project", "timeout", "max_retries", "api_type", "api_version"}
    hook = manager.hooks["openai_fine_tuning"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_ft.hooks.fine_tuning.FineTuningHook"
    assert getattr(hook, "connection_testable", True)
