"""Fault injection: rate limits, server errors, slow answers, resets and lost responses.

A FaultPlan is data (so it can travel as JSON through the admin endpoint); a FaultInjector applies
it with a seeded RNG, so a failing run replays the same faults for the same request sequence.
Rules with ``count`` hit exactly the next N matching requests, which deterministic tests prefer
over probabilities. Only API requests are ever faulted (not the admin endpoints); rules name
OpenAI paths (``/v1/...``), onto which the Azure dialect's ``/openai/v1/...`` and dated
``/openai/...`` paths map.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

FAULT_KINDS = ("reset", "rate_limit", "server_error", "slow", "lost_response")
SERVER_ERROR_STATUSES = (500, 502, 503)
# A lost response matters where the request commits something the client cannot see.
DEFAULT_LOST_RESPONSE_PATHS = ("POST /v1/files", "POST /v1/fine_tuning/jobs")


@dataclass
class FaultRule:
    """When one kind of fault fires.

    ``paths``: patterns like ``"POST /v1/fine_tuning/jobs"`` or ``"GET /v1/fine_tuning/jobs/*"``
    (``*`` or ``{name}`` matches one path segment; no method means any method); empty means every
    /v1 request (lost_response: the create-file and create-job POSTs).
    ``count``: fire for exactly the next ``count`` matching requests (``share`` is then ignored).
    ``share``: otherwise, the probability of firing for each matching request.
    ``seconds``: the delay for ``slow``; the advertised retry delay for ``rate_limit``.
    ``status``: for ``server_error``, a fixed status instead of a random 500/502/503.
    """

    share: float = 0.0
    count: int | None = None
    paths: tuple[str, ...] = ()
    seconds: float = 1.0
    status: int | None = None

    def __post_init__(self) -> None:
        self.paths = tuple(self.paths)
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be between 0 and 1, got {self.share}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if self.seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {self.seconds}")
        if self.status is not None and not 500 <= self.status <= 599:
            raise ValueError(f"status must be a 5xx code, got {self.status}")

    def matches(self, method: str, path: str, default_paths: tuple[str, ...] = ()) -> bool:
        patterns = self.paths or default_paths
        return not patterns or any(_match(p, method, path) for p in patterns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "count": self.count,
            "paths": list(self.paths),
            "seconds": self.seconds,
            "status": self.status,
        }

    @classmethod
    def from_value(cls, value: object) -> FaultRule:
        """A number is a share; a dict gives the fields."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(share=float(value))
        if not isinstance(value, Mapping):
            raise ValueError(f"a fault rule must be a number or an object, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        paths = value.get("paths", ())
        if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
            raise ValueError("paths must be a list of strings")
        count = value.get("count")
        status = value.get("status")
        return cls(
            share=float(value.get("share", 0.0)),
            count=None if count is None else int(count),
            paths=tuple(paths),
            seconds=float(value.get("seconds", 1.0)),
            status=None if status is None else int(status),
        )


def _match(pattern: str, method: str, path: str) -> bool:
    want_method, _, want_path = pattern.strip().rpartition(" ")
    if want_method and want_method.upper() not in ("*", method.upper()):
        return False
    want = want_path.strip("/").split("/")
    got = path.split("?", 1)[0].strip("/").split("/")
    return len(want) == len(got) and all(
        w == "*" or (w.startswith("{") and w.endswith("}")) or w == g for w, g in zip(want, got, strict=True)
    )


@dataclass
class FaultPlan:
    """Which faults to inject. ``seed`` makes the random ones replayable."""

    seed: int = 0
    reset: FaultRule | None = None  # close the connection (RST) before answering
    rate_limit: FaultRule | None = None  # 429 with retry-after-ms and Retry-After
    server_error: FaultRule | None = None  # 500/502/503
    slow: FaultRule | None = None  # sleep `seconds` before answering
    lost_response: FaultRule | None = None  # do the work, then close without answering

    def rule(self, kind: str) -> FaultRule | None:
        rule: FaultRule | None = getattr(self, kind)
        return rule

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        unknown = set(data) - {"seed", *FAULT_KINDS}
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}; use {', '.join(FAULT_KINDS)}")
        rules = {k: FaultRule.from_value(data[k]) for k in FAULT_KINDS if data.get(k) is not None}
        return cls(seed=int(data.get("seed", 0)), **rules)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed}
        for kind in FAULT_KINDS:
            rule = self.rule(kind)
            out[kind] = rule.to_dict() if rule is not None else None
        return out


@dataclass
class FaultDecision:
    """What to do with one request."""

    reset: bool = False
    status: int | None = None  # 429 or 5xx answered instead of the real one
    retry_after: float = 0.0
    delay: float = 0.0
    lose_response: bool = False
    kinds: list[str] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        return ",".join(self.kinds) or None


class FaultInjector:
    """Applies a FaultPlan; thread-safe, and its RNG and counters live as long as the plan."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.set_plan(plan)

    def set_plan(self, plan: FaultPlan | None) -> None:
        with self._lock:
            # Copy so counters spent here never leak back into the caller's plan object.
            self._plan = FaultPlan.from_dict(plan.to_dict()) if plan is not None else FaultPlan()
            self._rng = random.Random(self._plan.seed)

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return FaultPlan.from_dict(self._plan.to_dict())

    def _fires(self, kind: str, method: str, path: str) -> FaultRule | None:
        rule = self._plan.rule(kind)
        defaults = DEFAULT_LOST_RESPONSE_PATHS if kind == "lost_response" else ()
        if rule is None or not rule.matches(method, path, defaults):
            return None
        if rule.count is not None:
            if rule.count <= 0:
                return None
            rule.count -= 1
            return rule
        return rule if rule.share > 0 and self._rng.random() < rule.share else None

    def decide(self, method: str, path: str) -> FaultDecision:
        decision = FaultDecision()
        with self._lock:
            if self._fires("reset", method, path):
                decision.reset = True
                decision.kinds.append("reset")
                return decision
            slow = self._fires("slow", method, path)
            if slow is not None:
                decision.delay = slow.seconds
                decision.kinds.append("slow")
            limited = self._fires("rate_limit", method, path)
            if limited is not None:
                decision.status, decision.retry_after = 429, limited.seconds
                decision.kinds.append("rate_limit")
                return decision
            broken = self._fires("server_error", method, path)
            if broken is not None:
                decision.status = broken.status or self._rng.choice(SERVER_ERROR_STATUSES)
                decision.kinds.append("server_error")
                return decision
            if self._fires("lost_response", method, path):
                decision.lose_response = True
                decision.kinds.append("lost_response")
        return decision
