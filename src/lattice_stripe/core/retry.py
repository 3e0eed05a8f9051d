"""The retry policy: pure decisions, from a response or a failure, to retry or not, and when.

Retried: connection failures the transport marks retryable, 409 (lock
timeout or concurrent idempotent request), 429, and 5xx, unless Stripe says
``Stripe-Should-Retry: false``; ``Stripe-Should-Retry: true`` retries any
status. The wait is exponential with jitter, capped at ``max_delay``, and never
shorter than the server's ``Retry-After``; a ``Retry-After`` longer than the
cap is not waited for: the error is raised at once instead of blocking.
Every attempt carries the same idempotency key, so a retry never creates a
second session.
"""

import attrs

from lattice_stripe.core.errors import APIConnectionError
from lattice_stripe.core.http import HttpResponse

__all__ = ["RetryPolicy"]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How many times to retry and how long to wait; ``random`` values come from the caller."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 5.0

    def backoff(self, retries_done: int, random: float) -> float:
        """The wait before retry number ``retries_done + 1``: exponential, half-jittered, capped."""
        delay: float = min(self.initial_delay * 2.0 ** min(retries_done, 32), self.max_delay)
        return delay * (0.5 + 0.5 * random)

    def after_failure(
        self, retries_done: int, error: APIConnectionError, random: float
    ) -> float | None:
        """Seconds to wait before retrying after a connection failure, or ``None`` to give up."""
        if retries_done >= self.max_retries or not error.should_retry:
            return None
        return self.backoff(retries_done, random)

    def after_response(
        self, retries_done: int, response: HttpResponse, random: float
    ) -> float | None:
        """Seconds to wait before retrying after an error response, or ``None`` to give up."""
        if retries_done >= self.max_retries:
            return None
        should_retry = response.header("stripe-should-retry")
        if should_retry == "false":
            return None
        status = response.status
        if should_retry != "true" and not (status in (409, 429) or status >= 500):
            return None
        delay = self.backoff(retries_done, random)
        retry_after = _seconds(response.header("retry-after"))
        if retry_after is not None:
            if retry_after > self.max_delay:
                return None
            delay = max(delay, retry_after)
        return delay


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in delta-seconds; an HTTP date or junk is ignored."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None
