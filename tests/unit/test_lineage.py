"""OpenLineage facets, with stand-ins for the openlineage provider's classes (it is optional)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_ft.events import WaitResult
from airflow_provider_ft.operators.fine_tuning import CreateFineTuningJobOperator
from airflow_provider_ft.sensors.fine_tuning import FineTuningJobSensor
from tests.unit.fakes import FakeTI


@dataclass
class Dataset:
    namespace: str
    name: str


@dataclass
class OperatorLineage:
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)


@pytest.fixture
def openlineage(monkeypatch: pytest.MonkeyPatch) -> None:
    facet = types.ModuleType("airflow.providers.common.compat.openlineage.facet")
    facet.Dataset = Dataset  # type: ignore[attr-defined]
    extractors = types.ModuleType("airflow.providers.openlineage.extractors")
    extractors.OperatorLineage = OperatorLineage  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.providers.common.compat.openlineage.facet", facet)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", extractors)


def test_create_reports_training_files_in_and_model_out(openlineage: None) -> None:
    op = CreateFineTuningJobOperator(task_id="c", model="m", training_file="file-t", validation_file="file-v")
    op.finish({"ti": FakeTI()}, WaitResult("succeeded", "ftjob-1", "ok", fine_tuned_model="ft:m:org::x"))
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [Dataset("openai", "files/file-t"), Dataset("openai", "files/file-v")]
    assert lineage.outputs == [Dataset("openai", "models/ft:m:org::x")]


def test_sensor_reports_the_model(openlineage: None) -> None:
    sensor = FineTuningJobSensor(task_id="w", job_id="ftjob-1")
    sensor.finish({"ti": FakeTI()}, WaitResult("succeeded", "ftjob-1", "ok", fine_tuned_model="ft:m:org::x"))
    assert sensor.get_openlineage_facets_on_complete(None).outputs == [Dataset("openai", "models/ft:m:org::x")]


def test_without_the_openlineage_provider_nothing_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    op = CreateFineTuningJobOperator(task_id="c", model="m", training_file="file-t")
    assert op.get_openlineage_facets_on_complete(None) is None
