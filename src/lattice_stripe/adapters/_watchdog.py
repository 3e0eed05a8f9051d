"""Deadlines for blocking sockets: one thread that cuts off an attempt which outlives its deadline.

A socket timeout bounds each wait, not the whole exchange: a server that sends
a byte just inside the timeout, again and again, holds a blocking call for as
long as it likes. A :class:`Watch` covers one attempt; the sync transports
hand it the socket they use, and the :class:`Watchdog`'s thread shuts that
socket down once the deadline passes, which ends the blocked read at once.
The thread wakes every ``tick`` seconds while any attempt is watched (the
deadline's margin) and sleeps while none is, so an idle process pays nothing.
"""

import contextlib
import os
import socket
import threading
import time

__all__ = ["TICK", "Watch", "Watchdog", "WATCHDOG"]

TICK = 0.05
"""How often the watchdog looks: a deadline is kept to within this many seconds."""

# Ticking goes on this long after the last watch ends, so that a steady
# stream of calls does not wake a sleeping thread on every call.
_LINGER = 2.0


class Watch:
    """One attempt under a deadline: ``sock`` is set by whoever opens or reuses the socket."""

    __slots__ = ("deadline_at", "expired", "sock")

    def __init__(self, deadline_at: float) -> None:
        self.deadline_at = deadline_at
        self.sock: socket.socket | None = None
        self.expired = False

    def expire(self) -> None:
        """Mark the attempt timed out and shut its socket down, ending any blocked read."""
        self.expired = True
        sock = self.sock
        if sock is not None:
            # socket.socket's own shutdown: an SSLSocket's override would drop its
            # SSL object under the thread that is reading from it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """The thread that expires watches; one per process (:data:`WATCHDOG`)."""

    def __init__(self, tick: float = TICK) -> None:
        self._tick = tick
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A forked child has no watchdog thread and a lock of unknown state.
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._watches: set[Watch] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float) -> Watch:
        """Start watching an attempt that must be over within ``seconds``."""
        watch = Watch(time.monotonic() + seconds)
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lattice-stripe-deadlines", daemon=True
                )
                self._thread.start()
            elif not self._wake.is_set():
                self._wake.set()
        return watch

    def unwatch(self, watch: Watch) -> None:
        """Stop watching ``watch`` (its attempt is over)."""
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        last_busy = time.monotonic()
        while True:
            self._wake.set()
            time.sleep(self._tick)
            now = time.monotonic()
            with self._lock:
                due = [watch for watch in self._watches if now >= watch.deadline_at]
                self._watches.difference_update(due)
                busy = bool(self._watches)
                if busy:
                    last_busy = now
                elif now - last_busy > _LINGER:
                    self._wake.clear()
            for watch in due:
                watch.expire()
            if not self._wake.is_set():
                self._wake.wait()
                last_busy = time.monotonic()


WATCHDOG = Watchdog()
