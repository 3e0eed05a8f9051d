"""Stripe's JSON for portal sessions and configurations, for fakes and tests: every field.

``session_response(url=..., customer=...)`` is the document a fake Stripe answers with;
``session_body(...)`` the same as the bytes of an HTTP body. Any field may be overridden, and a
field Stripe does not send (yet) may be added, to test how a client treats it.
"""

import json
from typing import Any

from lattice_stripe.core.configuration import default_configuration_json

__all__ = [
    "TEST_PORTAL_URL",
    "configuration_body",
    "configuration_response",
    "session_body",
    "session_response",
]

TEST_PORTAL_URL = "https://billing.stripe.com/p/session/test_LatticeStripeTesting"
"""The ``url`` of a session unless told otherwise: a test-mode portal URL of Stripe's shape."""


def session_response(**fields: Any) -> dict[str, Any]:
    """A ``billing_portal.session`` as Stripe returns it, with ``fields`` replacing the defaults.

    Every property of the object is present (``flow``, ``locale`` and the other optional ones as
    ``null``), as Stripe sends them, so a decoder under test sees the real shape.
    """
    return {
        "id": "bps_1LatticeStripeTesting",
        "object": "billing_portal.session",
        "configuration": "bpc_1LatticeStripeTesting",
        "created": 1_700_000_000,
        "customer": "cus_LatticeStripeTesting",
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": None,
        "url": TEST_PORTAL_URL,
        **fields,
    }


def session_body(**fields: Any) -> bytes:
    """:func:`session_response` as a JSON HTTP body."""
    return json.dumps(session_response(**fields)).encode()


def configuration_response(**fields: Any) -> dict[str, Any]:
    """A ``billing_portal.configuration`` as Stripe returns it, ``fields`` replacing the defaults.

    The defaults are a new account's default configuration: invoice history on, every other
    feature off, no business profile. A feature passed replaces the default's whole.
    """
    document = default_configuration_json(
        id="bpc_1LatticeStripeTesting", created=1_700_000_000, livemode=False, is_default=True
    )
    document["features"]["invoice_history"] = {"enabled": True}
    return {**document, **fields}


def configuration_body(**fields: Any) -> bytes:
    """:func:`configuration_response` as a JSON HTTP body."""
    return json.dumps(configuration_response(**fields)).encode()
