"""The plug points of the core: transports, a clock, identifiers, randomness.

Each is a :class:`typing.Protocol`, so any object of the right shape fits: the
real adapters, :class:`~lattice_stripe.adapters.recording.RecordingTransport`,
or a few lines of test code.
"""

from typing import Protocol, runtime_checkable

from lattice_stripe.core.http import HttpRequest, HttpResponse

__all__ = ["AsyncTransport", "Clock", "IdGenerator", "Monotonic", "RandomSource", "SyncTransport"]


@runtime_checkable
class SyncTransport(Protocol):
    """Sends one request and returns its response, blocking.

    Failures to get any response raise
    :class:`~lattice_stripe.core.errors.APIConnectionError`; an HTTP error status
    is a response, not an exception.
    """

    def send(self, request: HttpRequest) -> HttpResponse: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncTransport(Protocol):
    """The asynchronous twin of :class:`SyncTransport`.

    Its method is ``asend`` (not ``send``) so one object, such as the recording
    fake, can serve both a :class:`~lattice_stripe.Client` and an
    :class:`~lattice_stripe.AsyncClient`.
    """

    async def asend(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch (``time.time`` fits)."""

    def __call__(self) -> float: ...


class Monotonic(Protocol):
    """Seconds on a clock that never goes back, for deadlines (``time.monotonic`` fits)."""

    def __call__(self) -> float: ...


class IdGenerator(Protocol):
    """Makes a fresh unique string, such as an idempotency key."""

    def __call__(self) -> str: ...


class RandomSource(Protocol):
    """A float in [0, 1), for retry jitter (``random.random`` fits)."""

    def __call__(self) -> float: ...
