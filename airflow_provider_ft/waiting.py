"""Waiting for a job to end, shared by ``FineTuningJobSensor`` and ``CreateFineTuningJobOperator``.

One place decides what each outcome means for the task (XCom, failure, skip, cancel-on-timeout), so
the sensor and the waiting create operator behave the same in every mode.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_ft._compat import AirflowSensorTimeout, AirflowSkipException, Context
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.events import WaitResult, describe_event, parse_wait_result, result_from_job
from airflow_provider_ft.hook_access import UsesFineTuningHook

if TYPE_CHECKING:
    import logging


XCOM_JOB_ID = "job_id"
XCOM_MODEL = "fine_tuned_model"
XCOM_CHECKPOINTS = "checkpoints"
XCOM_TRAINED_TOKENS = "trained_tokens"
XCOM_RESULT_FILES = "result_files"


def with_model_asset(outlets: Any, model_asset: Any) -> list[Any]:
    """The task's outlets plus the model asset (an Asset, or a name for ``openai-ft://<name>``)."""
    merged = list(outlets or [])
    if model_asset is not None:
        if isinstance(model_asset, str):
            from airflow_provider_ft.assets import create_asset

            model_asset = create_asset(name=model_asset)
        merged.append(model_asset)
    return merged


class FineTuningJobFailed(FineTuningApiError):
    """The job ended in ``failed`` (or the wait could not go on)."""


class JobWaitMixin(UsesFineTuningHook):
    """Needs ``conn_id``, ``poll_interval``, ``cancel_on_timeout``, ``cancel_on_kill``, ``soft_fail``."""

    conn_id: str
    poll_interval: float
    cancel_on_timeout: bool
    cancel_on_kill: bool
    soft_fail: bool
    log: logging.Logger
    fine_tuned_model: str | None = None
    _last_event_id: str | None = None

    # --- checking ---------------------------------------------------------------------------------

    def check_job(self, job_id: str) -> WaitResult | None:
        """One synchronous look at the job: its new events logged; a result if it has ended."""
        hook = self.hook()
        job = hook.retrieve_job(job_id)
        for event in hook.events_since(job_id, self._last_event_id):
            self.log.info("Job %s: %s", job_id, describe_event(event))
            self._last_event_id = event.id
        if not job.status.is_terminal:
            self.log.info("Fine-tuning job %s is %s", job_id, job.status.value)
            return None
        checkpoints = list(hook.iter_checkpoints(job_id)) if job.status.value == "succeeded" else []
        return result_from_job(job, checkpoints, self._last_event_id)

    def poll_until_done(self, context: Context, job_id: str, timeout: float | None) -> Any:
        """Blocking wait on the worker (non-deferrable mode)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = self.check_job(job_id)
            if result is not None:
                return self.finish(context, result)
            if deadline is not None and time.monotonic() >= deadline:
                message = f"Timed out after {timeout:g}s waiting for fine-tuning job {job_id}"
                return self.finish(context, WaitResult("timeout", job_id, message))
            time.sleep(
                self.poll_interval
                if deadline is None
                else max(0.0, min(self.poll_interval, deadline - time.monotonic()))
            )

    # --- deferring --------------------------------------------------------------------------------

    def defer_wait(self, context: Context, job_id: str, timeout: float | None) -> Any:
        """Finish now if the job already ended; otherwise hand the wait to the triggerer."""
        result = self.check_job(job_id)
        if result is not None:
            return self.finish(context, result)
        from airflow_provider_ft.triggers.fine_tuning import FineTuningJobTrigger

        deadline = None if timeout is None else time.time() + timeout
        trigger = FineTuningJobTrigger(
            job_id=job_id,
            conn_id=self.conn_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
            last_event_id=self._last_event_id,
            cancel_on_kill=self.cancel_on_kill,
        )
        # The trigger enforces the deadline itself (so it can report, and cancel, on timeout);
        # Airflow's own defer timeout is only a backstop in case the trigger cannot run.
        backstop = None if timeout is None else timedelta(seconds=timeout + max(60.0, 3 * self.poll_interval))
        self.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)  # type: ignore[attr-defined]

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the trigger fired: validate its event, then finish like a synchronous wait."""
        job_id = self.waited_job_id(context)
        try:
            result = parse_wait_result(event, job_id)
        except ValueError as err:
            raise FineTuningJobFailed(
                f"the trigger sent an invalid event: {err}", operation=f"waiting for fine-tuning job {job_id}"
            ) from None
        return self.finish(context, result)

    def waited_job_id(self, context: Context) -> str:
        raise NotImplementedError

    # --- finishing --------------------------------------------------------------------------------

    def finish(self, context: Context, result: WaitResult) -> Any:
        """Turn a wait's outcome into the task's: XCom and return value, or an exception."""
        ti = context["ti"]
        ti.xcom_push(key=XCOM_JOB_ID, value=result.job_id)
        if result.outcome == "succeeded":
            self.fine_tuned_model = result.fine_tuned_model  # for OpenLineage
            ti.xcom_push(key=XCOM_MODEL, value=result.fine_tuned_model)
            ti.xcom_push(key=XCOM_CHECKPOINTS, value=result.checkpoints)
            ti.xcom_push(key=XCOM_TRAINED_TOKENS, value=result.trained_tokens)
            ti.xcom_push(key=XCOM_RESULT_FILES, value=result.result_files)
            self.emit_model_asset_events(context, result)
            self.log.info(
                "%s (%d checkpoints, %s trained tokens)",
                result.message,
                len(result.checkpoints),
                result.trained_tokens,
            )
            return result.fine_tuned_model
        operation = f"waiting for fine-tuning job {result.job_id}"
        if result.outcome == "failed":
            error = result.error or {}
            raise FineTuningJobFailed(
                result.message, code=error.get("code"), param=error.get("param"), operation=operation
            )
        if result.outcome == "cancelled":
            if self.soft_fail:
                raise AirflowSkipException(result.message)
            raise FineTuningJobFailed(result.message, operation=operation)
        if result.outcome == "timeout":
            if self.cancel_on_timeout:
                self.cancel_quietly(result.job_id, reason="the wait timed out")
            if self.soft_fail:
                raise AirflowSkipException(result.message)
            raise AirflowSensorTimeout(result.message)
        raise FineTuningJobFailed(result.message, status=result.status_code, operation=operation)

    def emit_model_asset_events(self, context: Context, result: WaitResult) -> None:
        """Attach the new model to the task's ``openai-ft://`` outlet events (Airflow records them on success)."""
        from airflow_provider_ft.assets import is_model_asset, model_event_extra

        outlets = [o for o in (getattr(self, "outlets", None) or []) if is_model_asset(o)]
        if not outlets:
            return
        extra = model_event_extra(
            fine_tuned_model=result.fine_tuned_model,
            job_id=result.job_id,
            trained_tokens=result.trained_tokens,
            checkpoints=result.checkpoints,
        )
        for outlet in outlets:
            context["outlet_events"][outlet].extra.update(extra)
            self.log.info("Asset event for %s: %s", outlet.uri, result.fine_tuned_model)

    def cancel_quietly(self, job_id: str, *, reason: str) -> None:
        """Cancel a job that has not ended; log instead of raising (used on timeout and kill)."""
        try:
            job = self.hook().retrieve_job(job_id)
            if job.status.is_terminal:
                self.log.info("Fine-tuning job %s already ended (%s); nothing to cancel", job_id, job.status.value)
                return
            self.hook().cancel_job(job_id)
            self.log.warning("Cancelled fine-tuning job %s because %s", job_id, reason)
        except FineTuningApiError as err:
            self.log.error("Could not cancel fine-tuning job %s (%s): %s", job_id, reason, err)
