"""Webhook handlers: a decorator, the ``HANDLERS`` setting, and Django signals per event type.

::

    from lattice_stripe.contrib.django.signals import event_signal, webhook_handler

    @webhook_handler("customer.subscription.updated", "customer.subscription.deleted")
    def subscription_changed(event: Event) -> None: ...

    @receiver(event_signal("payment_method.attached"))
    def card_added(sender: str, event: Event, **kwargs: object) -> None: ...

Every handler for a type runs, in order: the setting's, the decorated ones,
then the signal's receivers (``sender`` is the event type). A handler may be a
coroutine function. If any raises, the delivery is answered 500 and Stripe
retries it, so handlers must tolerate running again.
"""

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.dispatch import Signal

from lattice_stripe.core.webhooks import Event

__all__ = ["event_signal", "handlers_for", "registered_types", "webhook_handler"]

F = TypeVar("F", bound=Callable[..., Any])

_handlers: dict[str, list[Callable[..., Any]]] = {}
_signals: dict[str, Signal] = {}
_lock = threading.Lock()


def webhook_handler(*event_types: str) -> Callable[[F], F]:
    """Register the decorated function (sync or async) as a handler of ``event_types``."""
    if not event_types:
        raise TypeError("name at least one event type, e.g. 'customer.subscription.updated'")

    def register(function: F) -> F:
        with _lock:
            for event_type in event_types:
                handlers = _handlers.setdefault(event_type, [])
                if function not in handlers:
                    handlers.append(function)
        return function

    return register


def event_signal(event_type: str) -> Signal:
    """The signal sent for each handled event of ``event_type``, with ``event=``."""
    with _lock:
        return _signals.setdefault(event_type, Signal())


def registered_types() -> set[str]:
    """The event types with a decorated handler or a connected signal receiver."""
    with _lock:
        return set(_handlers) | {
            name for name, signal in _signals.items() if signal.has_listeners()
        }


def handlers_for(event_type: str) -> list[Callable[..., Any]]:
    """The decorated handlers of ``event_type``, then one that sends its signal if connected."""
    with _lock:
        found = list(_handlers.get(event_type, ()))
        signal = _signals.get(event_type)
    if signal is not None and signal.has_listeners():

        def send_signal(event: Event) -> None:
            signal.send(sender=event_type, event=event)

        found.append(send_signal)
    return found
