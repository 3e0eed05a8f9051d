"""The redaction policy: what never prints, and a logging filter that enforces it.

A portal session URL is a single-use bearer credential and an API key is a
password. Value types keep them out of ``repr``/``str`` by construction; this
module is the second line: a text scrubber and a :class:`logging.Filter` that
removes them from any log record, whoever wrote it.
"""

import contextlib
import logging
import re
from typing import Any, ClassVar, NoReturn

__all__ = [
    "PORTAL_URL_PLACEHOLDER",
    "RedactingFilter",
    "Secret",
    "Unpicklable",
    "clear_frame_locals",
    "mask_key",
    "scrub",
]

PORTAL_URL_PLACEHOLDER = "[portal-session-url]"


class Unpicklable:
    """The rule "never pickle a credential", in one place: a base for every value holding one.

    Caches, task queues and session stores pickle what they are given, and a pickle is
    readable by anyone who reads the store. A value holding an API key or a portal URL
    refuses, naming itself and why (``_refusal``, set per class); ``copy`` refuses too.
    """

    __slots__ = ()
    _refusal: ClassVar[str] = "it holds a credential (an API key or a portal session URL)"

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled: {self._refusal}")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self.__reduce__()


# A slash as apps log it: plain, JSON-escaped, percent-encoded once or twice.
_SLASH = r"(?:/|\\/|%2[Ff]|%252[Ff])"
# A portal session URL in any form: a "/session/" path segment and its token,
# with whatever run of URL characters leads up to it (a scheme and host, a
# host alone, or nothing, as in an access log's request line). The run stops
# at quotes, brackets, spaces, "=" and "&", so a query's other keys survive.
_PORTAL_URL = re.compile(
    rf"""(?i)[^\s"'<>=&,;()\[\]{{}}]{{0,512}}?{_SLASH}session{_SLASH}[^\s"'<>&\\]+"""
)
_MAY_HOLD_A_PORTAL_URL = re.compile("(?i)session").search
# Secret and restricted keys, and webhook signing secrets, wherever they are
# glued (``STRIPE_KEY_sk_live_...``, ``Bearer%20sk_...``). Publishable keys
# (pk_) are public by design and left alone.
_SECRET = re.compile(r"(sk|rk)_(live|test)_[0-9A-Za-z]+|whsec_[0-9A-Za-z+/=]+")


def _mask(match: re.Match[str]) -> str:
    return mask_key(match.group(0))


def mask_key(key: str) -> str:
    """Return ``key`` with everything after its prefix hidden (``sk_test_[redacted]``)."""
    if key.startswith("whsec_"):
        return "whsec_[redacted]"
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] in ("sk", "rk") and parts[1] in ("live", "test"):
        return f"{parts[0]}_{parts[1]}_[redacted]"
    return "[redacted]"


def scrub(text: str) -> str:
    """Return ``text`` with portal session URLs and secret keys replaced.

    Portal URLs are caught with or without scheme and host, with JSON-escaped
    or percent-encoded slashes; keys wherever they are glued to other text.
    """
    if _MAY_HOLD_A_PORTAL_URL(text):
        text = _PORTAL_URL.sub(PORTAL_URL_PLACEHOLDER, text)
    return _SECRET.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs portal session URLs and API keys from every record.

    It renders the message with its arguments, scrubs the result, and scrubs any
    formatted traceback, so nothing downstream (handlers, formatters, log
    shippers) ever sees the secret. Attach it to handlers::

        handler.addFilter(RedactingFilter())

    It never drops a record: :meth:`filter` always returns ``True``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = f"{record.msg!s} {record.args!r}"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
            # The formatted text replaces the live exception, whose frames may
            # still hold secrets in locals and messages.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class Secret(Unpicklable):
    """A credential held where a frame's locals or a repr could show it: ``repr`` masks it.

    Closures and long-lived frames keep one of these instead of the plain
    string; :meth:`reveal` hands the value to the one call that needs it. It
    refuses to be pickled.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({mask_key(self._value)})"


def clear_frame_locals(error: BaseException) -> None:
    """Empty the locals of every finished frame in the tracebacks of ``error`` and its chain.

    Error trackers render each frame's locals, and the frames an exception
    passed through on its way out of the library hold what they were working
    on: the HTTP libraries' copies of the request headers (the API key), the
    decoder's response body (the portal URL). Those frames have finished, so
    their locals are of no further use; the frames themselves stay in the
    traceback, so file, line and function still say where it happened, and
    the exception keeps its type and message. Frames still executing (the
    caller's) are left as they are.
    """
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            with contextlib.suppress(RuntimeError):  # still executing: the caller's
                tb.tb_frame.clear()
            tb = tb.tb_next
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        grouped = getattr(current, "exceptions", None)
        if isinstance(grouped, tuple):
            pending += [e for e in grouped if isinstance(e, BaseException)]
