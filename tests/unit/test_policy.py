from __future__ import annotations

import email.utils

import pytest

from airflow_provider_ft.api.policy import Failure, Outcome, RetryPolicy, is_retryable, parse_retry_after


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert is_retryable(Outcome(status=status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 200])
def test_client_errors_are_never_retried(status: int) -> None:
    assert not is_retryable(Outcome(status=status))
    assert RetryPolicy().start().next_delay(Outcome(status=status)) is None


@pytest.mark.parametrize("failure", list(Failure))
def test_transport_failures_are_retried_for_idempotent_calls(failure: Failure) -> None:
    assert RetryPolicy(base_delay=1).start().next_delay(Outcome(failure=failure)) is not None


def test_non_idempotent_call_is_not_resent_when_it_may_have_been_processed() -> None:
    state = RetryPolicy().start(idempotent=False)
    assert state.next_delay(Outcome(failure=Failure.TIMEOUT)) is None
    assert state.next_delay(Outcome(failure=Failure.DISCONNECT)) is None
    assert state.next_delay(Outcome(status=500)) is None
    # Nothing was sent, or the server refused before processing: safe to resend.
    assert state.next_delay(Outcome(failure=Failure.CONNECT)) is not None
    assert state.next_delay(Outcome(status=429)) is not None
    assert state.next_delay(Outcome(status=503)) is not None


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": email.utils.formatdate(now - 30, usegmt=True)}, now=now) == 0.0


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "soon"}, {"retry-after-ms": "-5"}, {"Retry-After": "-1"}])
def test_unusable_retry_after_is_ignored(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


def test_server_retry_after_is_the_delay() -> None:
    state = RetryPolicy(base_delay=10).start()
    assert state.next_delay(Outcome(status=429, headers={"retry-after-ms": "250"})) == 0.25


def test_retry_after_beyond_limit_gives_up() -> None:
    state = RetryPolicy(max_retry_after=60).start()
    assert state.next_delay(Outcome(status=429, headers={"Retry-After": "3600"})) is None


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=100)
    assert policy.backoff(1, rand=lambda: 0.0) == 0.75
    assert policy.backoff(1, rand=lambda: 1.0) == 1.25
    assert policy.backoff(4, rand=lambda: 0.5) == 8.0
    assert policy.backoff(20, rand=lambda: 0.5) == 100.0


def test_attempts_are_bounded() -> None:
    state = RetryPolicy(max_retries=3, base_delay=0.01).start()
    delays = [state.next_delay(Outcome(status=503)) for _ in range(5)]
    assert [d is not None for d in delays] == [True, True, True, False, False]


def test_total_wait_is_bounded() -> None:
    state = RetryPolicy(max_retries=100, base_delay=10, max_delay=10, max_total_wait=25).start()
    delays = []
    while (d := state.next_delay(Outcome(status=500))) is not None:
        delays.append(d)
    assert sum(delays) <= 25
    # Each delay is 7.5-12.5 s (10 s +-25% jitter): two or three fit in 25 s, never more.
    assert 2 <= len(delays) <= 3
    assert state.retries < 100, "it stopped because of the total wait, not the attempt count"
