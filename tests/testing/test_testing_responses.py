"""lattice_stripe.testing.session_response: Stripe's portal-session JSON for hand-made fakes."""

import json

from lattice_stripe import Client
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.codec import decode_session
from lattice_stripe.core.http import HttpResponse
from lattice_stripe.testing import TEST_PORTAL_URL, session_body, session_response
from stripe_api import STRIPE_API


def test_the_document_has_every_property_of_the_specs_session_object() -> None:
    """Each property of billing_portal.session in the spec excerpt is present, and no other."""
    excerpt = json.loads((STRIPE_API / "session_object.json").read_text())
    spec = excerpt["billing_portal.session"]["properties"]
    assert set(session_response()) == set(spec)


def test_fields_override_the_defaults_and_extra_fields_are_kept() -> None:
    """A keyword replaces its default; a field Stripe does not send yet is added as given."""
    document = session_response(customer="cus_Other", locale="fr", brand_new={"x": 1})
    assert document["customer"] == "cus_Other"
    assert document["locale"] == "fr"
    assert document["brand_new"] == {"x": 1}
    assert document["url"] == TEST_PORTAL_URL


def test_the_body_decodes_into_a_session_with_the_given_fields() -> None:
    """session_body is the JSON of session_response, and the library decodes it field by field."""
    body = session_body(id="bps_1Body", return_url="https://example.com/account")
    assert json.loads(body) == session_response(
        id="bps_1Body", return_url="https://example.com/account"
    )
    session = decode_session(body)
    assert session.id == "bps_1Body"
    assert session.return_url == "https://example.com/account"
    assert session.url == TEST_PORTAL_URL


def test_a_fake_answering_with_it_serves_a_client() -> None:
    """A RecordingTransport queued with session_body gives the client that exact session."""
    fake = RecordingTransport()
    fake.queue(HttpResponse(status=200, headers={}, body=session_body(customer="cus_Queued")))
    with Client("sk_test_Responses", transport=fake) as client:
        session = client.billing_portal.sessions.create({"customer": "cus_Queued"})
    assert session.customer == "cus_Queued"
    assert session.configuration == "bpc_1LatticeStripeTesting"
