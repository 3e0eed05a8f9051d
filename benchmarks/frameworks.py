"""What the Django and Flask integrations add to a request, over the recording fake.

``python -m benchmarks.frameworks [--quick]`` prints microseconds per request
for the portal redirect (session created over a
:class:`~lattice_stripe.adapters.recording.RecordingTransport`) and for a
verified, de-duplicated webhook delivery (Django: through ``DjangoEventStore`` on
in-memory SQLite), each beside the floor: a bare view of the same framework
that answers a fixed redirect or 200. Requests go through each framework's
own request factory or test client, so the framework's cost is in both rows;
the difference is the library's. Numbers are reported, never asserted.
"""

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.webhooks import generate_signature_header

SECRET = "whsec_bench"
urlpatterns: list[Any] = []  # the Django benchmark's URLconf: the views are called directly


def per_request(run: Callable[[int], object], count: int) -> float:
    """Microseconds per call of ``run(i)``, best of three rounds of ``count``."""
    best = float("inf")
    for round_ in range(3):
        start = time.perf_counter()
        for index in range(count):
            run(round_ * count + index)
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def event(index: int) -> bytes:
    return json.dumps(
        {
            "id": f"evt_bench_{index}",
            "object": "event",
            "type": "customer.subscription.updated",
            "created": int(time.time()),
            "data": {"object": {"id": "sub_1", "object": "subscription", "status": "active"}},
        }
    ).encode()


def django_rows(count: int) -> dict[str, float]:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "lattice_stripe.contrib.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        LATTICE_STRIPE={
            "API_KEY": "sk_test_bench",
            "WEBHOOK_SECRETS": [SECRET],
            "CUSTOMER_FOR": lambda request: "cus_bench",
            "RETURN_URL": "https://shop.example/account",
            "HANDLERS": {"customer.subscription.updated": lambda event: None},
            "TRANSPORT": RecordingTransport(),
        },
    )
    django.setup()
    from django.contrib.auth.models import AnonymousUser
    from django.core.management import call_command
    from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
    from django.test import RequestFactory

    from lattice_stripe.contrib.django.views import PortalView, webhook

    call_command("migrate", verbosity=0)
    factory = RequestFactory()

    class User(AnonymousUser):
        @property
        def is_authenticated(self) -> bool:  # type: ignore[override]
            return True

    portal = PortalView.as_view()

    def floor_redirect(request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect("https://billing.stripe.com/p/session/test", status=303)

    def post(view: Callable[[HttpRequest], Any]) -> Callable[[int], object]:
        def run(_: int) -> object:
            request = factory.post("/portal/", secure=True)
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
            request.user = User()
            return view(request)

        return run

    def deliver(index: int) -> object:
        body = event(index)
        request = factory.post(
            "/webhook/",
            body,
            content_type="application/json",
            headers={"Stripe-Signature": generate_signature_header(body, SECRET)},
        )
        return webhook(request)

    def floor_webhook(index: int) -> object:
        request = factory.post("/webhook/", event(index), content_type="application/json")
        return HttpResponse(request.body[:0], content_type="application/json")

    return {
        "Django portal view (PortalView)": per_request(post(portal), count),
        "Django bare redirect view (floor)": per_request(post(floor_redirect), count),
        "Django webhook view (DjangoEventStore, SQLite)": per_request(deliver, count),
        "Django bare POST view (floor)": per_request(floor_webhook, count),
    }


def flask_rows(count: int) -> dict[str, float]:
    from flask import Flask, redirect
    from werkzeug.wrappers import Response

    from lattice_stripe.contrib.flask import LatticeStripe

    app = Flask(__name__)
    app.config.update(
        TRUSTED_HOSTS=["localhost"],
        LATTICE_STRIPE_API_KEY="sk_test_bench",
        LATTICE_STRIPE_WEBHOOK_SECRETS=[SECRET],
        LATTICE_STRIPE_TRANSPORT=RecordingTransport(),
    )
    stripe = LatticeStripe(app)

    @app.post("/portal")
    def portal() -> Response:
        return stripe.redirect_to_portal(
            customer="cus_bench", return_url="https://shop.example/account"
        )

    @app.post("/floor")
    def floor() -> Response:
        return redirect("https://billing.stripe.com/p/session/test", 303)

    app.register_blueprint(
        stripe.webhook_blueprint({"customer.subscription.updated": lambda event: None})
    )
    client = app.test_client()

    def deliver(index: int) -> object:
        body = event(index)
        return client.post(
            "/webhook",
            data=body,
            headers={"Stripe-Signature": generate_signature_header(body, SECRET)},
        )

    return {
        "Flask portal redirect (redirect_to_portal)": per_request(
            lambda _: client.post("/portal"), count
        ),
        "Flask bare redirect view (floor)": per_request(lambda _: client.post("/floor"), count),
        "Flask webhook blueprint (in-memory store)": per_request(deliver, count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, to prove it runs")
    parser.add_argument("--count", type=int, default=2000, help="requests per round")
    args = parser.parse_args()
    count = 20 if args.quick else args.count
    rows = {**django_rows(count), **flask_rows(count)}
    width = max(map(len, rows))
    for name, micros in rows.items():
        print(f"{name:<{width}}  {micros:8.1f} us/request")


if __name__ == "__main__":
    main()
