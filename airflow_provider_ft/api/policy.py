"""When to retry a request and how long to wait first. Pure functions: no I/O, no sleeping."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

# 408/409 are transient on this API (timeouts, lock conflicts); 429 is rate limiting.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# Answers a proxy gives without reaching the application: the request was not processed.
NOT_PROCESSED_STATUSES = frozenset({429, 502, 503})


class Failure(Enum):
    """A transport-level failure, classified by whether the request could have been processed."""

    CONNECT = "connect"  # nothing was sent: always safe to retry
    TIMEOUT = "timeout"  # sent, no answer in time: may have been processed
    DISCONNECT = "disconnect"  # sent, connection dropped: may have been processed


@dataclass(frozen=True)
class Outcome:
    """What one attempt produced: an HTTP status (with headers) or a transport failure."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    failure: Failure | None = None

    @property
    def maybe_processed(self) -> bool:
        if self.failure is not None:
            return self.failure is not Failure.CONNECT
        return self.status is not None and self.status >= 500 and self.status not in NOT_PROCESSED_STATUSES


def is_retryable(outcome: Outcome) -> bool:
    if outcome.failure is not None:
        return True
    status = outcome.status
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``Retry-After`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
            if ms >= 0:
                return ms / 1000.0
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
        return seconds if seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time spent waiting."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 120.0
    # A server's Retry-After above this is treated as "give up", not as a wait.
    max_retry_after: float = 60.0

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry ``retry_number`` (1-based): base * 2^(n-1), capped, with +-25% jitter."""
        delay: float = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return delay * (0.75 + 0.5 * rand())

    def start(self, *, idempotent: bool = True) -> RetryState:
        return RetryState(self, idempotent=idempotent)


class RetryState:
    """Tracks one logical call across attempts; both transports drive it the same way."""

    def __init__(self, policy: RetryPolicy, *, idempotent: bool) -> None:
        self.policy = policy
        self.idempotent = idempotent
        self.retries = 0
        self.waited = 0.0

    def next_delay(self, outcome: Outcome, now: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when the caller must stop and raise."""
        if not is_retryable(outcome):
            return None
        # A create that may have gone through is never blindly resent: the caller reconciles first.
        if not self.idempotent and outcome.maybe_processed:
            return None
        if self.retries >= self.policy.max_retries:
            return None
        self.retries += 1
        delay = self.policy.backoff(self.retries)
        server_wait = parse_retry_after(outcome.headers, now) if outcome.status is not None else None
        if server_wait is not None:
            if server_wait > self.policy.max_retry_after:
                return None
            delay = server_wait
        if self.waited + delay > self.policy.max_total_wait:
            return None
        self.waited += delay
        return delay
