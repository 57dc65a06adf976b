"""airflow_provider_ft.validation: training-data checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ft.validation import (
    MAX_ISSUES,
    TrainingDataError,
    ValidationIssue,
    formats_for_method,
    validate_file,
    validate_jsonl,
)


def chat(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}], **extra}


def jsonl(rows: list[Any]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def only_issue(data: bytes, **kw: Any) -> ValidationIssue:
    report = validate_jsonl(data, source="train.jsonl", min_examples=1, **kw)
    assert report.total_issues == 1, report.summary()
    return report.issues[0]


def test_clean_chat_file() -> None:
    report = validate_jsonl(jsonl([chat(i) for i in range(10)]), source="train.jsonl")
    assert report.ok
    assert report.format == "chat"
    assert report.examples == 10
    assert report.issues == ()
    assert report.estimated_tokens > 0
    assert report.summary() == "train.jsonl: 10 chat-format examples, no problems found"
    report.raise_for_issues()


def test_bad_role_message_is_actionable() -> None:
    rows = [chat(i) for i in range(10)]
    rows[6] = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "y"},
            {"role": "bot", "content": "z"},
        ]
    }
    report = validate_jsonl(jsonl(rows), source="train.jsonl")
    assert report.issues == (
        ValidationIssue(
            7, "messages[2].role", "'bot' is not a valid role; use one of system, developer, user, assistant, tool"
        ),
    )
    assert report.issues[0].describe("train.jsonl") == (
        "train.jsonl line 7, field messages[2].role: 'bot' is not a valid role; use one of system, "
        "developer, user, assistant, tool"
    )
    assert "train.jsonl line 7, field messages[2].role" in report.summary()


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ({"messages": []}, "messages", "must not be empty"),
        ({"messages": "hi"}, "messages", "must be a list"),
        ({"messages": [{"role": "user", "content": "q"}]}, "messages", "has no assistant message"),
        ({"messages": [{"content": "q"}, {"role": "assistant", "content": "a"}]}, "messages[0].role", "is missing"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "messages[0].content", "is missing"),
        (
            {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]},
            "messages[0].content",
            "got int",
        ),
        (
            {"messages": [{"role": "user", "content": [{"text": "x"}]}, {"role": "assistant", "content": "a"}]},
            "messages[0].content[0]",
            "content part",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]},
            "messages[1].weight",
            "must be 0 or 1",
        ),
        (
            {"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]},
            "messages[0].weight",
            "only allowed on assistant",
        ),
        ({**chat(), "tools": [{"type": "function"}]}, "tools[0]", '"type": "function"'),
        ({**chat(), "parallel_tool_calls": "yes"}, "parallel_tool_calls", "true or false"),
        ({**chat(), "label": "x"}, "label", "not an allowed key for chat"),
        ({"prompt": "p"}, "completion", "is missing"),
        ({"prompt": "p", "completion": 3}, "completion", "must be a string"),
    ],
)
def test_chat_and_completion_problems(row: dict[str, Any], field: str, fragment: str) -> None:
    issue = only_issue(jsonl([row]))
    assert issue.line == 1
    assert issue.field == field
    assert fragment in issue.message


def test_valid_variants_pass() -> None:
    rows = [
        {
            "messages": [
                {"role": "developer", "content": "d"},
                {"role": "user", "content": [{"type": "text", "text": "x"}]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
                {"role": "tool", "content": "42", "tool_call_id": "c"},
                {"role": "assistant", "content": "done", "weight": 0},
            ],
            "tools": [{"type": "function", "function": {"name": "calc"}}],
            "parallel_tool_calls": False,
        },
    ]
    assert validate_jsonl(jsonl(rows), min_examples=1).ok
    assert validate_jsonl(jsonl([{"prompt": "p", "completion": "c"}]), min_examples=1).format == "completion"


def test_line_level_problems() -> None:
    data = b'{"messages": [}\n\n[1, 2]\n\xff\xfe\n' + jsonl([chat()])
    report = validate_jsonl(data, source="t.jsonl", min_examples=1)
    assert [(i.line, i.message.split(" ")[1]) for i in report.issues] == [
        (1, "not"),
        (2, "blank;"),
        (3, "be"),
        (4, "not"),
    ]
    assert "not valid JSON" in report.issues[0].message
    assert "got list" in report.issues[2].message
    assert "UTF-8" in report.issues[3].message
    assert report.examples == 1  # only lines holding a JSON object count as examples


def test_bom_is_reported() -> None:
    issue = only_issue(b"\xef\xbb\xbf" + jsonl([chat()]))
    assert issue.line == 1 and "byte order mark" in issue.message


def test_mixed_formats() -> None:
    rows = [chat(i) for i in range(6)] + [{"prompt": "p", "completion": "c"}]
    issue = only_issue(jsonl(rows))
    assert issue.line == 7
    assert issue.message.startswith("is completion format but line 1 is chat")


def test_unknown_format() -> None:
    issue = only_issue(jsonl([{"text": "hello"}]))
    assert "no recognisable training format" in issue.message


def test_too_few_examples_and_too_long() -> None:
    report = validate_jsonl(jsonl([chat(i) for i in range(3)]), source="s.jsonl")
    assert report.total_issues == 1
    assert report.issues[0] == ValidationIssue(None, None, "has 3 examples; fine-tuning needs at least 10")
    issue = only_issue(jsonl([chat(0, tools=[])]), max_example_tokens=10)
    assert issue.message.startswith("is too long: about")


def test_preference_and_method_matching() -> None:
    good = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    assert validate_jsonl(jsonl([good]), method="dpo", min_examples=1).format == "preference"
    issue = only_issue(jsonl([{**good, "non_preferred_output": [{"role": "user", "content": "x"}]}]), method="dpo")
    assert issue.field == "non_preferred_output" and "assistant message" in issue.message
    issue = only_issue(
        jsonl(
            [
                {
                    "input": {},
                    "preferred_output": good["preferred_output"],
                    "non_preferred_output": good["non_preferred_output"],
                }
            ]
        ),
        method="dpo",
    )
    assert issue.field == "input.messages"
    issue = only_issue(jsonl([good]), method="supervised")
    assert "needs chat or completion examples" in issue.message and "method 'dpo'" in issue.message
    issue = only_issue(jsonl([chat()]), method="dpo")
    assert "is chat format" in issue.message


def test_reinforcement() -> None:
    row = {"messages": [{"role": "user", "content": "2+2?"}], "reference": "4"}
    report = validate_jsonl(jsonl([row]), method="reinforcement", min_examples=1)
    assert report.ok and report.format == "reinforcement"
    assert validate_jsonl(jsonl([row]), method="auto", min_examples=1).format == "reinforcement"
    ends_with_reply = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    issue = only_issue(jsonl([ends_with_reply]), method="reinforcement")
    assert issue.field == "messages[1]"


def test_auto_accepts_any_single_format() -> None:
    assert validate_jsonl(jsonl([chat()]), method="auto", min_examples=1).format == "chat"
    assert formats_for_method("auto") == ("chat", "completion", "preference", "reinforcement")
    with pytest.raises(ValueError, match="unknown method"):
        validate_jsonl(b"", method="lora")


def test_issue_cap_counts_everything() -> None:
    report = validate_jsonl(b"nope\n" * 120, min_examples=0)
    assert len(report.issues) == MAX_ISSUES
    assert report.total_issues == 120
    assert report.summary(limit=2).endswith("... and 118 more")


def test_iterable_of_lines_and_file(tmp_path: Path) -> None:
    lines = [json.dumps(chat(i)) + "\n" for i in range(10)]
    assert validate_jsonl(iter(lines)).ok
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl([chat(i) for i in range(9)]) + b"\n")
    report = validate_file(path)
    assert report.source == str(path)
    assert [(i.line, i.field) for i in report.issues] == [(10, None), (None, None)]
    assert "is blank" in report.issues[0].message


def test_training_data_error() -> None:
    report = validate_jsonl(b"", source="empty.jsonl")
    with pytest.raises(TrainingDataError) as info:
        report.raise_for_issues()
    assert info.value.report is report
    assert str(info.value) == report.summary()
    assert str(info.value).startswith("empty.jsonl: 1 problem in 0 examples")
    assert isinstance(info.value, ValueError)
