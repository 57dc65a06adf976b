"""Operators that create, cancel, pause and resume fine-tuning jobs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_ft import DEFAULT_CONN_ID
from airflow_provider_ft._compat import BaseOperator, Context, default_deferrable
from airflow_provider_ft.api.errors import FineTuningApiError
from airflow_provider_ft.hook_access import UsesFineTuningHook
from airflow_provider_ft.identity import merge_metadata, task_instance_tags
from airflow_provider_ft.links import FineTuningJobLink
from airflow_provider_ft.waiting import (
    XCOM_JOB_ID,
    JobWaitMixin,
    with_model_asset,
)

MAX_SUFFIX_CHARS = 64
# task_state_store key (Airflow >= 3.3) holding the job id across tries of one task instance.
STATE_STORE_KEY = "fine_tuning_job_id"

if TYPE_CHECKING:  # keeps DAG parsing free of the API client
    from airflow_provider_ft.api.models import FineTuningJob


class _JobOperator(UsesFineTuningHook, BaseOperator):  # type: ignore[misc]
    """Shared by operators that act on an existing job id."""

    template_fields: Sequence[str] = ("job_id", "conn_id")
    operator_extra_links = (FineTuningJobLink(),)
    ui_color = "#c4e3d6"

    def __init__(self, *, job_id: str, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.conn_id = conn_id


class CreateFineTuningJobOperator(JobWaitMixin, BaseOperator):  # type: ignore[misc]
    """Create a fine-tuning job; optionally wait for it to end.

    Every field of the API's create request is a parameter. The job is tagged in ``metadata`` with
    the task instance (dag, run, task, map index), and a retried task reuses the job an earlier try
    created (unless it failed or was cancelled) instead of paying for a second one.

    :param model: Base model to fine-tune (templated), e.g. ``gpt-4o-mini-2024-07-18``.
    :param training_file: Id of an uploaded training file (templated).
    :param validation_file: Id of an uploaded validation file (templated).
    :param method: ``{"type": "supervised" | "dpo" | "reinforcement", ...}`` (templated).
    :param hyperparameters: Deprecated by the API in favour of ``method`` (templated).
    :param suffix: Up to 64 characters added to the fine-tuned model's name (templated).
    :param seed: Seed for reproducibility (templated).
    :param integrations: E.g. ``[{"type": "wandb", "wandb": {"project": "p"}}]`` (templated).
    :param metadata: Up to 12 key/value pairs of your own (4 are used for the task tags) (templated).
    :param conn_id: Airflow connection id (templated).
    :param wait_for_completion: Wait until the job ends and push the same XComs as the sensor.
    :param deferrable: Wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poll_interval: Seconds between polls while waiting.
    :param timeout: Seconds to wait at most (None = no limit).
    :param cancel_on_timeout: Cancel the job when the wait times out.
    :param cancel_on_kill: Cancel the job when the waiting task is killed.
    :param reuse_existing_job: Look for the job of an earlier try before creating one (default True).
    :param model_asset: An ``openai-ft://`` Asset (or just its name) that gets an event with the new
        model name, job id and final metrics on success, to schedule evaluation/deployment DAGs on.
    """

    template_fields: Sequence[str] = (
        "model",
        "training_file",
        "validation_file",
        "method",
        "hyperparameters",
        "suffix",
        "seed",
        "integrations",
        "metadata",
        "conn_id",
    )
    template_fields_renderers = {
        "method": "json",
        "hyperparameters": "json",
        "integrations": "json",
        "metadata": "json",
    }
    operator_extra_links = (FineTuningJobLink(),)
    ui_color = "#c4e3d6"

    def __init__(
        self,
        *,
        model: str,
        training_file: str,
        validation_file: str | None = None,
        method: Mapping[str, Any] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        integrations: list[dict[str, Any]] | None = None,
        metadata: Mapping[str, str] | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval: float = 60.0,
        timeout: float | None = None,
        cancel_on_timeout: bool = False,
        cancel_on_kill: bool = True,
        reuse_existing_job: bool = True,
        soft_fail: bool = False,
        model_asset: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs["outlets"] = with_model_asset(kwargs.get("outlets"), model_asset)
        super().__init__(**kwargs)
        self.model = model
        self.training_file = training_file
        self.validation_file = validation_file
        self.method = method
        self.hyperparameters = hyperparameters
        self.suffix = suffix
        self.seed = seed
        self.integrations = integrations
        self.metadata = metadata
        self.conn_id = conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = float(poll_interval)
        self.timeout = timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_kill = cancel_on_kill
        self.reuse_existing_job = reuse_existing_job
        self.soft_fail = soft_fail
        self.job_id: str | None = None

    # --- request ----------------------------------------------------------------------------------

    def build_request(self, tags: Mapping[str, str]) -> dict[str, Any]:
        """The create request body, after local checks that name the bad parameter."""
        for name in ("model", "training_file"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"{type(self).__name__}: {name!r} is empty; pass a {name.replace('_', ' ')} "
                    "(if it is templated, check that the upstream task pushed it)"
                )
        if self.suffix is not None and len(self.suffix) > MAX_SUFFIX_CHARS:
            raise ValueError(
                f"{type(self).__name__}: suffix {self.suffix[:20]!r}... is {len(self.suffix)} "
                f"characters; the API allows {MAX_SUFFIX_CHARS}"
            )
        body: dict[str, Any] = {"model": self.model, "training_file": self.training_file}
        optional = {
            "validation_file": self.validation_file or None,
            "method": dict(self.method) if self.method else None,
            "hyperparameters": dict(self.hyperparameters) if self.hyperparameters else None,
            "suffix": self.suffix or None,
            "seed": self.seed,
            "integrations": self.integrations or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        body["metadata"] = merge_metadata(self.metadata, tags)
        return body

    # --- one job per task instance ----------------------------------------------------------------

    def find_existing_job(self, tags: Mapping[str, str]) -> FineTuningJob | None:
        """The job an earlier try of this task instance created, if it can still be used."""
        for job in self.hook().list_jobs(metadata=tags, limit=10).items:
            if any(job.metadata.get(k) != v for k, v in tags.items()):
                continue  # the server ignored the filter; never adopt someone else's job
            return self._reusable(job)
        return None

    def stored_job(self, store: Any) -> FineTuningJob | None:
        """The job id an earlier try saved in Airflow 3.3's ``task_state_store``, if still usable."""
        job_id = store.get(STATE_STORE_KEY) if store is not None else None
        if not job_id:
            return None
        try:
            return self._reusable(self.hook().retrieve_job(str(job_id)))
        except FineTuningApiError as err:
            if err.status != 404:
                raise
            self.log.warning("Job %s saved by an earlier try no longer exists; creating a new one", job_id)
            return None

    def _reusable(self, job: FineTuningJob) -> FineTuningJob | None:
        if job.status.value in ("failed", "cancelled"):
            self.log.info("Job %s of an earlier try ended %s; creating a new one", job.id, job.status.value)
            return None
        return job

    def create_or_reuse(self, body: Mapping[str, Any], tags: Mapping[str, str], store: Any = None) -> FineTuningJob:
        if self.reuse_existing_job:
            existing = self.stored_job(store) or self.find_existing_job(tags)
            if existing is not None:
                self.log.info(
                    "Reusing fine-tuning job %s (%s) created by an earlier try of this task",
                    existing.id,
                    existing.status.value,
                )
                return existing
        job = self._create(body, tags)
        if store is not None:
            # Saved before anything else can fail, so a retry after a worker crash reconnects to it.
            store.set(STATE_STORE_KEY, job.id)
        return job

    def _create(self, body: Mapping[str, Any], tags: Mapping[str, str]) -> FineTuningJob:
        try:
            return self.hook().create_job(body)
        except FineTuningApiError as err:
            if not err.maybe_committed:
                raise
            # No answer came back, but the job may exist: look before creating again.
            self.log.warning("No answer to the create request (%s); looking for the job before retrying", err)
            for delay in (1.0, 3.0):
                time.sleep(delay)
                found = self.find_existing_job(tags)
                if found is not None:
                    self.log.info("The create request went through: job %s", found.id)
                    return found
            return self.hook().create_job(body)

    # --- task -------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        tags = task_instance_tags(context)
        body = self.build_request(tags)
        job = self.create_or_reuse(body, tags, context.get("task_state_store"))
        self.job_id = job.id
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=job.id)
        self.log.info("Fine-tuning job %s is %s (model %s)", job.id, job.status.value, job.model)
        if not self.wait_for_completion:
            return job.id
        if self.deferrable:
            self.defer_wait(context, job.id, self.timeout)
        else:
            self.poll_until_done(context, job.id, self.timeout)
        return job.id

    def waited_job_id(self, context: Context) -> str:
        job_id = self.job_id or context["ti"].xcom_pull(task_ids=self.task_id, key=XCOM_JOB_ID)
        return str(job_id)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        super().execute_complete(context, event)
        return self.waited_job_id(context)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the training (and validation) file in; the fine-tuned model out once known."""
        from airflow_provider_ft.lineage import operator_lineage

        return operator_lineage(
            files=[self.training_file, self.validation_file], models=[getattr(self, "fine_tuned_model", None)]
        )

    def on_kill(self) -> None:
        if self.cancel_on_kill and self.wait_for_completion and self.job_id:
            self.cancel_quietly(self.job_id, reason="the task was killed")


class CancelFineTuningJobOperator(_JobOperator):
    """Cancel a fine-tuning job. Returns the job's status afterwards.

    A job that already ended is reported in the log, not treated as an error, unless
    ``fail_if_ended=True``.

    :param job_id: The job to cancel (templated).
    :param conn_id: Airflow connection id (templated).
    :param fail_if_ended: Fail the task when the job had already ended.
    """

    def __init__(
        self, *, job_id: str, conn_id: str = DEFAULT_CONN_ID, fail_if_ended: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(job_id=job_id, conn_id=conn_id, **kwargs)
        self.fail_if_ended = fail_if_ended

    def execute(self, context: Context) -> str:
        hook = self.hook()
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=self.job_id)
        job = hook.retrieve_job(self.job_id)
        if not job.status.is_terminal:
            try:
                job = hook.cancel_job(self.job_id)
            except FineTuningApiError as err:
                # It may have ended between our two calls; only then is the 400 expected.
                job = hook.retrieve_job(self.job_id)
                if not job.status.is_terminal:
                    raise err from None
            else:
                self.log.info("Cancelled fine-tuning job %s (status now %s)", job.id, job.status.value)
                return job.status.value
        message = f"Fine-tuning job {job.id} had already ended ({job.status.value}); nothing to cancel"
        if self.fail_if_ended:
            raise FineTuningApiError(message, operation=f"cancel fine-tuning job {job.id}")
        self.log.info(message)
        return job.status.value


class PauseFineTuningJobOperator(_JobOperator):
    """Pause a running fine-tuning job. Returns the job's status afterwards (``paused``).

    The API refuses to pause a job that is not running (400). With ``wait_until_running=True`` the
    operator first waits for the job to start (e.g. right after creating it, while its files are
    still being validated), and fails clearly if the job ends first.

    :param job_id: The job to pause (templated).
    :param conn_id: Airflow connection id (templated).
    :param wait_until_running: Wait for the job to be running before pausing it.
    :param poll_interval: Seconds between checks while waiting.
    :param wait_timeout: Seconds to wait at most for the job to start.
    """

    def __init__(
        self,
        *,
        job_id: str,
        conn_id: str = DEFAULT_CONN_ID,
        wait_until_running: bool = False,
        poll_interval: float = 10.0,
        wait_timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(job_id=job_id, conn_id=conn_id, **kwargs)
        self.wait_until_running = wait_until_running
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout

    def execute(self, context: Context) -> str:
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=self.job_id)
        if self.wait_until_running:
            self._wait_until_running()
        job = self.hook().pause_job(self.job_id)
        self.log.info("Paused fine-tuning job %s (status now %s)", job.id, job.status.value)
        return job.status.value

    def _wait_until_running(self) -> None:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            job = self.hook().retrieve_job(self.job_id)
            if job.status.value == "running":
                return
            if job.status.is_terminal:
                raise FineTuningApiError(
                    f"fine-tuning job {job.id} ended ({job.status.value}) before it could be paused",
                    operation=f"pause fine-tuning job {job.id}",
                )
            if time.monotonic() >= deadline:
                raise FineTuningApiError(
                    f"fine-tuning job {job.id} was still {job.status.value} after {self.wait_timeout:g}s",
                    operation=f"pause fine-tuning job {job.id}",
                )
            self.log.info("Fine-tuning job %s is %s; waiting for it to run before pausing", job.id, job.status.value)
            time.sleep(self.poll_interval)


class ResumeFineTuningJobOperator(_JobOperator):
    """Resume a paused fine-tuning job. Returns the job's status afterwards."""

    def execute(self, context: Context) -> str:
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=self.job_id)
        job = self.hook().resume_job(self.job_id)
        self.log.info("Resumed fine-tuning job %s (status now %s)", job.id, job.status.value)
        return job.status.value
