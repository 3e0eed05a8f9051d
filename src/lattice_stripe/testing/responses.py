"""Stripe's JSON for a portal session, for fakes and tests: one place, every field of the object.

``session_response(url=..., customer=...)`` is the document a fake Stripe answers with;
``session_body(...)`` the same as the bytes of an HTTP body. Any field may be overridden, and a
field Stripe does not send (yet) may be added, to test how a client treats it.
"""

import json
from typing import Any

__all__ = ["TEST_PORTAL_URL", "session_body", "session_response"]

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
