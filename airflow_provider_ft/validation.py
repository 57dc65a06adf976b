"""Checks for OpenAI fine-tuning training data (JSONL).

Pure functions with no Airflow imports: the offline simulator uses them to decide whether an
uploaded file is ``processed`` or ``error``, and the upload operator uses them to fail before
spending an upload (and a queued job) on a file the service would reject.

Decisions worth knowing:

* Blank lines are errors (except the newline that ends the last line): JSONL means one JSON
  object per line and the service rejects files with empty lines.
* A UTF-8 byte order mark is reported, because ``json.loads`` and the service choke on it.
* Format is detected per line by its keys; the first recognised line fixes the file's format and
  every later line must match it.
* ``method="auto"`` (used by the simulator at upload time, when the job's method is not known yet)
  accepts any single format; a chat file whose first example has no assistant message but extra
  keys (grader references) is then taken as reinforcement data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORMATS",
    "METHODS",
    "TrainingDataError",
    "ValidationIssue",
    "ValidationReport",
    "formats_for_method",
    "validate_file",
    "validate_jsonl",
]

FORMATS = ("chat", "completion", "preference", "reinforcement")
METHODS = ("supervised", "dpo", "reinforcement", "auto")
MAX_ISSUES = 50  # kept in the report; all issues are still counted in total_issues

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ROLE_HINT = "system, developer, user, assistant, tool"  # `function` is deprecated; not advertised
_CHAT_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
_COMPLETION_KEYS = ("prompt", "completion")
_PREFERENCE_KEYS = ("input", "preferred_output", "non_preferred_output")
_PREFERENCE_INPUT_KEYS = ("messages", "tools", "parallel_tool_calls")
_METHOD_FORMATS: dict[str, tuple[str, ...]] = {
    "supervised": ("chat", "completion"),
    "dpo": ("preference",),
    "reinforcement": ("reinforcement",),
    "auto": FORMATS,
}


def formats_for_method(method: str) -> tuple[str, ...]:
    """The training-data formats a fine-tuning method accepts."""
    try:
        return _METHOD_FORMATS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}") from None


@dataclass(frozen=True)
class ValidationIssue:
    """One problem: 1-based line number and field path (``messages[2].role``) when known."""

    line: int | None
    field: str | None
    message: str

    def describe(self, source: str) -> str:
        where = source if self.line is None else f"{source} line {self.line}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """Result of checking one file; ``issues`` holds at most MAX_ISSUES of ``total_issues``."""

    source: str
    format: str | None  # "chat" | "completion" | "preference" | "reinforcement" | None
    examples: int
    issues: tuple[ValidationIssue, ...]
    total_issues: int
    estimated_tokens: int = 0  # chars/4 over all examples; the simulator bills trained tokens by it

    @property
    def ok(self) -> bool:
        return self.total_issues == 0

    def summary(self, limit: int = 5) -> str:
        """Human-readable text naming the source, line numbers and fields of the first issues."""
        fmt = self.format or "unknown"
        if self.ok:
            return f"{self.source}: {self.examples} {fmt}-format examples, no problems found"
        noun = "problem" if self.total_issues == 1 else "problems"
        lines = [f"{self.source}: {self.total_issues} {noun} in {self.examples} examples (format: {fmt})"]
        shown = self.issues[: max(limit, 0)]
        lines += [f"  - {issue.describe(self.source)}" for issue in shown]
        if self.total_issues > len(shown):
            lines.append(f"  ... and {self.total_issues - len(shown)} more")
        return "\n".join(lines)

    def raise_for_issues(self) -> None:
        """Raise TrainingDataError unless the data is clean."""
        if not self.ok:
            raise TrainingDataError(self)


class TrainingDataError(ValueError):
    """Training data that the fine-tuning service would reject."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report

    def __str__(self) -> str:
        return self.report.summary()


def validate_jsonl(
    data: bytes | Iterable[bytes | str],
    *,
    source: str = "<data>",
    method: str = "supervised",
    min_examples: int = 10,
    max_example_tokens: int = 65536,
) -> ValidationReport:
    """Check JSONL training data given as bytes or as an iterable of lines.

    ``method`` is the fine-tuning method the data is for (``supervised``, ``dpo``,
    ``reinforcement``) or ``auto`` to accept any single format.
    """
    checker = _Checker(source, formats_for_method(method), method, max_example_tokens)
    lines: Iterable[bytes | str] = _split_bytes(data) if isinstance(data, bytes) else data
    for number, raw in enumerate(lines, start=1):
        checker.check_line(number, raw)
    if checker.examples < min_examples:
        checker.add(
            None,
            None,
            f"has {checker.examples} example{'s' if checker.examples != 1 else ''}; "
            f"fine-tuning needs at least {min_examples}",
        )
    return ValidationReport(
        source=source,
        format=checker.format,
        examples=checker.examples,
        issues=tuple(checker.issues),
        total_issues=checker.total,
        estimated_tokens=checker.tokens,
    )


def validate_file(
    path: str | os.PathLike[str],
    *,
    method: str = "supervised",
    min_examples: int = 10,
    max_example_tokens: int = 65536,
) -> ValidationReport:
    """Check a JSONL file, streaming it line by line (memory does not grow with file size)."""
    with open(path, "rb") as handle:
        return validate_jsonl(
            handle,
            source=os.fspath(path),
            method=method,
            min_examples=min_examples,
            max_example_tokens=max_example_tokens,
        )


def _split_bytes(data: bytes) -> Iterator[bytes]:
    # Only "\n" separates lines (bytes.splitlines would also split on \x0b, \x1c, ... inside
    # strings); the empty piece after a final newline is not a line.
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return iter(pieces)


def _detect_format(obj: dict[str, Any]) -> str | None:
    if any(key in obj for key in ("preferred_output", "non_preferred_output")) or (
        "input" in obj and "messages" not in obj
    ):
        return "preference"
    if "messages" in obj:
        return "chat"
    if "prompt" in obj or "completion" in obj:
        return "completion"
    return None


def _has_assistant(messages: object) -> bool:
    return isinstance(messages, list) and any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    def __init__(self, source: str, allowed: tuple[str, ...], method: str, max_tokens: int) -> None:
        self.source = source
        self.allowed = allowed
        self.method = method
        self.max_tokens = max_tokens
        self.issues: list[ValidationIssue] = []
        self.total = 0
        self.examples = 0
        self.tokens = 0
        self.format: str | None = None
        self.format_line = 0

    def add(self, line: int | None, field: str | None, message: str) -> None:
        self.total += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(ValidationIssue(line, field, message))

    def check_line(self, n: int, raw: bytes | str) -> None:
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.add(n, None, f"is not valid UTF-8 (bad byte at offset {exc.start}); save the file as UTF-8")
                return
        else:
            text = raw
        text = text.rstrip("\r\n")
        if n == 1 and text.startswith("\ufeff"):
            self.add(n, None, "starts with a byte order mark (BOM); save the file as UTF-8 without BOM")
            text = text[1:]
        if not text.strip():
            self.add(n, None, "is blank; JSONL needs one JSON object per line, remove empty lines")
            return
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            self.add(n, None, f"is not valid JSON: {exc.msg} at column {exc.colno}")
            return
        if not isinstance(obj, dict):
            self.add(n, None, f"must be a JSON object, got {type(obj).__name__}")
            return
        self.examples += 1
        tokens = (len(text) + 3) // 4
        self.tokens += tokens
        if tokens > self.max_tokens:
            self.add(
                n,
                None,
                f"is too long: about {tokens} tokens, the limit is "
                f"{self.max_tokens} per example; shorten or split the example",
            )
        fmt = _detect_format(obj)
        if fmt is None:
            self.add(
                n,
                None,
                "has no recognisable training format; expected 'messages' (chat), "
                "'prompt' and 'completion' (completion), or 'input', 'preferred_output' and "
                "'non_preferred_output' (preference)",
            )
            return
        if fmt == "chat" and (
            self.method == "reinforcement"
            or (self.method == "auto" and (self.format == "reinforcement" or self._looks_rft(obj)))
        ):
            fmt = "reinforcement"
        if self.format is None:
            self.format, self.format_line = fmt, n
            if fmt not in self.allowed:
                self.add(n, None, self._method_mismatch(fmt))
        elif fmt != self.format:
            self.add(
                n,
                None,
                f"is {fmt} format but line {self.format_line} is {self.format}; all lines must use the same format",
            )
            return
        if fmt == "chat":
            self._check_chat(n, obj, require_assistant=True, strict_keys=True)
        elif fmt == "reinforcement":
            self._check_chat(n, obj, require_assistant=False, strict_keys=False)
        elif fmt == "completion":
            self._check_completion(n, obj)
        else:
            self._check_preference(n, obj)

    def _looks_rft(self, obj: dict[str, Any]) -> bool:
        # Reinforcement data has no assistant replies and carries grader fields next to
        # `messages`; without those extra keys it is more likely broken chat data.
        return (
            self.format is None
            and not _has_assistant(obj.get("messages"))
            and any(key not in _CHAT_KEYS for key in obj)
        )

    def _method_mismatch(self, fmt: str) -> str:
        wanted = " or ".join(self.allowed)
        hint = {"preference": "method 'dpo'", "reinforcement": "method 'reinforcement'"}.get(fmt, "method 'supervised'")
        return f"is {fmt} format, but method '{self.method}' needs {wanted} examples; {fmt} data is for {hint}"

    def _check_chat(self, n: int, obj: dict[str, Any], *, require_assistant: bool, strict_keys: bool) -> None:
        if strict_keys:
            for key in obj:
                if key not in _CHAT_KEYS:
                    self.add(
                        n,
                        key,
                        "is not an allowed key for chat examples; allowed keys: " + ", ".join(_CHAT_KEYS),
                    )
        messages = self._check_messages(n, "messages", obj.get("messages"), "messages" in obj)
        if messages is None:
            return
        if require_assistant and not _has_assistant(messages):
            self.add(
                n,
                "messages",
                "has no assistant message; each example needs at least one assistant reply to learn from",
            )
        if (
            not require_assistant
            and messages
            and isinstance(messages[-1], dict)
            and (messages[-1].get("role") == "assistant")
        ):
            self.add(
                n,
                f"messages[{len(messages) - 1}]",
                "is an assistant reply; reinforcement examples end with the prompt the model should answer",
            )
        self._check_tools(n, obj, "")

    def _check_messages(self, n: int, path: str, messages: object, present: bool) -> list[Any] | None:
        if not present:
            self.add(n, path, "is missing")
            return None
        if not isinstance(messages, list):
            self.add(n, path, "must be a list of message objects")
            return None
        if not messages:
            self.add(n, path, "must not be empty")
            return None
        for i, message in enumerate(messages):
            self._check_message(n, f"{path}[{i}]", message)
        return messages

    def _check_message(self, n: int, path: str, message: object) -> None:
        if not isinstance(message, dict):
            self.add(n, path, "must be an object with 'role' and 'content'")
            return
        role = message.get("role")
        if "role" not in message:
            self.add(n, f"{path}.role", f"is missing; use one of {_ROLE_HINT}")
        elif role not in _ROLES:
            self.add(n, f"{path}.role", f"{role!r} is not a valid role; use one of {_ROLE_HINT}")
        content = message.get("content")
        calls_tools = bool(message.get("tool_calls") or message.get("function_call"))
        if content is None:
            if not (role == "assistant" and calls_tools):
                self.add(
                    n,
                    f"{path}.content",
                    "is missing; give a string or a list of content "
                    "parts (only assistant messages with tool_calls may omit it)",
                )
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    self.add(
                        n,
                        f"{path}.content[{j}]",
                        'must be a content part object with a \'type\' (for example {"type": "text", "text": "..."})',
                    )
                elif part["type"] == "text" and not isinstance(part.get("text"), str):
                    self.add(n, f"{path}.content[{j}].text", "must be a string")
        elif not isinstance(content, str):
            self.add(
                n,
                f"{path}.content",
                f"must be a string or a list of content parts, got {type(content).__name__}",
            )
        if "weight" in message:
            weight = message["weight"]
            if role != "assistant":
                self.add(n, f"{path}.weight", "is only allowed on assistant messages")
            elif not (_is_int(weight) and weight in (0, 1)):
                self.add(n, f"{path}.weight", f"must be 0 or 1, got {weight!r}")
        if "name" in message and not isinstance(message["name"], str):
            self.add(n, f"{path}.name", "must be a string")
        if "tool_calls" in message and not (
            isinstance(message["tool_calls"], list) and all(isinstance(call, dict) for call in message["tool_calls"])
        ):
            self.add(n, f"{path}.tool_calls", "must be a list of tool call objects")

    def _check_tools(self, n: int, obj: dict[str, Any], prefix: str) -> None:
        if "tools" in obj:
            tools = obj["tools"]
            if not isinstance(tools, list):
                self.add(n, f"{prefix}tools", "must be a list of tool definitions")
            else:
                for i, tool in enumerate(tools):
                    function = tool.get("function") if isinstance(tool, dict) else None
                    if not (
                        isinstance(tool, dict)
                        and tool.get("type") == "function"
                        and isinstance(function, dict)
                        and isinstance(function.get("name"), str)
                    ):
                        self.add(
                            n,
                            f"{prefix}tools[{i}]",
                            'must be {"type": "function", "function": {"name": ...}}',
                        )
        if "functions" in obj:
            functions = obj["functions"]
            if not isinstance(functions, list) or not all(
                isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions
            ):
                self.add(n, f"{prefix}functions", "must be a list of objects with a 'name'")
        if "parallel_tool_calls" in obj and not isinstance(obj["parallel_tool_calls"], bool):
            self.add(n, f"{prefix}parallel_tool_calls", "must be true or false")

    def _check_completion(self, n: int, obj: dict[str, Any]) -> None:
        for key in _COMPLETION_KEYS:
            if key not in obj:
                self.add(n, key, "is missing; completion examples need 'prompt' and 'completion' strings")
            elif not isinstance(obj[key], str):
                self.add(n, key, f"must be a string, got {type(obj[key]).__name__}")
        for key in obj:
            if key not in _COMPLETION_KEYS:
                self.add(n, key, "is not an allowed key for completion examples; allowed keys: prompt, completion")

    def _check_preference(self, n: int, obj: dict[str, Any]) -> None:
        for key in obj:
            if key not in _PREFERENCE_KEYS:
                self.add(
                    n,
                    key,
                    "is not an allowed key for preference examples; allowed keys: " + ", ".join(_PREFERENCE_KEYS),
                )
        if "input" not in obj:
            self.add(n, "input", 'is missing; preference examples need {"input": {"messages": [...]}}')
        elif not isinstance(obj["input"], dict):
            self.add(n, "input", "must be an object with 'messages'")
        else:
            inp = obj["input"]
            for key in inp:
                if key not in _PREFERENCE_INPUT_KEYS:
                    self.add(
                        n,
                        f"input.{key}",
                        "is not an allowed key; allowed keys: " + ", ".join(_PREFERENCE_INPUT_KEYS),
                    )
            self._check_messages(n, "input.messages", inp.get("messages"), "messages" in inp)
            self._check_tools(n, inp, "input.")
        for key in ("preferred_output", "non_preferred_output"):
            output = self._check_messages(n, key, obj.get(key), key in obj)
            if output is not None and not _has_assistant(output):
                self.add(n, key, "must contain an assistant message")
