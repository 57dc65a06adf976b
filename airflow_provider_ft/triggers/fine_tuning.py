"""``FineTuningJobTrigger``: waits for a fine-tuning job in the triggerer, without a worker slot."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_ft import DEFAULT_CONN_ID
from airflow_provider_ft._compat import aget_task_xcom, aset_task_xcom
from airflow_provider_ft.api.client import AsyncFineTuningClient
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.events import WaitResult, describe_event, result_from_job
from airflow_provider_ft.hooks.fine_tuning import FineTuningHook

# XCom of the waiting task holding the newest event logged: serialize() only captures the state at
# defer time, so after a triggerer restart this is what keeps events from being logged twice.
PROGRESS_XCOM_KEY = "fine_tuning_last_event_id"

# Errors that no amount of waiting fixes: stop and tell the task.
FATAL_STATUSES = frozenset({400, 401, 403, 404, 422})


class FineTuningJobTrigger(BaseTrigger):
    """Poll a job until it ends, log its new events, and yield exactly one event.

    Everything needed to resume after a triggerer restart is in ``serialize()``: the deadline is an
    absolute time (a restart does not extend it) and ``last_event_id`` marks the events already logged.

    :param job_id: The fine-tuning job to wait for.
    :param conn_id: Airflow connection id.
    :param poll_interval: Seconds between polls.
    :param deadline: Unix time after which the wait ends with a ``timeout`` outcome (None = no limit).
    :param last_event_id: Id of the newest job event already logged.
    :param cancel_on_kill: Cancel the job when a user kills the deferred task (mark failed / clear).
    """

    def __init__(
        self,
        job_id: str,
        conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        deadline: float | None = None,
        last_event_id: str | None = None,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_id = job_id
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.last_event_id = last_event_id
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "last_event_id": self.last_event_id,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(job_id={self.job_id!r}, conn_id={self.conn_id!r})"

    async def _client(self) -> AsyncFineTuningClient:
        return await FineTuningHook(self.conn_id).aget_client()

    def _seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await self._client()
        except FineTuningApiError as err:
            yield TriggerEvent(WaitResult("error", self.job_id, str(err)).to_payload())
            return
        await self._load_progress()
        # Spread first polls over one interval: after a triggerer restart all triggers start at once.
        first_wait = random.uniform(0, self.poll_interval) if self.poll_interval > 0 else 0.0
        if await self._sleep_or_deadline(first_wait):
            yield self._timeout_event()
            return
        while True:
            result = await self._poll_once(client)
            if result is not None:
                yield TriggerEvent(result.to_payload())
                return
            if await self._sleep_or_deadline(self.poll_interval):
                yield self._timeout_event()
                return

    async def _sleep_or_deadline(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the deadline passed."""
        left = self._seconds_left()
        if left is not None and left <= 0:
            return True
        await asyncio.sleep(seconds if left is None else min(seconds, left))
        left = self._seconds_left()
        return left is not None and left <= 0

    def _timeout_event(self) -> TriggerEvent:
        message = f"Timed out waiting for fine-tuning job {self.job_id}"
        return TriggerEvent(WaitResult("timeout", self.job_id, message, last_event_id=self.last_event_id).to_payload())

    async def _poll_once(self, client: AsyncFineTuningClient) -> WaitResult | None:
        """One poll: the job, its new events; a result when the wait is over."""
        try:
            job = await client.retrieve_job(self.job_id)
            await self._log_new_events(client)
            if not job.status.is_terminal:
                self.log.info("Fine-tuning job %s is %s", self.job_id, job.status.value)
                return None
            checkpoints = await client.list_checkpoints(self.job_id) if job.status.value == "succeeded" else []
        except FineTuningApiError as err:
            if err.status in FATAL_STATUSES:
                return WaitResult(
                    "error", self.job_id, str(err), status_code=err.status, last_event_id=self.last_event_id
                )
            # Transient trouble outlasted the retry policy: keep waiting, the job is unaffected.
            self.log.warning("Polling fine-tuning job %s failed, will poll again: %s", self.job_id, err)
            return None
        return result_from_job(job, checkpoints, self.last_event_id)

    async def _log_new_events(self, client: AsyncFineTuningClient) -> None:
        events = await client.events_since(self.job_id, self.last_event_id)
        for event in events:
            self.log.info("Job %s: %s", self.job_id, describe_event(event))
            self.last_event_id = event.id
        if events:
            await self._save_progress()

    async def _load_progress(self) -> None:
        """Resume after the newest event a previous run of this trigger logged (if it recorded one)."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return
        try:
            stored = await aget_task_xcom(ti, PROGRESS_XCOM_KEY)
        except Exception as err:  # progress is a nicety; never let it break the wait
            self.log.debug("Could not read the trigger's progress: %s", err)
            return
        if isinstance(stored, str) and stored:
            self.last_event_id = stored

    async def _save_progress(self) -> None:
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return
        try:
            await aset_task_xcom(ti, PROGRESS_XCOM_KEY, self.last_event_id)
        except Exception as err:
            self.log.debug("Could not record the trigger's progress: %s", err)

    async def on_kill(self) -> None:
        """A user killed the deferred task (Airflow >= 3.3): cancel the job if asked to."""
        if not self.cancel_on_kill:
            return
        try:
            client = await self._client()
            job = await client.cancel_job(self.job_id)
            self.log.info("Cancelled fine-tuning job %s on kill (status now %s)", self.job_id, job.status.value)
        except FineTuningApiError as err:
            self.log.warning("Could not cancel fine-tuning job %s on kill: %s", self.job_id, err)
