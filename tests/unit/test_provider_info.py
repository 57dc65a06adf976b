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
