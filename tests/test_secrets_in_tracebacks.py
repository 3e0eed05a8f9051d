"""No secret in a traceback rendered with its frames' locals, whatever interrupts a call.

Error trackers (Sentry, Rollbar), ``traceback.TracebackException(...,
capture_locals=True)`` and ``pytest --showlocals`` print every frame's locals.
The HTTP libraries' frames hold the request headers, ``Authorization: Bearer
sk_...`` included, and the decoder's frames hold the response body with the
portal URL. Each case interrupts a real call at a real point (a timeout, a
cancellation, a signal, a bad setting) and renders what reaches the caller.
"""

import asyncio
import contextlib
import inspect
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("webob")  # imported under the filter that hides its cgi warning

from pyramid.config import Configurator
from starlette.applications import Starlette

from faultserver import FaultServer, SlowBody, Stall, unresponsive_port
from lattice_stripe import AsyncClient, Client, LatticeStripeError, ValidationError
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.asyncio import AsyncioTransport
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.adapters.stdlib import StdlibTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.contrib.starlette import stripe_lifespan

API_KEY = "sk_test_51FramesAuditKey00000000000000"
LIVE_KEY = "sk_live_51FramesAuditLiveKey000000000"
PARAMS = {"customer": "cus_FramesAudit", "return_url": "https://example.com/account"}
# The fault server's session URLs end in "test_Loopback<number>".
SYNC_TRANSPORTS = {"urllib3": Urllib3Transport, "stdlib": StdlibTransport}
ASYNC_TRANSPORTS = {"aiohttp": AiohttpTransport, "asyncio": AsyncioTransport}
SECRETS = (API_KEY, LIVE_KEY, API_KEY[8:], LIVE_KEY[8:], "/p/session/", "test_Loopback")


class WorkerTimeout(Exception):
    """What a worker's timeout or a SIGALRM handler raises in the middle of a call."""


def render(error: BaseException) -> str:
    """The error's whole chain, every frame with its locals, as error trackers render it."""
    return "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())


def assert_no_secret(error: BaseException) -> None:
    """Neither the rendered traceback with locals nor str/repr shows a key or a portal URL."""
    for text in (render(error), str(error), repr(error)):
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into:\n{text}"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A scripted loopback server, stopped after the test."""
    with FaultServer() as running:
        yield running


@contextlib.contextmanager
def phase_url(phase: str, server: FaultServer) -> Iterator[str]:
    """A base URL at which a create is still connecting, waiting for headers, or reading."""
    if phase == "connecting":
        try:
            with unresponsive_port() as port:
                yield f"http://127.0.0.1:{port}"
        except LookupError as reason:
            pytest.skip(str(reason))
        return
    if phase == "headers":
        server.script(Stall(seconds=5.0))
    else:
        server.script(SlowBody(pieces=20, gap=0.1))
    yield server.base_url


# -- async: timeouts and cancellation while aiohttp works ---------------------------


async def _create(base_url: str, transport: str) -> None:
    async with AsyncClient(
        API_KEY, transport=ASYNC_TRANSPORTS[transport](), base_url=base_url, max_retries=0
    ) as client:
        await client.billing_portal.sessions.create(PARAMS)


async def _interrupted(base_url: str, how: str, transport: str) -> BaseException:
    if how == "asyncio.timeout":
        if sys.version_info < (3, 11):
            pytest.skip("asyncio.timeout is new in Python 3.11")
        else:
            try:
                async with asyncio.timeout(0.3):
                    await _create(base_url, transport)
            except TimeoutError as error:
                return error
    elif how == "wait_for":
        try:
            await asyncio.wait_for(_create(base_url, transport), 0.3)
        except TimeoutError as error:
            return error
    else:
        task = asyncio.create_task(_create(base_url, transport))
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as error:
            return error
    raise AssertionError("the create was not interrupted")


@pytest.mark.parametrize("transport", list(ASYNC_TRANSPORTS))
@pytest.mark.parametrize("phase", ["connecting", "headers", "body"])
@pytest.mark.parametrize("how", ["asyncio.timeout", "wait_for", "cancel"])
def test_an_interrupted_async_create_leaves_no_secret_in_any_frame(
    server: FaultServer, phase: str, how: str, transport: str
) -> None:
    """A timeout or cancellation inside a transport propagates as itself, no secret in locals."""
    with phase_url(phase, server) as url:
        error = asyncio.run(_interrupted(url, how, transport))
    assert isinstance(error, TimeoutError if how != "cancel" else asyncio.CancelledError)
    assert_no_secret(error)


# -- sync: an exception raised during the wait (a signal handler, a worker timeout) ----


@contextlib.contextmanager
def alarm(seconds: float, exception: type[BaseException]) -> Iterator[None]:
    """Raise ``exception`` from a SIGALRM handler after ``seconds``, as gunicorn's timeouts do."""

    def ring(signum: int, frame: FrameType | None) -> None:
        raise exception("interrupted")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# urllib3 leaves the half-made socket of an interrupted connect unclosed (it closes
# it only on OSError); the garbage collector's ResourceWarning is urllib3's, not a leak
# of a secret.
URLLIB3_INTERRUPTED_CONNECT = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
@pytest.mark.parametrize(
    "phase",
    [pytest.param("connecting", marks=URLLIB3_INTERRUPTED_CONNECT), "headers", "body"],
)
@pytest.mark.parametrize("exception", [WorkerTimeout, KeyboardInterrupt])
@pytest.mark.parametrize("transport", list(SYNC_TRANSPORTS))
def test_a_signal_during_a_sync_create_leaves_no_secret_in_any_frame(
    server: FaultServer, phase: str, exception: type[BaseException], transport: str
) -> None:
    """An exception raised by a signal handler inside urllib3 propagates as itself, secret-free."""
    with (
        phase_url(phase, server) as url,
        Client(
            API_KEY, transport=SYNC_TRANSPORTS[transport](), base_url=url, max_retries=0
        ) as client,
        pytest.raises(exception) as info,
        alarm(0.3, exception),
    ):
        client.billing_portal.sessions.create(PARAMS)
    assert_no_secret(info.value)


# -- construction and per-call settings ---------------------------------------------


# By name: the test's own frame must not hold the key, or its locals would show it.
KEYS = {
    "test": API_KEY,
    "live": LIVE_KEY,
    "newline": API_KEY + "\n",
    "space": " " + LIVE_KEY,
}


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
@pytest.mark.parametrize(
    ("key", "setting"),
    [
        ("test", {"timeout": -1}),
        ("test", {"deadline": 0}),
        ("test", {"base_url": "ftp://example.com"}),
        ("newline", {}),
        ("space", {}),
        ("live", {"allow_http_localhost": True}),
        ("live", {"base_url": "http://127.0.0.1:1"}),
    ],
)
def test_a_client_refusing_its_settings_keeps_the_key_out_of_its_traceback(
    client_class: type[Client] | type[AsyncClient], key: str, setting: dict[str, Any]
) -> None:
    """Construction with a bad setting raises ValidationError, renderable and secret-free."""
    with pytest.raises(ValidationError) as info:
        client_class(KEYS[key], **setting)
    assert_no_secret(info.value)


def test_an_invalid_per_call_key_stays_out_of_the_traceback() -> None:
    """A per-call api_key with a trailing newline is refused without showing it anywhere."""
    with (
        Client(API_KEY, transport=RecordingTransport()) as client,
        pytest.raises(ValidationError) as info,
    ):
        client.billing_portal.sessions.create(PARAMS, api_key=LIVE_KEY + "\n")
    assert info.value.path == "api_key"
    assert_no_secret(info.value)


# -- framework set-up ---------------------------------------------------------------


BAD_PYRAMID_SETTINGS = {
    "negative timeout": {"lattice_stripe.timeout": "-1"},
    "timeout in words": {"lattice_stripe.timeout": "soon"},
    "malformed key": {"lattice_stripe.api_key": LIVE_KEY + "x!"},
    "live key over http": {"lattice_stripe.base_url": "http://127.0.0.1:1"},
}


def _pyramid_settings(bad: str) -> dict[str, str]:
    return {"lattice_stripe.api_key": LIVE_KEY, **BAD_PYRAMID_SETTINGS[bad]}


@pytest.mark.parametrize("bad", list(BAD_PYRAMID_SETTINGS))
def test_pyramid_settings_errors_keep_the_key_out_of_the_traceback(bad: str) -> None:
    """A bad lattice_stripe.* setting stops the start with a traceback holding no key."""
    config = Configurator(settings=_pyramid_settings(bad))
    config.include("lattice_stripe.contrib.pyramid")
    with pytest.raises(Exception) as info:  # noqa: PT011 - Pyramid wraps it
        config.commit()
    assert "lattice_stripe." in str(info.value)
    assert_no_secret(info.value)


class InnerStartupFailed(Exception):
    """The application's own lifespan failed at start-up."""


def test_a_failing_inner_lifespan_keeps_the_key_out_of_the_traceback() -> None:
    """stripe_lifespan(inner=...) whose inner start-up fails: the traceback holds no key."""

    @contextlib.asynccontextmanager
    async def inner(app: Starlette) -> Any:
        raise InnerStartupFailed("database unreachable")
        yield  # pragma: no cover

    lifespan = stripe_lifespan(
        LIVE_KEY, transport=RecordingTransport(), allowed_hosts=["shop.example"], inner=inner
    )
    app = Starlette(lifespan=lifespan)

    async def start() -> None:
        async with lifespan(app):
            pass  # pragma: no cover

    with pytest.raises(InnerStartupFailed) as info:
        asyncio.run(start())
    assert_no_secret(info.value)


# -- any interruption point ---------------------------------------------------------


class Interrupt(BaseException):
    """Raised at one chosen line of whatever code a create runs, library's or not."""


# Not urllib3's own lines: its pool holds a lock across several of them, and an
# exception raised there leaves the lock held (urllib3's, not the library's, to fix);
# the signal cases above interrupt urllib3 where a real signal does, in a blocked read.
_CALL_PATHS = ("/lattice_stripe/", "/http/", "/email/", "/json/", "socket.py")


def _in_the_call(frame: FrameType) -> bool:
    """A line of the library, the HTTP stack or the decoder (not the garbage collector's)."""
    return any(part in frame.f_code.co_filename for part in _CALL_PATHS)


def _in_a_coroutine(frame: FrameType) -> bool:
    """A line of a coroutine of the library or the HTTP stack, not of the event loop.

    A timeout or a cancellation reaches a coroutine, never a callback half-way
    through the event loop's own bookkeeping.
    """
    code = frame.f_code
    return bool(code.co_flags & inspect.CO_COROUTINE) and "/asyncio/" not in code.co_filename


def _interrupt_at(line: int, where: Callable[[FrameType], bool]) -> Callable[..., Any]:
    """A trace function that raises Interrupt at the ``line``-th line executed, once."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line" and where(frame):
            count += 1
            if count == line:
                raise Interrupt(f"line {line}")
        return tracer

    return tracer


def _traced(
    line: int, call: Callable[[], object], where: Callable[[FrameType], bool] = _in_the_call
) -> BaseException | None:
    previous = sys.gettrace()
    sys.settrace(_interrupt_at(line, where))
    try:
        call()
    except BaseException as error:  # whatever the interruption became
        return error
    finally:
        sys.settrace(previous)
    return None


@pytest.fixture(scope="module")
def answering() -> Iterator[FaultServer]:
    """One loopback server answering every create as Stripe would, for many examples."""
    with FaultServer() as running:
        yield running


@pytest.fixture(scope="module", params=list(SYNC_TRANSPORTS))
def sync_client(answering: FaultServer, request: pytest.FixtureRequest) -> Iterator[Client]:
    """A client kept across examples, so interruptions also hit kept-alive connections."""
    transport = SYNC_TRANSPORTS[request.param]()
    with Client(API_KEY, transport=transport, base_url=answering.base_url) as client:
        yield client


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=60, deadline=None)
@given(line=st.integers(min_value=1, max_value=2500))  # a create runs about 1,800 such lines
def test_a_sync_create_interrupted_at_any_line_leaves_no_secret(
    sync_client: Client, line: int
) -> None:
    """Interrupting a real sync create at any executed line leaves no secret in the traceback."""
    error = _traced(line, lambda: sync_client.billing_portal.sessions.create(PARAMS))
    if error is not None:
        assert isinstance(error, Interrupt | LatticeStripeError)
        assert_no_secret(error)


def _run_async(line: int, url: str, transport: str) -> BaseException | None:
    async def create() -> None:
        sender = ASYNC_TRANSPORTS[transport]()
        async with AsyncClient(API_KEY, transport=sender, base_url=url) as client:
            coroutine: Coroutine[Any, Any, object] = client.billing_portal.sessions.create(PARAMS)
            await coroutine

    loop = asyncio.new_event_loop()
    try:
        return _traced(line, lambda: loop.run_until_complete(create()), _in_a_coroutine)
    finally:
        # An interruption can leave tasks behind (aiohttp's body writer): end them
        # in the loop rather than let the garbage collector close their coroutines.
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()

        async def finish() -> None:
            await asyncio.gather(*left, return_exceptions=True)

        loop.run_until_complete(finish())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# A connection killed half-way is closed by the garbage collector, with a warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=60, deadline=None)
@given(line=st.integers(min_value=1, max_value=600))  # a create runs about 480 such lines
@pytest.mark.parametrize("transport", list(ASYNC_TRANSPORTS))
def test_an_async_create_interrupted_at_any_line_leaves_no_secret(
    answering: FaultServer, transport: str, line: int
) -> None:
    """Interrupting a real async create at any executed line leaves no secret in the traceback."""
    error = _run_async(line, answering.base_url, transport)
    if error is not None:
        assert isinstance(error, Interrupt | LatticeStripeError)
        assert_no_secret(error)
