"""The retry policy's pure decisions: whether to retry, and how long to wait first."""

import pytest

from lattice_stripe import APIConnectionError, HttpResponse
from lattice_stripe.core.retry import RetryPolicy

POLICY = RetryPolicy(max_retries=2)


def response(status: int, **headers: str) -> HttpResponse:
    return HttpResponse(status=status, headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    ("retries_done", "random", "expected"),
    [
        (0, 0.0, 0.25),
        (0, 0.5, 0.375),
        (1, 0.0, 0.5),
        (1, 0.5, 0.75),
        (2, 0.25, 1.25),
        (3, 0.75, 3.5),
        (4, 0.0, 2.5),
        (4, 0.5, 3.75),
        (9, 0.999, 4.9975),
        (60, 0.5, 3.75),
    ],
)
def test_backoff_is_exponential_half_jittered_and_capped(
    retries_done: int, random: float, expected: float
) -> None:
    """0.5 s doubling per retry, capped at 5 s, scaled into [50 %, 100 %) by the random draw."""
    assert RetryPolicy(max_retries=100).backoff(retries_done, random) == pytest.approx(expected)


def test_backoff_never_exceeds_five_seconds() -> None:
    """Whatever the retry number and draw, the wait is at most the 5 s cap."""
    policy = RetryPolicy(max_retries=1000)
    for retries_done in range(200):
        for random in (0.0, 0.3, 0.9999999):
            assert 0 < policy.backoff(retries_done, random) < 5.0


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    """409, 429 and 5xx are retried after the backoff."""
    assert POLICY.after_response(0, response(status), 0.5) == pytest.approx(0.375)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    """Other 4xx answers will not change on a retry."""
    assert POLICY.after_response(0, response(status), 0.5) is None


def test_should_retry_false_stops_a_retryable_status() -> None:
    """Stripe-Should-Retry: false wins over a 5xx."""
    assert POLICY.after_response(0, response(503, Stripe_Should_Retry="false"), 0.5) is None


def test_should_retry_true_forces_a_retry() -> None:
    """Stripe-Should-Retry: true retries even a 400."""
    delay = POLICY.after_response(0, response(400, Stripe_Should_Retry="true"), 0.0)
    assert delay == pytest.approx(0.25)


def test_should_retry_true_does_not_exceed_max_retries() -> None:
    """Stripe-Should-Retry: true does not go beyond max_retries."""
    assert POLICY.after_response(2, response(500, Stripe_Should_Retry="true"), 0.5) is None


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("0.1", 0.375), ("5", 5.0)])
def test_retry_after_is_a_lower_bound(header: str, expected: float) -> None:
    """Retry-After (seconds) is waited for when longer than the backoff."""
    assert POLICY.after_response(0, response(429, Retry_After=header), 0.5) == pytest.approx(
        expected
    )


@pytest.mark.parametrize("header", ["5.01", "30", "inf"])
def test_retry_after_beyond_the_cap_gives_up(header: str) -> None:
    """A Retry-After longer than 5 s is not waited for: the error is raised at once."""
    assert POLICY.after_response(0, response(429, Retry_After=header), 0.5) is None


@pytest.mark.parametrize("header", ["Wed, 21 Oct 2026 07:28:00 GMT", "soon", "-3", "nan", ""])
def test_unusable_retry_after_is_ignored(header: str) -> None:
    """An HTTP date, junk, a negative or NaN Retry-After falls back to the backoff."""
    assert POLICY.after_response(0, response(503, Retry_After=header), 0.5) == pytest.approx(0.375)


def test_max_retries_bounds_response_retries() -> None:
    """With max_retries=2, the third failure is final."""
    assert POLICY.after_response(1, response(500), 0.5) is not None
    assert POLICY.after_response(2, response(500), 0.5) is None


def test_zero_retries_never_retries() -> None:
    """max_retries=0 gives up on the first failure of any kind."""
    policy = RetryPolicy(max_retries=0)
    assert policy.after_response(0, response(500, Stripe_Should_Retry="true"), 0.5) is None
    assert policy.after_failure(0, APIConnectionError("reset"), 0.5) is None


def test_connection_failures_are_retried_when_marked_safe() -> None:
    """A retryable connection failure waits the backoff; a non-retryable one gives up."""
    assert POLICY.after_failure(1, APIConnectionError("reset"), 0.0) == pytest.approx(0.5)
    unsafe = APIConnectionError("sent but no answer", should_retry=False)
    assert POLICY.after_failure(0, unsafe, 0.0) is None
    assert POLICY.after_failure(2, APIConnectionError("reset"), 0.0) is None
