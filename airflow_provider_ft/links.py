"""Operator extra link: the job's page on the OpenAI dashboard."""

from __future__ import annotations

from typing import Any

from airflow_provider_ft._compat import BaseOperatorLink, XCom

DASHBOARD_JOB_URL = "https://platform.openai.com/finetune/{job_id}"


def job_url(job_id: str) -> str:
    return DASHBOARD_JOB_URL.format(job_id=job_id)


class FineTuningJobLink(BaseOperatorLink):  # type: ignore[misc]
    """Links a task to the fine-tuning job it created or waited for (read from the ``job_id`` XCom)."""

    name = "OpenAI Fine-Tuning Job"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        job_id = XCom.get_value(ti_key=ti_key, key="job_id")
        return job_url(job_id) if isinstance(job_id, str) and job_id else ""
