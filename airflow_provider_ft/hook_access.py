"""How operators and sensors get their hook: built on first use, then reused by the task instance.

Reusing it keeps one connection lookup and one pooled HTTP session per task, however many calls the
task makes (polls, reconciliation look-ups). The hook module is imported only when a task runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_ft.hooks.fine_tuning import FineTuningHook


class UsesFineTuningHook:
    """Mixin for tasks with a ``conn_id``."""

    conn_id: str

    def hook(self) -> FineTuningHook:
        cached: FineTuningHook | None = self.__dict__.get("_ft_hook")
        if cached is None or cached.conn_id != self.conn_id:  # conn_id may be templated after __init__
            from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

            cached = FineTuningHook(self.conn_id)
            self.__dict__["_ft_hook"] = cached
        return cached
