"""``FineTuningJobSensor``: wait for a fine-tuning job to end (deferrable by default)."""

from __future__ import annotations

from typing import Any

from airflow_provider_ft import DEFAULT_CONN_ID
from airflow_provider_ft._compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    Context,
)
from airflow_provider_ft.links import FineTuningJobLink
from airflow_provider_ft.waiting import (
    XCOM_JOB_ID,
    JobWaitMixin,
    with_model_asset,
)


class FineTuningJobSensor(JobWaitMixin, BaseSensorOperator):  # type: ignore[misc]
    """Wait until a fine-tuning job succeeds, fails or is cancelled.

    On success the task returns the fine-tuned model name and pushes the XComs ``fine_tuned_model``,
    ``checkpoints`` (newest first: id, step_number, fine_tuned_model_checkpoint, metrics),
    ``job_id``, ``trained_tokens`` and ``result_files``. A failed job fails the task with the job's
    error message, code and param; a cancelled one fails it (or skips it with ``soft_fail``).

    :param job_id: The job to wait for (templated), e.g. ``{{ ti.xcom_pull('create_job') }}``.
    :param conn_id: Airflow connection id (templated).
    :param poll_interval: Seconds between polls, in every mode.
    :param deferrable: Wait in the triggerer, freeing the worker slot (default True). When False,
        the sensor pokes with the sync hook in ``poke`` or ``reschedule`` ``mode``.
    :param cancel_on_timeout: Cancel the job when the sensor's ``timeout`` runs out.
    :param cancel_on_kill: Cancel the job when the task is killed (marked failed, cleared).
    :param model_asset: An ``openai-ft://`` Asset (or just its name) that gets an event with the new
        model name, job id and final metrics on success, to schedule evaluation/deployment DAGs on.
    """

    template_fields = ("job_id", "conn_id")
    operator_extra_links = (FineTuningJobLink(),)
    ui_color = "#c4e3d6"

    def __init__(
        self,
        *,
        job_id: str,
        conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        deferrable: bool = True,
        cancel_on_timeout: bool = False,
        cancel_on_kill: bool = True,
        model_asset: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs["outlets"] = with_model_asset(kwargs.get("outlets"), model_asset)
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.job_id = job_id
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)
        self.deferrable = deferrable
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_kill = cancel_on_kill

    def waited_job_id(self, context: Context) -> str:
        return str(self.job_id)

    def _timeout_seconds(self) -> float | None:
        timeout = getattr(self, "timeout", None)
        if timeout is None:
            return None
        return float(timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout)

    def execute(self, context: Context) -> Any:
        # Pushed first so the extra link works while the sensor waits.
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=self.job_id)
        if self.deferrable:
            return self.defer_wait(context, self.job_id, self._timeout_seconds())
        try:
            return super().execute(context)
        except (AirflowSensorTimeout, AirflowSkipException):
            # Timeout in poke/reschedule mode (a skip when soft_fail); a job that already ended is left alone.
            if self.cancel_on_timeout:
                self.cancel_quietly(self.job_id, reason="the sensor timed out")
            raise

    def poke(self, context: Context) -> Any:
        result = self.check_job(self.job_id)
        if result is None:
            return False
        from airflow_provider_ft._compat import PokeReturnValue

        return PokeReturnValue(is_done=True, xcom_value=self.finish(context, result))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the fine-tuned model this wait produced."""
        from airflow_provider_ft.lineage import operator_lineage

        return operator_lineage(models=[getattr(self, "fine_tuned_model", None)])

    def on_kill(self) -> None:
        if self.cancel_on_kill and self.job_id:
            self.cancel_quietly(self.job_id, reason="the task was killed")
