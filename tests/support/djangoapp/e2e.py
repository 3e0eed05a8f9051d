"""The end-to-end shop: an account page whose plan status comes from webhooks, and the button."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

from lattice_stripe.core.webhooks import Event

# Stands in for the shop's models: what the webhooks said.
PLAN_STATUS: dict[str, str] = {}
EVENTS: list[str] = []

PAGE = engines["django"].from_string(
    "<html><head><title>Account</title></head><body>"
    "{% for message in messages %}<p id='message'>{{ message }}</p>{% endfor %}"
    "<p>Plan: <span id='status-sub_demo'>{{ status }}</span></p>"
    "<p id='events'>{{ events }}</p>"
    "<form method='post' action='{% url 'lattice_stripe:portal' %}'>{% csrf_token %}"
    "<button id='manage-billing'>Manage billing</button></form></body></html>"
)


def customer_for(request: HttpRequest) -> str | None:
    """Every logged-in user of this shop is the emulator's demo customer."""
    return "cus_demo" if request.user.is_authenticated else None


def plan_changed(event: Event) -> None:
    """Keeps the plan status current from the webhook."""
    EVENTS.append(event.type)
    PLAN_STATUS[event.subscription.id] = event.subscription.status


def account(request: HttpRequest) -> HttpResponse:
    """The return page: the plan as the webhooks left it."""
    context = {"status": PLAN_STATUS.get("sub_demo", "active"), "events": " ".join(EVENTS)}
    return HttpResponse(PAGE.render(context, request))


urlpatterns = [
    path("account/", account, name="account"),
    path("billing/", include("lattice_stripe.contrib.django.urls")),
]
