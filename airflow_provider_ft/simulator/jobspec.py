"""Validation of ``POST /fine_tuning/jobs`` bodies (CreateFineTuningJobRequest) and the model list.

Stricter than the spec where the real service is (unknown parameters, models that cannot be
fine-tuned) and where strictness cannot hurt: a request this simulator accepts is one the real
API accepts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from airflow_provider_ft.simulator.errors import ApiError, invalid

# Fine-tunable snapshots and the methods each supports (per OpenAI's fine-tuning guide).
SNAPSHOTS: dict[str, tuple[str, ...]] = {
    "gpt-4o-mini-2024-07-18": ("supervised", "dpo"),
    "gpt-4o-2024-08-06": ("supervised", "dpo"),
    "gpt-4.1-2025-04-14": ("supervised", "dpo"),
    "gpt-4.1-mini-2025-04-14": ("supervised", "dpo"),
    "gpt-4.1-nano-2025-04-14": ("supervised", "dpo"),
    "gpt-3.5-turbo-0125": ("supervised",),
    "gpt-3.5-turbo-1106": ("supervised",),
    "gpt-3.5-turbo-0613": ("supervised",),
    "babbage-002": ("supervised",),
    "davinci-002": ("supervised",),
    "o4-mini-2025-04-16": ("reinforcement",),
}
# The service resolves aliases and reports the snapshot as the job's `model`.
ALIASES: dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "o4-mini": "o4-mini-2025-04-16",
}
# Legacy base models train on prompt/completion pairs; every other model on chat data.
COMPLETION_MODELS = frozenset({"babbage-002", "davinci-002"})

METHOD_TYPES = ("supervised", "dpo", "reinforcement")
_TOP_LEVEL = (
    "model",
    "training_file",
    "hyperparameters",
    "suffix",
    "validation_file",
    "integrations",
    "seed",
    "method",
    "metadata",
)
_AUTO = "auto"
_REASONING_EFFORTS = ("default", "low", "medium", "high")
_GRADER_FIELDS: dict[str, tuple[str, ...]] = {
    "string_check": ("name", "input", "reference", "operation"),
    "text_similarity": ("name", "input", "reference", "evaluation_metric"),
    "python": ("name", "source"),
    "score_model": ("name", "input", "model"),
    "label_model": ("name", "input", "model", "labels", "passing_labels"),
    "multi": ("name", "graders", "calculate_output"),
}


@dataclass
class JobSpec:
    """A validated create-job request."""

    model: str  # snapshot name (or the ft: model as given)
    base_model: str  # root snapshot, used to name the fine-tuned model
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int | None
    method_type: str
    hyperparameters: dict[str, Any]  # as requested, "auto" where not given
    grader: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None


def resolve_model(model: str) -> tuple[str, str] | None:
    """(job model, root snapshot) for a fine-tunable model name, else None."""
    if model.startswith("ft:"):
        parts = model.split(":")
        base = ALIASES.get(parts[1], parts[1]) if len(parts) >= 5 else ""
        return (model, base) if base in SNAPSHOTS else None
    snapshot = ALIASES.get(model, model)
    return (snapshot, snapshot) if snapshot in SNAPSHOTS else None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: object) -> ApiError:
    return invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param,
        "invalid_type",
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_or_auto(param: str, value: object, low: int, high: int | None) -> None:
    if value == _AUTO:
        return
    if not _is_int(value):
        raise _wrong_type(param, "'auto' or an integer", value)
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(
            f"Invalid value for '{param}': must be 'auto' or an integer {bound}, got {value}.",
            param,
            "invalid_value",
        )


def _number_or_auto(param: str, value: object, above: float, at_most: float | None) -> None:
    if value == _AUTO:
        return
    if not _is_number(value):
        raise _wrong_type(param, "'auto' or a number", value)
    assert isinstance(value, (int, float))
    if value <= above or (at_most is not None and value > at_most):
        bound = f"greater than {above:g}" + (f" and at most {at_most:g}" if at_most else "")
        raise invalid(
            f"Invalid value for '{param}': must be 'auto' or a number {bound}, got {value}.",
            param,
            "invalid_value",
        )


def _object(param: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    return value


def _check_keys(param: str, obj: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in obj:
        if key not in allowed:
            name = f"{param}.{key}" if param else key
            raise invalid(f"Unrecognized request argument supplied: {name}", name, "unknown_parameter")


def _hyperparameters(param: str, value: object, method: str) -> dict[str, Any]:
    hp = _object(param, value)
    allowed: tuple[str, ...] = ("batch_size", "learning_rate_multiplier", "n_epochs")
    if method == "dpo":
        allowed += ("beta",)
    elif method == "reinforcement":
        allowed += ("reasoning_effort", "compute_multiplier", "eval_interval", "eval_samples")
    _check_keys(param, hp, allowed)
    _int_or_auto(f"{param}.batch_size", hp.get("batch_size", _AUTO), 1, 256)
    _number_or_auto(f"{param}.learning_rate_multiplier", hp.get("learning_rate_multiplier", _AUTO), 0.0, None)
    _int_or_auto(f"{param}.n_epochs", hp.get("n_epochs", _AUTO), 1, 50)
    if method == "dpo":
        _number_or_auto(f"{param}.beta", hp.get("beta", _AUTO), 0.0, 2.0)
    if method == "reinforcement":
        _number_or_auto(f"{param}.compute_multiplier", hp.get("compute_multiplier", _AUTO), 1e-5, 10.0)
        _int_or_auto(f"{param}.eval_interval", hp.get("eval_interval", _AUTO), 1, None)
        _int_or_auto(f"{param}.eval_samples", hp.get("eval_samples", _AUTO), 1, None)
        effort = hp.get("reasoning_effort", "default")
        if effort not in _REASONING_EFFORTS:
            raise invalid(
                f"Invalid value for '{param}.reasoning_effort': must be one of {', '.join(_REASONING_EFFORTS)}.",
                f"{param}.reasoning_effort",
                "invalid_value",
            )
    resolved = {key: hp.get(key, _AUTO) for key in allowed if key != "reasoning_effort"}
    if method == "reinforcement":
        resolved["reasoning_effort"] = hp.get("reasoning_effort", "default")
    return resolved


def _grader(param: str, value: object) -> dict[str, Any]:
    grader = _object(param, value)
    kind = grader.get("type")
    if kind not in _GRADER_FIELDS:
        raise invalid(
            f"Invalid value for '{param}.type': must be one of {', '.join(_GRADER_FIELDS)}.",
            f"{param}.type",
            "invalid_value",
        )
    for name in _GRADER_FIELDS[str(kind)]:
        if name not in grader:
            raise invalid(
                f"Missing required parameter: '{param}.{name}'.",
                f"{param}.{name}",
                "missing_required_parameter",
            )
    return grader


def _string(param: str, body: dict[str, Any], *, nullable: bool) -> str | None:
    value = body.get(param)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    return value


def _metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    meta = _object("metadata", value)
    if len(meta) > 16:
        raise invalid(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"16 properties, but got an object with {len(meta)} properties instead.",
            "metadata",
            "object_above_max_properties",
        )
    for key, item in meta.items():
        if len(key) > 64:
            raise invalid(
                f"Invalid 'metadata': key '{key[:20]}...' is too long. Expected a key "
                f"of at most 64 characters, but got {len(key)} characters instead.",
                "metadata",
                "invalid_metadata",
            )
        if not isinstance(item, str):
            raise _wrong_type(f"metadata.{key}", "a string", item)
        if len(item) > 512:
            raise invalid(
                f"Invalid 'metadata.{key}': string too long. Expected a string with "
                f"maximum length 512, but got a string with length {len(item)} "
                "instead.",
                f"metadata.{key}",
                "string_above_max_length",
            )
    return dict(meta)


def _integrations(value: object) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _wrong_type("integrations", "an array", value)
    if len(value) > 5:
        raise invalid(
            "Invalid 'integrations': at most 5 integrations are allowed.",
            "integrations",
            "array_above_max_length",
        )
    result = []
    for i, item in enumerate(value):
        param = f"integrations[{i}]"
        entry = _object(param, item)
        _check_keys(param, entry, ("type", "wandb"))
        if entry.get("type") != "wandb":
            raise invalid(
                f"Invalid value for '{param}.type': only 'wandb' is supported.",
                f"{param}.type",
                "invalid_value",
            )
        wandb = _object(f"{param}.wandb", entry.get("wandb"))
        _check_keys(f"{param}.wandb", wandb, ("project", "name", "entity", "tags"))
        if not isinstance(wandb.get("project"), str):
            raise _wrong_type(f"{param}.wandb.project", "a string", wandb.get("project"))
        for key in ("name", "entity"):
            if wandb.get(key) is not None and not isinstance(wandb[key], str):
                raise _wrong_type(f"{param}.wandb.{key}", "a string", wandb[key])
        tags = wandb.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _wrong_type(f"{param}.wandb.tags", "an array of strings", tags)
        result.append({"type": "wandb", "wandb": dict(wandb)})
    return result


def parse_create_job(body: object) -> JobSpec:
    """Validate a create-job body; raises ApiError (400, ``param`` names the field)."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_body")
    _check_keys("", body, _TOP_LEVEL)
    for required in ("model", "training_file"):
        if required not in body:
            raise invalid(f"Missing required parameter: '{required}'.", required, "missing_required_parameter")
    model_name = _string("model", body, nullable=False)
    training_file = _string("training_file", body, nullable=False)
    assert model_name is not None and training_file is not None
    resolved = resolve_model(model_name)
    if resolved is None:
        raise invalid(
            f"Model {model_name} is not available for fine-tuning or does not exist.",
            "model",
            "model_not_available",
        )
    validation_file = _string("validation_file", body, nullable=True)
    suffix = _string("suffix", body, nullable=True)
    if suffix is not None and not 1 <= len(suffix) <= 64:
        raise invalid(
            f"Invalid 'suffix': string must be 1 to 64 characters long, got {len(suffix)}.",
            "suffix",
            "invalid_value",
        )
    seed = body.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= 2147483647):
        raise invalid("Invalid value for 'seed': must be an integer between 0 and 2147483647.", "seed", "invalid_value")

    method_type, hyperparameters, grader = _method(body)
    supported = SNAPSHOTS[resolved[1]]
    if method_type not in supported:
        raise invalid(
            f"Model {model_name} does not support the '{method_type}' fine-tuning "
            f"method; it supports: {', '.join(supported)}.",
            "model",
            "model_not_available",
        )
    return JobSpec(
        model=resolved[0],
        base_model=resolved[1],
        training_file=training_file,
        validation_file=validation_file,
        suffix=suffix,
        seed=seed,
        method_type=method_type,
        hyperparameters=hyperparameters,
        grader=grader,
        metadata=_metadata(body.get("metadata")),
        integrations=_integrations(body.get("integrations")),
    )


def _method(body: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    legacy = body.get("hyperparameters")
    if body.get("method") is None:
        # The deprecated top-level `hyperparameters` means a supervised job.
        hp = _hyperparameters("hyperparameters", {} if legacy is None else legacy, "supervised")
        return "supervised", hp, None
    method = _object("method", body["method"])
    kind = method.get("type")
    if "type" not in method:
        raise invalid("Missing required parameter: 'method.type'.", "method.type", "missing_required_parameter")
    if kind not in METHOD_TYPES:
        raise invalid(
            f"Invalid value for 'method.type': expected one of {', '.join(METHOD_TYPES)}, but got {kind!r}.",
            "method.type",
            "invalid_value",
        )
    kind = str(kind)
    _check_keys("method", method, ("type", *METHOD_TYPES))
    for other in METHOD_TYPES:
        if other != kind and other in method:
            raise invalid(
                f"'method.{other}' cannot be used with method type '{kind}'.",
                f"method.{other}",
                "invalid_value",
            )
    # Stricter than the spec: the type's own object is required, so requests always carry the
    # full shape the real API documents (and a reinforcement job needs its grader anyway).
    if kind not in method:
        raise invalid(
            f"Missing required parameter: 'method.{kind}' (method type '{kind}' needs its settings object).",
            f"method.{kind}",
            "missing_required_parameter",
        )
    settings = _object(f"method.{kind}", method[kind])
    allowed = ("hyperparameters", "grader") if kind == "reinforcement" else ("hyperparameters",)
    _check_keys(f"method.{kind}", settings, allowed)
    if legacy is not None:
        if kind != "supervised" or "hyperparameters" in settings:
            raise invalid(
                "Use either 'hyperparameters' or 'method', not both: the top-level 'hyperparameters' is deprecated.",
                "hyperparameters",
                "invalid_value",
            )
        hp = _hyperparameters("hyperparameters", legacy, kind)
    else:
        hp = _hyperparameters(f"method.{kind}.hyperparameters", settings.get("hyperparameters", {}), kind)
    grader = None
    if kind == "reinforcement":
        if "grader" not in settings:
            raise invalid(
                "Missing required parameter: 'method.reinforcement.grader'.",
                "method.reinforcement.grader",
                "missing_required_parameter",
            )
        grader = _grader("method.reinforcement.grader", settings["grader"])
    return kind, hp, grader
