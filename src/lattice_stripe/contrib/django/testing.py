"""Testing a Django app's portal and webhooks offline: the recording fake in place of Stripe.

With pytest-django, add the fixture to your ``conftest.py``::

    pytest_plugins = ["lattice_stripe.contrib.django.testing"]

    def test_portal(client, django_user_model, fake_stripe_django):
        ...
        assert fake_stripe_django.last_request.params["customer"] == "cus_123"

With Django's ``TestCase``, mix in :class:`StripeTestMixin` (``self.stripe`` is
the fake), or use :class:`override_stripe` as a decorator or a ``with`` block.
:func:`deliver` posts a signed event to the webhook view.
"""

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.test import Client, SimpleTestCase
from django.test.utils import override_settings
from django.urls import reverse

from lattice_stripe.contrib.django.conf import SETTING, stripe_settings
from lattice_stripe.testing import RecordingTransport
from lattice_stripe.webhooks import generate_signature_header

__all__ = [
    "TEST_API_KEY",
    "TEST_WEBHOOK_SECRET",
    "StripeTestMixin",
    "deliver",
    "event_body",
    "override_stripe",
    "recording_transport",
]

TEST_API_KEY = "sk_test_LatticeStripeTesting"
TEST_WEBHOOK_SECRET = "whsec_LatticeStripeTesting"


class override_stripe(override_settings):
    """``override_settings`` of ``LATTICE_STRIPE``: the project's values, then ``values``, with
    ``TRANSPORT`` a :class:`~lattice_stripe.adapters.recording.RecordingTransport` (``.transport``)
    and a test key and secret where the project sets none. ``with`` gives the transport."""

    def __init__(self, transport: RecordingTransport | None = None, **values: Any) -> None:
        self.transport = RecordingTransport() if transport is None else transport
        self._values = values
        super().__init__()

    def enable(self) -> None:
        merged: dict[str, Any] = {
            "API_KEY": TEST_API_KEY,
            "WEBHOOK_SECRETS": [TEST_WEBHOOK_SECRET],
            **(getattr(settings, SETTING, None) or {}),
            **self._values,
            "TRANSPORT": self.transport,
        }
        self.options = {SETTING: merged}
        super().enable()

    def __enter__(self) -> RecordingTransport:  # type: ignore[override]
        self.enable()
        return self.transport


class StripeTestMixin(SimpleTestCase):
    """Mix into a ``TestCase``: every test runs over a fresh recording fake, ``self.stripe``."""

    stripe: RecordingTransport
    stripe_settings: Mapping[str, Any] = {}

    def setUp(self) -> None:
        super().setUp()
        override = override_stripe(**self.stripe_settings)
        self.stripe = override.__enter__()
        self.addCleanup(override.disable)


def recording_transport() -> RecordingTransport:
    """The recording fake the app's client sends through (under :class:`override_stripe`)."""
    transport = stripe_settings().transport
    if not isinstance(transport, RecordingTransport):
        raise RuntimeError(
            "the Django app is not using the recording fake: use override_stripe, "
            "StripeTestMixin or the fake_stripe_django fixture"
        )
    return transport


def event_body(
    event_type: str, data_object: Mapping[str, Any], *, event_id: str = "evt_test_1"
) -> bytes:
    """The JSON body of a Stripe event of ``event_type`` carrying ``data_object``."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": dict(data_object)},
        }
    ).encode()


def deliver(
    client: Client,
    body: bytes,
    *,
    url: str | None = None,
    secret: str | None = None,
) -> Any:
    """POST ``body``, signed as Stripe signs it, to the webhook view; the test client's response.

    ``url`` defaults to ``lattice_stripe:webhook``; ``secret`` to the first
    ``WEBHOOK_SECRETS`` entry.
    """
    key = (
        secret
        or (getattr(settings, SETTING, None) or {}).get("WEBHOOK_SECRETS", [TEST_WEBHOOK_SECRET])[0]
    )
    return client.post(
        url or reverse("lattice_stripe:webhook"),
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": generate_signature_header(body, key)},
    )


try:
    import pytest
except ImportError:  # pragma: no cover - Django's own test runner needs no fixture
    pass
else:

    @pytest.fixture
    def fake_stripe_django() -> Iterator[RecordingTransport]:
        """The Django app's Stripe calls go to a fresh recording fake for this test."""
        with override_stripe() as transport:
            yield transport
