"""A small checker of requests and responses against the vendored OpenAPI spec.

``validate_response`` and ``validate_request`` raise AssertionError with a readable list of
mismatches, so tests can call them on every exchange. Paths may carry the ``/v1`` prefix (as the
real API and the simulator use it) and a query string.

Deviations from the spec that follow the real API (both are upstream spec gaps):
* FineTuningJob.status also allows ``paused``: the pause endpoint returns it (even the spec's own
  pause example does), but the enum omits it.
* OpenAIFile.purpose also allows ``evals``: CreateFileRequest accepts that purpose, so the file
  object the service returns for it carries it.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml  # type: ignore[import-untyped,unused-ignore]
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("fine_tuning.yaml")
_URI = "urn:ft-spec"
_API_PREFIX = "/v1"
_DEEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[([^\]]+)\]$")


@functools.cache
def load_spec() -> dict[str, Any]:
    """The spec with the two documented deviations applied."""
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    status = schemas["FineTuningJob"]["properties"]["status"]
    status["enum"] = [*status["enum"], "paused"]  # real API returns it after POST .../pause
    purpose = schemas["OpenAIFile"]["properties"]["purpose"]
    purpose["enum"] = [*purpose["enum"], "evals"]  # accepted on upload, so echoed back
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_URI, resource)
    return registry


def _absolute_refs(schema: Any) -> Any:
    # Sub-schemas are validated on their own, so their local refs must point into the spec.
    if isinstance(schema, dict):
        return {
            key: (_URI + value if key == "$ref" and value.startswith("#") else _absolute_refs(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(item) for item in schema]
    return schema


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = load_spec()
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def _errors(schema: dict[str, Any], instance: object) -> list[str]:
    validator = Draft202012Validator(_absolute_refs(schema), registry=_registry())
    found = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        detail = error.message
        if error.context:  # anyOf/oneOf: show why the closest branch failed
            best = best_match(error.context)
            inner = "/".join(str(p) for p in best.absolute_path) or "<root>"
            detail += f" (closest branch: {inner}: {best.message})"
        found.append(f"{where}: {detail[:400]}")
    return found


def _fail(what: str, problems: list[str], instance: object) -> None:
    if problems:
        shown = "\n  - ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        dump = json.dumps(instance, default=str)[:1500]
        raise AssertionError(f"{what} does not match the spec:\n  - {shown}{more}\n  instance: {dump}")


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(spec path template, operation object) for a concrete request path."""
    clean = path.split("?", 1)[0]
    if clean == _API_PREFIX or clean.startswith(_API_PREFIX + "/"):
        clean = clean[len(_API_PREFIX) :]
    segments = [unquote(s) for s in clean.strip("/").split("/")]
    for template, item in load_spec()["paths"].items():
        parts = template.strip("/").split("/")
        if len(parts) != len(segments):
            continue
        if all(p.startswith("{") or p == s for p, s in zip(parts, segments, strict=True)):
            operation = item.get(method.lower())
            if operation is None:
                raise AssertionError(f"the spec has no {method.upper()} operation on {template}")
            return template, operation
    raise AssertionError(f"no spec path matches {path!r}")


def _json_schema(container: dict[str, Any], where: str) -> dict[str, Any]:
    content = container.get("content", {})
    if "application/json" not in content:
        raise AssertionError(f"{where} has no application/json schema")
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def validate_response(method: str, path: str, status: int, body: object) -> None:
    """Check a response body: 200 against the operation's schema, errors against ErrorResponse.

    Error answers are checked on any path (an unknown route's 404 must use the envelope too).
    """
    if status >= 400:
        what = f"{method.upper()} {path} -> {status}"
        schema: dict[str, Any] = {"$ref": "#/components/schemas/ErrorResponse"}
    elif status == 200:
        template, operation = find_operation(method, path)
        what = f"{method.upper()} {template} -> {status}"
        schema = _json_schema(operation["responses"]["200"], what)
    else:
        raise AssertionError(f"{method.upper()} {path}: unexpected status {status}")
    _fail(what, _errors(schema, body), body)


def _coerce(raw: str, schema: dict[str, Any]) -> object:
    """A query or form string as the type its schema wants (left as is if it does not parse)."""
    schema = _resolve(schema)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    try:
        if "integer" in types:
            return int(raw)
        if "number" in types:
            return float(raw)
    except ValueError:
        return raw
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true"
    return raw


def _fold_brackets(fields: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    """``a[b]=v`` form fields into ``{"a": {"b": v}}``, typed by the schema."""
    properties = _resolve(schema).get("properties", {})
    folded: dict[str, Any] = {}
    for key, raw in fields.items():
        match = _DEEP.match(key)
        if match:
            name, sub = match.groups()
            sub_schema = _resolve(properties.get(name, {})).get("properties", {}).get(sub, {})
            folded.setdefault(name, {})[sub] = _coerce(raw, sub_schema)
        else:
            folded[key] = _coerce(raw, properties.get(key, {}))
    return folded


def validate_request(
    method: str,
    path: str,
    query: dict[str, list[str]],
    body: object | None,
    form: dict[str, str] | None = None,
) -> None:
    """Check a request's query parameters and body (JSON or multipart form fields)."""
    template, operation = find_operation(method, path)
    what = f"{method.upper()} {template} request"
    params = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, raws in query.items():
        match = _DEEP.match(key)
        if match and params.get(match.group(1), {}).get("style") == "deepObject":
            name, sub = match.groups()
            values.setdefault(name, {})[sub] = raws[-1]
            if len(raws) > 1:
                problems.append(f"query {key}: given {len(raws)} times")
            continue
        if key not in params:
            problems.append(f"query {key}: not a parameter of this operation")
            continue
        if len(raws) != 1:
            problems.append(f"query {key}: given {len(raws)} times")
        values[key] = _coerce(raws[-1], params[key]["schema"])
    for name, param in params.items():
        if param.get("required") and name not in values:
            problems.append(f"query {name}: required")
        if name in values:
            problems += [f"query {name}: {p}" for p in _errors(param["schema"], values[name])]

    request_body = operation.get("requestBody")
    content = (request_body or {}).get("content", {})
    if "application/json" in content:
        if body is None:
            if request_body and request_body.get("required"):
                problems.append("body: required")
        else:
            problems += [f"body {p}" for p in _errors(content["application/json"]["schema"], body)]
    elif "multipart/form-data" in content:
        if form is None:
            problems.append("form: multipart/form-data fields required")
        else:
            schema = content["multipart/form-data"]["schema"]
            problems += [f"form {p}" for p in _errors(schema, _fold_brackets(form, schema))]
    elif body not in (None, {}) or form is not None:
        problems.append("body: this operation takes no request body")
    _fail(what, problems, {"query": query, "body": body, "form": form})
