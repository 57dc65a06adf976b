"""Offline simulator of the OpenAI fine-tuning and files API (standard library only).

``Simulator`` serves the API on a local port for tests and demos; ``FaultPlan`` injects rate
limits, server errors, slow answers, resets and lost responses. Names load lazily so importing the
package costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_ft.simulator.errors import ApiError
    from airflow_provider_ft.simulator.faults import FaultPlan, FaultRule
    from airflow_provider_ft.simulator.server import Simulator
    from airflow_provider_ft.simulator.state import RecordedRequest, SimulatorState

__all__ = ["ApiError", "FaultPlan", "FaultRule", "RecordedRequest", "Simulator", "SimulatorState"]

_WHERE = {
    "ApiError": "errors",
    "FaultPlan": "faults",
    "FaultRule": "faults",
    "RecordedRequest": "state",
    "Simulator": "server",
    "SimulatorState": "state",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
