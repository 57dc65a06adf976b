"""One fine-tuning job's life, computed from the clock on every read.

No thread moves jobs forward: a job's status, events and checkpoints are a pure function of its
creation time, its schedule (``seconds_per_step``) and the interventions recorded so far (pause,
resume, cancel, forced failure). Reading twice at the same clock value gives the same answer, and
events keep their ids and timestamps as time moves on.

Time is counted in two ways: *wall* time (the clock) and *active* time (wall time minus paused
intervals). The schedule lives in active time; pauses shift everything after them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_ft.simulator.jobspec import JobSpec

VALIDATING_STEPS = 2  # steps' worth of time spent in validating_files
QUEUED_STEPS = 2  # ... and in queued
CHECKPOINT_EPOCHS = 3  # like the service: checkpoints for the last 3 epochs only
# Values that "auto" resolves to once training starts.
AUTO_DEFAULTS: dict[str, Any] = {
    "n_epochs": 3,
    "batch_size": 1,
    "learning_rate_multiplier": 1.8,
    "beta": 0.1,
    "compute_multiplier": 1.0,
    "eval_interval": 1,
    "eval_samples": 1,
}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# Float slack so a clock set exactly on a step boundary counts as reaching it. Unix times near
# 1.7e9 carry ~2e-7 s of rounding, so the slack must be larger than that (and far below a step).
_EPS = 1e-6


def _ts(wall: float) -> int:
    """Whole-second API timestamp, immune to 9.9999999-style rounding."""
    return int(wall + _EPS)


@dataclass
class Pause:
    start: float  # wall
    active_at: float  # active time when the pause began
    end: float | None = None


@dataclass
class Intervention:
    wall: float
    kind: str  # "paused" | "resumed" | "cancelled" | "failed"
    message: str
    level: str = "info"


@dataclass
class _Series:
    train_loss: list[float]
    train_acc: list[float]
    valid_loss: list[float]
    valid_acc: list[float]
    full_valid_loss: list[float]
    full_valid_acc: list[float]


@dataclass
class JobRecord:
    """A job plus everything needed to replay its lifecycle."""

    id: str
    serial: int
    created: float
    spec: JobSpec
    organization_id: str
    seed: int
    seconds_per_step: float
    n_examples: int
    tokens_per_epoch: int
    fine_tuned_model_name: str
    result_file_id: str
    token: str  # 16 chars that make this job's event and checkpoint ids unique
    rng_seed: str
    file_error: dict[str, Any] | None = None  # fails the job at the end of validation
    fail_step: int | None = None  # fails the job after this step (simulator_outcome=fail)
    pauses: list[Pause] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    ended: tuple[float, str, dict[str, Any] | None] | None = None  # (wall, status, error)
    result_materialized: bool = False
    _series: _Series | None = None

    # ---- schedule -------------------------------------------------------------------------
    @property
    def hp_resolved(self) -> dict[str, Any]:
        resolved = {
            key: AUTO_DEFAULTS.get(key, value) if value == "auto" else value
            for key, value in self.spec.hyperparameters.items()
        }
        if resolved.get("reasoning_effort") == "default":
            resolved["reasoning_effort"] = "medium"
        return resolved

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(max(self.n_examples, 1) / int(self.hp_resolved["batch_size"])))

    @property
    def total_steps(self) -> int:
        return int(self.hp_resolved["n_epochs"]) * self.steps_per_epoch

    def _at(self, steps: float) -> float:
        return steps * self.seconds_per_step

    @property
    def start_active(self) -> float:
        return self._at(VALIDATING_STEPS + QUEUED_STEPS)

    def step_active(self, k: int) -> float:
        return self._at(VALIDATING_STEPS + QUEUED_STEPS + k)

    def natural_end(self) -> tuple[float, str, dict[str, Any] | None]:
        """(active time, status, error) where the schedule ends without interventions."""
        if self.file_error is not None:
            return self._at(VALIDATING_STEPS), "failed", self.file_error
        if self.fail_step is not None:
            error = {
                "code": "server_error",
                "message": "The job failed due to an internal server error. Please try again.",
                "param": None,
            }
            return self.step_active(self.fail_step), "failed", error
        return self.step_active(self.total_steps), "succeeded", None

    # ---- time mapping ---------------------------------------------------------------------
    def active(self, wall: float) -> float:
        paused = 0.0
        for pause in self.pauses:
            if pause.start < wall:
                paused += min(pause.end if pause.end is not None else wall, wall) - pause.start
        return max(0.0, wall - self.created - paused)

    def wall(self, active: float) -> float:
        """Wall time at which active time ``active`` is reached (inf while paused before it)."""
        shift = 0.0
        for pause in self.pauses:
            if pause.active_at < active - _EPS:
                if pause.end is None:
                    return math.inf
                shift += pause.end - pause.start
        return self.created + active + shift

    def natural_end_wall(self) -> float:
        return self.wall(self.natural_end()[0])

    # ---- state ----------------------------------------------------------------------------
    def _effective(self, now: float) -> float:
        return min(now, self.ended[0]) if self.ended is not None else now

    def status(self, now: float) -> str:
        if self.ended is not None and self.ended[0] <= now:
            return self.ended[1]
        active = self.active(now)
        end_active, end_status, _ = self.natural_end()
        if active + _EPS >= end_active:
            return end_status
        if self.pauses and self.pauses[-1].end is None:
            # Not in the spec's FineTuningJob.status enum, but what the real API returns.
            return "paused"
        if active + _EPS < self._at(VALIDATING_STEPS):
            return "validating_files"
        if active + _EPS < self.start_active:
            return "queued"
        return "running"

    def started(self, now: float) -> bool:
        return self.active(self._effective(now)) + _EPS >= self.start_active and (self.file_error is None)

    def error(self, now: float) -> dict[str, Any] | None:
        status = self.status(now)
        if status != "failed":
            return None
        if self.ended is not None and self.ended[1] == "failed":
            return self.ended[2]
        return self.natural_end()[2]

    def finished_at(self, now: float) -> int | None:
        if self.status(now) not in TERMINAL:
            return None
        if self.ended is not None and self.ended[0] <= now:
            return _ts(self.ended[0])
        return _ts(self.natural_end_wall())

    # ---- interventions --------------------------------------------------------------------
    def pause(self, now: float) -> None:
        self.pauses.append(Pause(start=now, active_at=self.active(now)))
        self.interventions.append(Intervention(now, "paused", "Fine-tuning job paused"))

    def resume(self, now: float) -> None:
        self.pauses[-1].end = now
        self.interventions.append(Intervention(now, "resumed", "Fine-tuning job resumed"))

    def cancel(self, now: float) -> None:
        self.ended = (now, "cancelled", None)
        self.interventions.append(Intervention(now, "cancelled", "Fine-tuning job cancelled"))

    def fail(self, now: float, code: str, message: str, param: str | None = None) -> None:
        self.ended = (now, "failed", {"code": code, "message": message, "param": param})
        self.interventions.append(Intervention(now, "failed", message, "error"))

    # ---- metrics --------------------------------------------------------------------------
    def series(self) -> _Series:
        """Deterministic per-job training curves (seeded by simulator seed and job id)."""
        if self._series is None:
            rng = random.Random(self.rng_seed)
            total = self.total_steps
            start = rng.uniform(1.6, 2.6)
            floor = rng.uniform(0.05, 0.3)
            s = _Series([], [], [], [], [], [])
            for k in range(1, total + 1):
                base = floor + (start - floor) * math.exp(-4.0 * k / total)
                train = base * (1 + rng.uniform(-0.08, 0.08))
                valid = base * (1.05 + rng.uniform(-0.05, 0.1))
                full = base * 1.07
                s.train_loss.append(round(train, 4))
                s.valid_loss.append(round(valid, 4))
                s.full_valid_loss.append(round(full, 4))
                s.train_acc.append(round(min(0.99, 1.0 - train / 3.2), 4))
                s.valid_acc.append(round(min(0.99, 1.0 - valid / 3.2), 4))
                s.full_valid_acc.append(round(min(0.99, 1.0 - full / 3.2), 4))
            self._series = s
        return self._series

    def metrics_csv_size(self) -> int:
        """Size of the step_metrics.csv result file the service would produce."""
        s = self.series()
        size = len("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n")
        for i in range(self.total_steps):
            size += len(f"{i + 1},{s.train_loss[i]},{s.train_acc[i]},{s.valid_loss[i]},{s.valid_acc[i]}\n")
        return size

    def checkpoint_steps(self) -> list[int]:
        epochs = int(self.hp_resolved["n_epochs"])
        first = max(1, epochs - CHECKPOINT_EPOCHS + 1)
        return [e * self.steps_per_epoch for e in range(first, epochs + 1)]

    # ---- API views ------------------------------------------------------------------------
    def to_api(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        started = self.started(now)
        hp = self.hp_resolved if started else dict(self.spec.hyperparameters)
        method_type = self.spec.method_type
        settings: dict[str, Any] = {"hyperparameters": hp}
        if self.spec.grader is not None:
            settings["grader"] = self.spec.grader
        estimated = None
        if status == "running":
            estimated = math.ceil(self.natural_end_wall())
        succeeded = status == "succeeded"
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.spec.model,
            "created_at": int(self.created),
            "finished_at": self.finished_at(now),
            "fine_tuned_model": self.fine_tuned_model_name if succeeded else None,
            "organization_id": self.organization_id,
            "result_files": [self.result_file_id] if succeeded else [],
            "status": status,
            "validation_file": self.spec.validation_file,
            "training_file": self.spec.training_file,
            # The service fills the deprecated top-level field for supervised jobs only.
            "hyperparameters": dict(hp) if method_type == "supervised" else {},
            "trained_tokens": self.tokens_per_epoch * int(hp["n_epochs"]) if succeeded else None,
            "error": self.error(now),
            "seed": self.seed,
            "estimated_finish": estimated,
            "integrations": list(self.spec.integrations or []),
            "method": {"type": method_type, method_type: settings},
            "metadata": dict(self.spec.metadata) if self.spec.metadata is not None else None,
        }

    def events(self, now: float) -> list[dict[str, Any]]:
        """Every event up to ``now``, oldest first, with stable ids."""
        end_active, end_status, end_error = self.natural_end()
        timeline: list[tuple[float, int, str, str, str, dict[str, Any]]] = []

        def add(
            active: float,
            message: str,
            level: str = "info",
            kind: str = "message",
            data: dict[str, Any] | None = None,
        ) -> None:
            timeline.append((self.wall(active), 0, level, kind, message, data or {}))

        spec = self.spec
        add(0.0, f"Created fine-tuning job: {self.id}")
        validating = f"Validating training file: {spec.training_file}"
        if spec.validation_file:
            validating += f" and validation file: {spec.validation_file}"
        add(0.0, validating)
        if self.file_error is not None:
            add(end_active, f"Training file validation failed: {self.file_error['message']}", "error")
        else:
            add(self._at(VALIDATING_STEPS), "Files validated, moving job to queued state")
            add(self.start_active, "Fine-tuning job started")
            total = self.total_steps
            last = self.fail_step if self.fail_step is not None else total
            s = self.series()
            checkpoints = set(self.checkpoint_steps())
            for k in range(1, last + 1):
                i = k - 1
                data: dict[str, Any] = {
                    "step": k,
                    "train_loss": s.train_loss[i],
                    "train_mean_token_accuracy": s.train_acc[i],
                    "total_steps": total,
                }
                message = f"Step {k}/{total}: training loss={s.train_loss[i]:.2f}"
                if spec.validation_file:
                    data["valid_loss"] = s.valid_loss[i]
                    data["valid_mean_token_accuracy"] = s.valid_acc[i]
                    message += f", validation loss={s.valid_loss[i]:.2f}"
                add(self.step_active(k), message, kind="metrics", data=data)
                if k in checkpoints and k != total:
                    add(self.step_active(k), f"Checkpoint created at step {k}")
            if end_status == "failed" and end_error is not None:
                add(end_active, end_error["message"], "error")
            else:
                add(end_active, f"New fine-tuned model created: {self.fine_tuned_model_name}")
                add(end_active, "The job has successfully completed")
        for seq, item in enumerate(self.interventions):
            timeline.append((item.wall, 1 + seq, item.level, "message", item.message, {}))
        # Scheduled events at the same instant as an intervention happened first.
        timeline.sort(key=lambda e: (e[0], e[1]))
        limit = self._effective(now)
        events = []
        for index, (wall, _, level, kind, message, data) in enumerate(timeline):
            if wall > limit + _EPS:
                break
            events.append(
                {
                    "object": "fine_tuning.job.event",
                    "id": f"ft-event-{self.token}{index:08d}",
                    "created_at": _ts(wall),
                    "level": level,
                    "message": message,
                    "data": data,
                    "type": kind,
                }
            )
        return events

    def checkpoints(self, now: float) -> list[dict[str, Any]]:
        """Checkpoints created up to ``now``, oldest first."""
        total = self.total_steps
        limit = self._effective(now)
        end_active, end_status, _ = self.natural_end()
        s = self.series()
        result = []
        for step in self.checkpoint_steps():
            if self.file_error is not None or self.step_active(step) > end_active + _EPS:
                break
            if step == total and (end_status != "succeeded" or self.status(now) != "succeeded"):
                break
            wall = self.wall(self.step_active(step))
            if wall > limit + _EPS:
                break
            name = self.fine_tuned_model_name
            i = step - 1
            result.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": f"ftckpt_{self.token}{step:08d}",
                    "created_at": _ts(wall),
                    # The last checkpoint is the job's fine-tuned model itself.
                    "fine_tuned_model_checkpoint": name if step == total else f"{name}:ckpt-step-{step}",
                    "fine_tuning_job_id": self.id,
                    "step_number": step,
                    "metrics": {
                        "step": step,
                        "train_loss": s.train_loss[i],
                        "train_mean_token_accuracy": s.train_acc[i],
                        "valid_loss": s.valid_loss[i],
                        "valid_mean_token_accuracy": s.valid_acc[i],
                        "full_valid_loss": s.full_valid_loss[i],
                        "full_valid_mean_token_accuracy": s.full_valid_acc[i],
                    },
                }
            )
        return result
