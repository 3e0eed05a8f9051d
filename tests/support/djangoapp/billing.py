"""The test project's billing code: whose customer a user is, and the webhook handlers."""

import threading

from django.http import HttpRequest, HttpResponse

from lattice_stripe.contrib.django.signals import webhook_handler
from lattice_stripe.contrib.django.views import portal_error
from lattice_stripe.core.webhooks import Event

SUBSCRIPTION_STATUS: dict[str, str] = {}
HANDLED: list[str] = []
_lock = threading.Lock()


def customer_for(request: HttpRequest) -> str | None:
    """The logged-in user's Stripe customer ID."""
    customer: str | None = getattr(request.user, "stripe_customer_id", None)
    return customer


def subscription_changed(event: Event) -> None:
    """Keeps the subscription state current, and counts the calls."""
    with _lock:
        HANDLED.append(event.id)
    SUBSCRIPTION_STATUS[event.subscription.id] = event.subscription.status


@webhook_handler("customer.subscription.updated")
def subscription_updated(event: Event) -> None:
    subscription_changed(event)


def account(request: HttpRequest) -> HttpResponse:
    """The return page: the portal error, if any, and the button."""
    from django.contrib.messages import get_messages

    notes = [str(message) for message in get_messages(request)]
    return HttpResponse(f"account {notes} {portal_error(request)}")
