"""Webhook signatures, typed events and the framework-neutral receiver."""

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from lattice_stripe.core.billing import Price
from lattice_stripe.core.errors import (
    EventDecodeError,
    LatticeStripeError,
    SignatureVerificationError,
    ValidationError,
)
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    MAX_HEADER_LENGTH,
    Customer,
    Delivery,
    Event,
    PaymentMethod,
    Subscription,
    WebhookReply,
    compute_signature,
)
from lattice_stripe.webhooks import (
    InMemoryEventStore,
    WebhookReceiver,
    construct_event,
    generate_signature_header,
    verify_signature,
)

SECRET = "whsec_test0secret"
OLD_SECRET = "whsec_old0secret"
NOW = 1_700_000_000


def clock() -> float:
    """A fixed wall clock."""
    return float(NOW)


def event_body(
    event_type: str, data_object: dict[str, Any], *, event_id: str = "evt_1", **extra: Any
) -> bytes:
    """A Stripe event body as Stripe sends it (pretty-printed, as on the wire)."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": NOW - 5,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": "req_1", "idempotency_key": None},
            "type": event_type,
            "data": {"object": data_object, **extra},
        },
        indent=2,
    ).encode()


def reference_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's documented scheme, written out: HMAC-SHA256 of ``{t}.{body}``."""
    message = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def reason_of(payload: bytes, header: str | None, secrets: Any = SECRET) -> str:
    """The reason verify_signature rejects ``header`` for."""
    with pytest.raises(SignatureVerificationError) as caught:
        verify_signature(payload, header, secrets, clock=clock)
    return caught.value.reason


SUBSCRIPTION: dict[str, Any] = {
    "id": "sub_1",
    "object": "subscription",
    "customer": "cus_1",
    "status": "active",
    "livemode": False,
    "cancel_at_period_end": True,
    "cancel_at": NOW + 86_400,
    "canceled_at": NOW - 10,
    "ended_at": None,
    "default_payment_method": "pm_1",
    "pause_collection": None,
    "cancellation_details": {
        "reason": "cancellation_requested",
        "feedback": "too_expensive",
        "comment": "Pricey",
    },
    "metadata": {"plan": "pro"},
    "billing_mode": {"type": "flexible"},
    "items": {
        "object": "list",
        "data": [
            {
                "id": "si_1",
                "object": "subscription_item",
                "price": {"id": "price_1", "object": "price", "unit_amount": 1900},
                "quantity": 2,
                "current_period_start": NOW - 1000,
                "current_period_end": NOW + 1000,
            }
        ],
        "has_more": False,
    },
}

PAYMENT_METHOD: dict[str, Any] = {
    "id": "pm_1",
    "object": "payment_method",
    "type": "card",
    "customer": "cus_1",
    "livemode": False,
    "created": NOW - 3,
    "billing_details": {"email": "jo@example.com", "name": "Jo"},
    "card": {
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2034,
        "funding": "credit",
    },
}

CUSTOMER: dict[str, Any] = {
    "id": "cus_1",
    "object": "customer",
    "email": "jo@example.com",
    "name": "Jo Example",
    "phone": "+15555550100",
    "livemode": False,
    "metadata": {"user_id": "42"},
    "invoice_settings": {"default_payment_method": "pm_2", "footer": None},
}


# -- signatures ------------------------------------------------------------------


def test_compute_signature_is_stripes_documented_hmac() -> None:
    """A v1 signature is HMAC-SHA256 of "{t}.{body}" under the secret, in hex."""
    payload = b'{"id": "evt_1"}'
    assert compute_signature(payload, SECRET, NOW) == reference_signature(payload, SECRET, NOW)


def test_generate_signature_header_has_the_timestamp_and_one_v1() -> None:
    """The test helper writes t=<timestamp>,v1=<signature>, as Stripe does."""
    payload = b"{}"
    header = generate_signature_header(payload, SECRET, timestamp=NOW)
    assert header == f"t={NOW},v1={reference_signature(payload, SECRET, NOW)}"


def test_a_valid_header_verifies_and_returns_the_signed_timestamp() -> None:
    """A correctly signed, fresh payload verifies; the signed time is returned."""
    payload = event_body("customer.updated", CUSTOMER)
    header = generate_signature_header(payload, SECRET, timestamp=NOW - 7)
    assert verify_signature(payload, header, SECRET, clock=clock) == NOW - 7


def test_a_tampered_body_is_rejected() -> None:
    """Changing one byte of the body breaks the signature."""
    payload = event_body("customer.updated", CUSTOMER)
    header = generate_signature_header(payload, SECRET, timestamp=NOW)
    tampered = payload.replace(b'"cus_1"', b'"cus_2"')
    assert tampered != payload
    assert reason_of(tampered, header) == "no_matching_signature"


def test_a_signature_under_another_secret_is_rejected() -> None:
    """A header signed with a different secret does not verify."""
    payload = event_body("customer.updated", CUSTOMER)
    header = generate_signature_header(payload, "whsec_attacker", timestamp=NOW)
    assert reason_of(payload, header) == "no_matching_signature"


def test_a_tampered_timestamp_is_rejected() -> None:
    """Moving t forward to replay an old delivery breaks the signature."""
    payload = event_body("customer.updated", CUSTOMER)
    signature = reference_signature(payload, SECRET, NOW - 3600)
    assert reason_of(payload, f"t={NOW},v1={signature}") == "no_matching_signature"


def test_rotation_accepts_a_signature_by_any_configured_secret() -> None:
    """With two secrets configured, a delivery signed by either one verifies."""
    payload = event_body("customer.updated", CUSTOMER)
    for signer in (OLD_SECRET, SECRET):
        header = generate_signature_header(payload, signer, timestamp=NOW)
        assert verify_signature(payload, header, [OLD_SECRET, SECRET], clock=clock) == NOW


def test_rotation_accepts_a_header_with_several_v1_signatures() -> None:
    """During a roll Stripe sends one v1 per secret; either one matching is enough."""
    payload = event_body("customer.updated", CUSTOMER)
    header = (
        f"t={NOW},v1={reference_signature(payload, OLD_SECRET, NOW)},"
        f"v1={reference_signature(payload, SECRET, NOW)}"
    )
    assert verify_signature(payload, header, SECRET, clock=clock) == NOW
    assert verify_signature(payload, header, (OLD_SECRET,), clock=clock) == NOW
    assert reason_of(payload, header, "whsec_other") == "no_matching_signature"


def test_other_signature_schemes_are_ignored() -> None:
    """A v0 (test-mode legacy) entry neither helps nor hurts."""
    payload = b"{}"
    good = reference_signature(payload, SECRET, NOW)
    assert verify_signature(payload, f"t={NOW},v0=abc,v1={good}", SECRET, clock=clock) == NOW
    assert reason_of(payload, f"t={NOW},v0={good}") == "malformed_header"


@pytest.mark.parametrize("age", [301, 3600, NOW])
def test_an_old_timestamp_is_a_replay(age: int) -> None:
    """An authentic delivery signed more than 300 s ago is refused as a replay."""
    payload = b"{}"
    header = generate_signature_header(payload, SECRET, timestamp=NOW - age)
    assert reason_of(payload, header) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize("ahead", [301, 86_400])
def test_a_future_dated_timestamp_is_refused(ahead: int) -> None:
    """A delivery signed more than the tolerance in the future is refused too."""
    payload = b"{}"
    header = generate_signature_header(payload, SECRET, timestamp=NOW + ahead)
    assert reason_of(payload, header) == "timestamp_out_of_tolerance"


def test_the_tolerance_boundary_is_inclusive() -> None:
    """Exactly 300 s early or late still verifies; one second more does not."""
    payload = b"{}"
    for skew in (-300, 300):
        header = generate_signature_header(payload, SECRET, timestamp=NOW + skew)
        assert verify_signature(payload, header, SECRET, clock=clock) == NOW + skew
    late = generate_signature_header(payload, SECRET, timestamp=NOW - 301)
    assert reason_of(payload, late) == "timestamp_out_of_tolerance"


def test_a_custom_tolerance_is_honoured() -> None:
    """tolerance=10 refuses a delivery 11 s old that the default would accept."""
    payload = b"{}"
    header = generate_signature_header(payload, SECRET, timestamp=NOW - 11)
    assert verify_signature(payload, header, SECRET, clock=clock) == NOW - 11
    with pytest.raises(SignatureVerificationError) as caught:
        verify_signature(payload, header, SECRET, clock=clock, tolerance=10)
    assert caught.value.reason == "timestamp_out_of_tolerance"


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_reported_as_missing(header: str | None) -> None:
    """No Stripe-Signature header at all is missing_header."""
    assert reason_of(b"{}", header) == "missing_header"


@pytest.mark.parametrize(
    "header",
    [
        "v1=" + "0" * 64,
        f"t={NOW}",
        f"t={NOW},v0=abc",
        "t=yesterday,v1=" + "0" * 64,
        "t=-5,v1=" + "0" * 64,
        "t=1.5,v1=" + "0" * 64,
        "t=\u0661\u0662,v1=" + "0" * 64,
        f"t={NOW},t={NOW},v1=" + "0" * 64,
        f"t={NOW},garbage,v1=" + "0" * 64,
        "t=" + "9" * 5000 + ",v1=" + "0" * 64,
        f"t={NOW}," + ",".join(["v1=" + "0" * 64] * 200),
        " ",
    ],
    ids=[
        "no-t",
        "no-v1",
        "only-v0",
        "non-numeric-t",
        "negative-t",
        "fractional-t",
        "non-ascii-digits-t",
        "repeated-t",
        "part-without-equals",
        "huge-t",
        "huge-header",
        "blank",
    ],
)
def test_malformed_headers_are_reported_as_malformed(header: str) -> None:
    """Headers without a parseable t, without v1, or absurdly long are malformed_header."""
    assert reason_of(b"{}", header) == "malformed_header"


def test_the_header_length_limit_is_the_documented_constant() -> None:
    """A well-formed header just over MAX_HEADER_LENGTH is refused unread."""
    payload = b"{}"
    good = generate_signature_header(payload, SECRET, timestamp=NOW)
    padded = good + ",v0=" + "a" * (MAX_HEADER_LENGTH - len(good) - 4)
    assert len(padded) == MAX_HEADER_LENGTH
    assert verify_signature(payload, padded, SECRET, clock=clock) == NOW
    assert reason_of(payload, padded + "a") == "malformed_header"


def test_a_body_re_encoded_by_a_framework_is_rejected() -> None:
    """json.loads + json.dumps changes the bytes, so the signature no longer matches."""
    payload = event_body("customer.updated", CUSTOMER)
    header = generate_signature_header(payload, SECRET, timestamp=NOW)
    reencoded = json.dumps(json.loads(payload)).encode()
    assert reencoded != payload
    assert json.loads(reencoded) == json.loads(payload)
    assert reason_of(reencoded, header) == "no_matching_signature"


def test_a_decoded_str_body_is_refused_loudly() -> None:
    """Passing the body as text instead of the raw bytes is a TypeError, not a silent pass."""
    header = generate_signature_header(b"{}", SECRET, timestamp=NOW)
    with pytest.raises(TypeError, match="raw request body bytes"):
        verify_signature("{}", header, SECRET, clock=clock)  # type: ignore[arg-type]


@pytest.mark.parametrize("secrets", [[], "", "  ", [SECRET, ""]])
def test_missing_or_empty_secrets_are_a_configuration_error(secrets: Any) -> None:
    """No secret, or an empty one (anyone could sign with it), raises ValueError."""
    header = generate_signature_header(b"{}", "", timestamp=NOW)
    with pytest.raises(ValueError, match="secret"):
        verify_signature(b"{}", header, secrets, clock=clock)


def test_error_messages_never_contain_the_secret() -> None:
    """No reason's message echoes the signing secret."""
    payload = b"{}"
    headers = [
        None,
        "t=x",
        generate_signature_header(payload, "whsec_other", timestamp=NOW),
        generate_signature_header(payload, SECRET, timestamp=NOW - 999),
    ]
    for header in headers:
        with pytest.raises(SignatureVerificationError) as caught:
            verify_signature(payload, header, SECRET, clock=clock)
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)


# -- interoperability with the official SDK --------------------------------------


def test_a_header_made_by_the_stripe_sdk_verifies_with_ours() -> None:
    """stripe.WebhookSignature.generate_signature_header output passes our check."""
    payload = event_body("customer.subscription.updated", SUBSCRIPTION)
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), SECRET, timestamp=NOW
    )
    assert verify_signature(payload, header, SECRET, clock=clock) == NOW
    assert reason_of(payload, header, "whsec_other") == "no_matching_signature"


def test_our_header_verifies_with_stripe_construct_event() -> None:
    """stripe.Webhook.construct_event accepts our header and reads the same event."""
    payload = event_body("customer.subscription.updated", SUBSCRIPTION)
    header = generate_signature_header(payload, SECRET)
    theirs = stripe.Webhook.construct_event(payload, header, SECRET)
    ours = construct_event(payload, header, SECRET)
    assert (theirs.id, theirs.type, theirs.data.object.id) == (ours.id, ours.type, "sub_1")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")


@given(
    body=st.text(max_size=200),
    secret=st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=40).filter(
        str.strip
    ),
    skew=st.integers(min_value=-300, max_value=0),
)
def test_signatures_agree_with_the_sdk_both_ways(body: str, secret: str, skew: int) -> None:
    """For any UTF-8 body and secret, ours and the SDK's signatures verify with each other."""
    payload = body.encode()
    now = int(time.time())
    theirs = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=now + skew)
    assert verify_signature(payload, theirs, secret, clock=lambda: now) == now + skew
    ours = generate_signature_header(payload, secret, timestamp=now)
    assert stripe.WebhookSignature.verify_header(payload, ours, secret, tolerance=300) is True


# -- events ----------------------------------------------------------------------


def test_an_event_keeps_its_envelope_fields() -> None:
    """id, type, created, livemode, api_version, account and previous_attributes are read."""
    payload = event_body(
        "customer.subscription.updated",
        SUBSCRIPTION,
        previous_attributes={"cancel_at_period_end": False},
    )
    document = json.loads(payload)
    document["account"] = "acct_1"
    document["livemode"] = True
    event = Event.from_json(json.dumps(document).encode())
    assert (event.id, event.type, event.created) == (
        "evt_1",
        "customer.subscription.updated",
        NOW - 5,
    )
    assert event.livemode is True
    assert event.api_version == "2026-10-28.endive"
    assert event.account == "acct_1"
    assert event.previous_attributes == {"cancel_at_period_end": False}
    assert event.data_object == SUBSCRIPTION
    assert event.object_type == "subscription"


@pytest.mark.parametrize(
    "event_type", ["customer.subscription.updated", "customer.subscription.deleted"]
)
def test_subscription_events_read_as_a_typed_subscription(event_type: str) -> None:
    """The subscription's portal-relevant fields are typed; the item's price is a Price."""
    event = Event.from_json(event_body(event_type, SUBSCRIPTION))
    subscription = event.subscription
    assert event.typed_object == subscription
    assert (subscription.id, subscription.customer, subscription.status) == (
        "sub_1",
        "cus_1",
        "active",
    )
    assert subscription.cancel_at_period_end is True
    assert (subscription.cancel_at, subscription.canceled_at, subscription.ended_at) == (
        NOW + 86_400,
        NOW - 10,
        None,
    )
    assert subscription.default_payment_method == "pm_1"
    assert subscription.pause_collection is None
    assert subscription.cancellation_details is not None
    assert subscription.cancellation_details.feedback == "too_expensive"
    assert subscription.metadata == {"plan": "pro"}
    [item] = subscription.items
    assert item.price is not None
    assert (item.id, item.price.id, item.quantity) == ("si_1", "price_1", 2)
    assert item.current_period_end == NOW + 1000
    assert subscription.current_period_end == NOW + 1000


def test_a_paused_subscription_carries_its_pause_collection() -> None:
    """customer.subscription.paused: status paused, pause_collection behaviour and resume time."""
    paused = {
        **SUBSCRIPTION,
        "status": "paused",
        "pause_collection": {"behavior": "void", "resumes_at": NOW + 3600},
    }
    subscription = Event.from_json(event_body("customer.subscription.paused", paused)).subscription
    assert subscription.status == "paused"
    assert subscription.pause_collection is not None
    assert (subscription.pause_collection.behavior, subscription.pause_collection.resumes_at) == (
        "void",
        NOW + 3600,
    )


def test_older_api_versions_shape_is_read_too() -> None:
    """A top-level current_period_end, a plain price ID and an expanded customer are read."""
    older = {
        **SUBSCRIPTION,
        "customer": {"id": "cus_9", "object": "customer"},
        "current_period_end": NOW + 99,
        "items": {"object": "list", "data": [{"id": "si_2", "price": "price_2", "quantity": None}]},
    }
    subscription = Event.from_json(event_body("customer.subscription.updated", older)).subscription
    assert subscription.customer == "cus_9"
    assert subscription.current_period_end == NOW + 99
    assert [(item.price, item.quantity) for item in subscription.items] == [
        (Price(id="price_2"), None)
    ]


def test_payment_method_attached_reads_as_a_typed_payment_method() -> None:
    """payment_method.attached: ID, customer, type and the card's brand and last four digits."""
    event = Event.from_json(event_body("payment_method.attached", PAYMENT_METHOD))
    method = event.payment_method
    assert isinstance(event.typed_object, PaymentMethod)
    assert (method.id, method.customer, method.type, method.created) == (
        "pm_1",
        "cus_1",
        "card",
        NOW - 3,
    )
    assert method.card is not None
    assert (method.card.brand, method.card.last4, method.card.exp_month, method.card.exp_year) == (
        "visa",
        "4242",
        12,
        2034,
    )
    assert "jo@example.com" not in repr(method)


def test_a_non_card_payment_method_has_no_card() -> None:
    """A SEPA debit payment method reads with card None."""
    sepa = {"id": "pm_2", "object": "payment_method", "type": "sepa_debit", "customer": None}
    method = Event.from_json(event_body("payment_method.attached", sepa)).payment_method
    assert (method.type, method.card, method.customer) == ("sepa_debit", None, None)


def test_customer_updated_reads_as_a_typed_customer_without_personal_data_in_repr() -> None:
    """customer.updated: email, name and default payment method; repr hides email and name."""
    customer = Event.from_json(event_body("customer.updated", CUSTOMER)).customer
    assert isinstance(customer, Customer)
    assert (customer.id, customer.email, customer.name) == ("cus_1", "jo@example.com", "Jo Example")
    assert customer.default_payment_method == "pm_2"
    assert customer.metadata == {"user_id": "42"}
    shown = repr(customer)
    assert "cus_1" in shown
    for personal in ("jo@example.com", "Jo Example", "+15555550100"):
        assert personal not in shown


def test_unknown_event_types_are_kept_as_raw_data() -> None:
    """An invoice.paid event parses; it has no typed object, its data stays intact."""
    invoice = {"id": "in_1", "object": "invoice", "amount_paid": 1900, "brand_new_field": [1, 2]}
    event = Event.from_json(event_body("invoice.paid", invoice))
    assert event.type == "invoice.paid"
    assert event.typed_object is None
    assert event.data_object == invoice
    with pytest.raises(EventDecodeError, match="'invoice' object, not a Subscription"):
        _ = event.subscription


def test_unknown_fields_are_tolerated_and_kept_in_extra() -> None:
    """Fields this library does not model never fail a parse and stay reachable."""
    newer = {**SUBSCRIPTION, "future_field": {"nested": True}}
    subscription = Event.from_json(event_body("customer.subscription.updated", newer)).subscription
    assert subscription.extra["future_field"] == {"nested": True}
    assert subscription.extra["billing_mode"] == {"type": "flexible"}


def test_the_wrong_accessor_says_what_the_event_carries() -> None:
    """Asking a customer event for its payment method is an EventDecodeError naming both."""
    event = Event.from_json(event_body("customer.updated", CUSTOMER))
    with pytest.raises(EventDecodeError, match=r"evt_1 \(customer.updated\) carries a 'customer'"):
        _ = event.payment_method


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"status": None}, "subscription.status"),
        ({"cancel_at": "soon"}, "subscription.cancel_at"),
        ({"cancel_at_period_end": 1}, "subscription.cancel_at_period_end"),
        (
            {"items": {"data": [{"id": "si_1", "quantity": True}]}},
            "subscription.items.data[0].quantity",
        ),
        ({"items": {"data": ["si_1"]}}, "subscription.items.data[0]"),
        ({"pause_collection": {"resumes_at": 5}}, "subscription.pause_collection.behavior"),
        ({"customer": {"object": "customer"}}, "subscription.customer"),
    ],
)
def test_a_known_field_of_the_wrong_type_names_its_path(change: dict[str, Any], path: str) -> None:
    """A modelled field with the wrong type raises EventDecodeError naming the field path."""
    event = Event.from_json(event_body("customer.subscription.updated", {**SUBSCRIPTION, **change}))
    with pytest.raises(EventDecodeError, match=path.replace(".", r"\.").replace("[", r"\[")):
        _ = event.subscription


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"object": "customer", "id": "cus_1"}',
        b'{"object": "event", "id": "evt_1", "type": "x", "created": 1, "data": {}}',
        b'{"object": "event", "id": "evt_1", "type": "x", "created": true, "data": {"object": {}}}',
        b'{"object": "event", "id": 5, "type": "x", "created": 1, "data": {"object": {}}}',
        b"[" * 100_000,
    ],
    ids=[
        "not-json",
        "not-utf8",
        "array",
        "not-an-event",
        "no-object",
        "bool-created",
        "int-id",
        "deep",
    ],
)
def test_an_authentic_body_that_is_not_an_event_is_malformed_event(payload: bytes) -> None:
    """construct_event raises malformed_event for a verified body that is not a Stripe event."""
    header = generate_signature_header(payload, SECRET, timestamp=NOW)
    with pytest.raises(SignatureVerificationError) as caught:
        construct_event(payload, header, SECRET, clock=clock)
    assert caught.value.reason == "malformed_event"


def test_construct_event_verifies_before_parsing() -> None:
    """A forged body is refused for its signature, whatever it contains."""
    payload = event_body("customer.updated", CUSTOMER)
    with pytest.raises(SignatureVerificationError) as caught:
        construct_event(payload, f"t={NOW},v1={'0' * 64}", SECRET, clock=clock)
    assert caught.value.reason == "no_matching_signature"


def test_event_repr_shows_no_object_data() -> None:
    """repr(event) names the event, not the customer data inside it."""
    event = Event.from_json(event_body("customer.updated", CUSTOMER))
    assert "evt_1" in repr(event)
    assert "jo@example.com" not in repr(event)


# -- the receiver ----------------------------------------------------------------


def signed(payload: bytes, secret: str = SECRET) -> tuple[bytes, str]:
    """A payload and its fresh Stripe-Signature header."""
    return payload, generate_signature_header(payload, secret, timestamp=NOW)


def receiver_with(
    handlers: dict[str, Callable[[Event], object]], **options: Any
) -> WebhookReceiver:
    """A receiver on SECRET and the fixed clock."""
    return WebhookReceiver([OLD_SECRET, SECRET], handlers, clock=clock, **options)


def run(receiver: WebhookReceiver, payload: bytes, header: str | None) -> WebhookReply:
    """Drive the receiver the way the framework integrations do."""
    outcome = receiver.receive(payload, header)
    if isinstance(outcome, WebhookReply):
        return outcome
    try:
        outcome.handler(outcome.event)
    except Exception:
        return receiver.failed(outcome)
    return receiver.succeeded(outcome)


def test_a_verified_event_is_handed_to_its_handler() -> None:
    """receive() returns the event and the handler registered for its type; 200 processed."""
    seen: list[Event] = []
    receiver = receiver_with({"customer.updated": seen.append})
    outcome = receiver.receive(*signed(event_body("customer.updated", CUSTOMER)))
    assert isinstance(outcome, Delivery)
    assert outcome.event.id == "evt_1"
    assert run(receiver, *signed(event_body("customer.updated", CUSTOMER, event_id="evt_2"))) == (
        WebhookReply(status=200, outcome="processed")
    )
    assert [event.id for event in seen] == ["evt_2"]


def test_a_redelivered_event_is_handled_once() -> None:
    """The same event ID twice: the second delivery answers 200 duplicate, unhandled."""
    seen: list[Event] = []
    receiver = receiver_with({"customer.updated": seen.append})
    delivery = signed(event_body("customer.updated", CUSTOMER))
    assert run(receiver, *delivery).outcome == "processed"
    assert run(receiver, *delivery) == WebhookReply(status=200, outcome="duplicate")
    assert len(seen) == 1


def test_a_receiver_refuses_a_secret_with_surrounding_whitespace() -> None:
    """A secret read with its trailing newline is a set-up error, not silent 400s later."""
    with pytest.raises(ValueError, match="whitespace") as info:
        WebhookReceiver([SECRET + "\n"], {})
    assert SECRET not in str(info.value)


def test_a_redelivery_while_the_first_is_still_running_is_not_acknowledged() -> None:
    """A concurrent redelivery answers 409 in_progress: a failing first attempt loses nothing."""
    receiver = receiver_with({"customer.updated": lambda event: None})
    delivery = signed(event_body("customer.updated", CUSTOMER))
    first = receiver.receive(*delivery)
    assert isinstance(first, Delivery)
    assert receiver.receive(*delivery) == WebhookReply(status=409, outcome="in_progress")
    assert receiver.failed(first).status == 500
    retry = receiver.receive(*delivery)
    assert isinstance(retry, Delivery)
    assert receiver.succeeded(retry) == WebhookReply(status=200, outcome="processed")
    assert receiver.receive(*delivery) == WebhookReply(status=200, outcome="duplicate")


def test_the_in_memory_store_tells_finished_events_from_running_ones() -> None:
    """claim, complete, is_complete and release track an event's life."""
    store = InMemoryEventStore()
    assert store.claim("evt_1") is True
    assert store.is_complete("evt_1") is False
    store.release("evt_1")
    assert store.claim("evt_1") is True
    store.complete("evt_1")
    assert store.is_complete("evt_1") is True
    assert store.claim("evt_1") is False
    store.release("evt_1")
    assert store.is_complete("evt_1") is True


def test_an_unhandled_event_type_is_acknowledged_and_not_remembered() -> None:
    """No handler for the type: 200 ignored, and nothing is stored."""
    store = InMemoryEventStore()
    receiver = receiver_with({"customer.updated": lambda event: None}, store=store)
    reply = run(receiver, *signed(event_body("invoice.paid", {"id": "in_1", "object": "invoice"})))
    assert reply == WebhookReply(status=200, outcome="ignored")
    assert len(store) == 0


def test_a_bad_signature_is_answered_400_with_its_reason() -> None:
    """Signature failures are 400 and say why; the handler never runs."""
    seen: list[Event] = []
    receiver = receiver_with({"customer.updated": seen.append})
    payload = event_body("customer.updated", CUSTOMER)
    assert run(receiver, payload, None) == WebhookReply(status=400, outcome="missing_header")
    forged = generate_signature_header(payload, "whsec_other", timestamp=NOW)
    assert run(receiver, payload, forged).outcome == "no_matching_signature"
    assert seen == []


def test_a_failed_handler_is_forgotten_so_the_retry_runs() -> None:
    """A handler that raises gives 500 handler_failed; Stripe's retry is then processed."""
    attempts: list[str] = []

    def flaky(event: Event) -> None:
        attempts.append(event.id)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    receiver = receiver_with({"customer.updated": flaky})
    delivery = signed(event_body("customer.updated", CUSTOMER))
    failed = run(receiver, *delivery)
    assert failed == WebhookReply(status=500, outcome="handler_failed")
    assert b"database" not in failed.body
    assert run(receiver, *delivery).outcome == "processed"
    assert attempts == ["evt_1", "evt_1"]


def test_an_oversized_body_is_refused_before_verification() -> None:
    """A body over max_body_bytes answers 413, even if it is signed."""
    receiver = receiver_with({"customer.updated": lambda event: None}, max_body_bytes=100)
    payload = event_body("customer.updated", CUSTOMER)
    assert len(payload) > 100
    assert run(receiver, *signed(payload)) == WebhookReply(status=413, outcome="body_too_large")


def test_the_reply_body_is_json_with_the_outcome() -> None:
    """A reply's body is {"outcome": ...} as JSON."""
    assert json.loads(WebhookReply(status=200, outcome="duplicate").body) == {
        "outcome": "duplicate"
    }


def test_the_receiver_refuses_to_start_without_a_secret() -> None:
    """An endpoint without a signing secret is a configuration error at set-up."""
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver([], {})


def test_the_in_memory_store_is_bounded_and_forgets_the_oldest() -> None:
    """Past max_size, the oldest IDs are forgotten; release forgets one at once."""
    store = InMemoryEventStore(max_size=2)
    assert [store.claim(event_id) for event_id in ("a", "b", "a")] == [True, True, False]
    assert store.claim("c") is True
    assert len(store) == 2
    assert store.claim("a") is True
    assert store.claim("c") is False
    store.release("c")
    assert store.claim("c") is True
    with pytest.raises(ValueError, match="max_size"):
        InMemoryEventStore(max_size=0)


def test_the_typed_values_are_frozen() -> None:
    """Typed event values cannot be modified after parsing."""
    subscription = Event.from_json(
        event_body("customer.subscription.updated", SUBSCRIPTION)
    ).subscription
    assert isinstance(subscription, Subscription)
    with pytest.raises(AttributeError):
        subscription.status = "canceled"  # type: ignore[misc]


class ForgetfulStore(InMemoryEventStore):
    """An in-memory store whose first ``complete`` fails, as a database might."""

    def __init__(self, *, release_fails: bool = False) -> None:
        super().__init__()
        self.completions = 0
        self.release_fails = release_fails

    def complete(self, event_id: str) -> None:
        self.completions += 1
        if self.completions == 1:
            raise ConnectionError("database unreachable")
        super().complete(event_id)

    def release(self, event_id: str) -> None:
        if self.release_fails:
            raise ConnectionError("database still unreachable")
        super().release(event_id)


def test_a_store_failing_to_record_completion_releases_the_event_for_stripes_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """complete() raising: 500 store_failed, logged, and the redelivery is handled, not 409."""
    seen: list[str] = []
    receiver = receiver_with(
        {"customer.updated": lambda event: seen.append(event.id)}, store=ForgetfulStore()
    )
    delivery = signed(event_body("customer.updated", CUSTOMER))
    with caplog.at_level(logging.ERROR, "lattice_stripe.webhooks"):
        assert run(receiver, *delivery) == WebhookReply(status=500, outcome="store_failed")
    [record] = caplog.records
    assert "evt_1" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionError)
    assert run(receiver, *delivery) == WebhookReply(status=200, outcome="processed")
    assert run(receiver, *delivery) == WebhookReply(status=200, outcome="duplicate")
    assert seen == ["evt_1", "evt_1"]


def test_a_store_failing_to_record_and_to_release_still_answers_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """complete() and release() both raising: 500 store_failed, both failures logged, no crash."""
    receiver = receiver_with(
        {"customer.updated": lambda event: None}, store=ForgetfulStore(release_fails=True)
    )
    with caplog.at_level(logging.ERROR, "lattice_stripe.webhooks"):
        reply = run(receiver, *signed(event_body("customer.updated", CUSTOMER)))
    assert reply == WebhookReply(status=500, outcome="store_failed")
    assert len(caplog.records) == 2
    assert all(record.exc_info is not None for record in caplog.records)


class TickingClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_receiver_claims_each_event_for_its_lease() -> None:
    """lease_seconds reaches the store's claim; by default the documented five minutes."""
    leases: list[float] = []

    class RecordingStore(InMemoryEventStore):
        def claim(self, event_id: str, lease_seconds: float = 0.0) -> bool:
            leases.append(lease_seconds)
            return super().claim(event_id, lease_seconds)

    handlers: dict[str, Callable[[Event], object]] = {"customer.updated": lambda event: None}
    payload = event_body("customer.updated", CUSTOMER)
    run(receiver_with(handlers, store=RecordingStore()), *signed(payload))
    run(receiver_with(handlers, store=RecordingStore(), lease_seconds=12.5), *signed(payload))
    assert leases == [DEFAULT_LEASE_SECONDS, 12.5]
    assert DEFAULT_LEASE_SECONDS == 300.0


def test_an_event_whose_worker_died_is_handled_after_its_lease() -> None:
    """A claim never completed nor released (a killed worker): 409 until the lease, then handled."""
    ticks = TickingClock()
    store = InMemoryEventStore(clock=ticks)
    seen: list[str] = []
    receiver = receiver_with({"customer.updated": lambda e: seen.append(e.id)}, store=store)
    delivery = signed(event_body("customer.updated", CUSTOMER))
    crashed = receiver.receive(*delivery)
    assert isinstance(crashed, Delivery)  # and its worker dies here: no succeeded, no failed
    ticks.now += DEFAULT_LEASE_SECONDS - 1
    assert run(receiver, *delivery) == WebhookReply(status=409, outcome="in_progress")
    ticks.now += 2
    assert run(receiver, *delivery) == WebhookReply(status=200, outcome="processed")
    assert run(receiver, *delivery) == WebhookReply(status=200, outcome="duplicate")
    assert seen == ["evt_1"]


def test_the_in_memory_store_forgets_completed_ids_after_the_retention() -> None:
    """Completed IDs older than retention_seconds go, at most prune_batch per completion."""
    ticks = TickingClock()
    store = InMemoryEventStore(clock=ticks, retention_seconds=60, prune_batch=2)
    for event_id in ("a", "b", "c"):
        assert store.claim(event_id)
        store.complete(event_id)
    ticks.now += 61
    assert store.claim("d")
    store.complete("d")
    assert [store.is_complete(event_id) for event_id in "abcd"] == [False, False, True, True]
    assert store.prune() == 1
    assert store.claim("c") is True


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"lease_seconds": float("inf")}, "lease_seconds"),
        ({"lease_seconds": True}, "lease_seconds"),
    ],
)
def test_a_bad_lease_is_refused_at_set_up(options: dict[str, Any], field: str) -> None:
    """A lease that is not a positive, finite number of seconds: ValidationError naming it."""
    with pytest.raises(ValidationError, match=field) as caught:
        receiver_with({}, **options)
    assert caught.value.path == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retention_seconds": -1}, "retention_seconds"),
        ({"retention_seconds": float("nan")}, "retention_seconds"),
        ({"prune_batch": 0}, "prune_batch"),
        ({"prune_batch": 2.5}, "prune_batch"),
    ],
)
def test_bad_retention_settings_are_refused(options: dict[str, Any], field: str) -> None:
    """Retention and prune settings that are not positive numbers: ValidationError naming them."""
    with pytest.raises(ValidationError) as caught:
        InMemoryEventStore(**options)
    assert caught.value.path == field


class AsyncMemoryStore:
    """An asyncio event store over the in-memory one, recording its calls."""

    def __init__(self, *, complete_fails: bool = False) -> None:
        self.inner = InMemoryEventStore()
        self.calls: list[str] = []
        self.complete_fails = complete_fails

    async def claim(self, event_id: str, lease_seconds: float) -> bool:
        self.calls.append("claim")
        return self.inner.claim(event_id, lease_seconds)

    async def complete(self, event_id: str) -> None:
        self.calls.append("complete")
        if self.complete_fails:
            raise ConnectionError("database unreachable")
        self.inner.complete(event_id)

    async def is_complete(self, event_id: str) -> bool:
        self.calls.append("is_complete")
        return self.inner.is_complete(event_id)

    async def release(self, event_id: str) -> None:
        self.calls.append("release")
        self.inner.release(event_id)


async def test_an_async_store_is_awaited_through_the_async_methods() -> None:
    """areceive, afailed and asucceeded await an async store: fail, retry, then duplicate."""
    store = AsyncMemoryStore()
    receiver = receiver_with({"customer.updated": lambda event: None}, store=store)
    assert receiver.is_async
    delivery = signed(event_body("customer.updated", CUSTOMER))
    first = await receiver.areceive(*delivery)
    assert isinstance(first, Delivery)
    assert await receiver.areceive(*delivery) == WebhookReply(status=409, outcome="in_progress")
    assert await receiver.afailed(first) == WebhookReply(status=500, outcome="handler_failed")
    retry = await receiver.areceive(*delivery)
    assert isinstance(retry, Delivery)
    assert await receiver.asucceeded(retry) == WebhookReply(status=200, outcome="processed")
    assert await receiver.areceive(*delivery) == WebhookReply(status=200, outcome="duplicate")
    assert store.calls == [
        "claim",
        "claim",
        "is_complete",
        "release",
        "claim",
        "complete",
        "claim",
        "is_complete",
    ]


async def test_an_async_store_failing_to_complete_releases_the_event() -> None:
    """complete() raising in an async store: 500 store_failed, and the event is released."""
    store = AsyncMemoryStore(complete_fails=True)
    receiver = receiver_with({"customer.updated": lambda event: None}, store=store)
    delivery = signed(event_body("customer.updated", CUSTOMER))
    first = await receiver.areceive(*delivery)
    assert isinstance(first, Delivery)
    assert await receiver.asucceeded(first) == WebhookReply(status=500, outcome="store_failed")
    assert isinstance(await receiver.areceive(*delivery), Delivery)


def test_the_sync_methods_refuse_an_async_store_and_back() -> None:
    """Calling receive with an async store (or areceive with a sync one) is a TypeError."""
    delivery = signed(event_body("customer.updated", CUSTOMER))
    on_async = receiver_with({"customer.updated": lambda event: None}, store=AsyncMemoryStore())
    with pytest.raises(TypeError, match="areceive"):
        on_async.receive(*delivery)
    on_sync = receiver_with({"customer.updated": lambda event: None})
    with pytest.raises(TypeError, match="receive"):
        asyncio.run(on_sync.areceive(*delivery))


def test_event_decode_error_is_the_librarys_and_a_value_error() -> None:
    """A typed-view failure is caught by ``except LatticeStripeError`` and ``except ValueError``."""
    assert issubclass(EventDecodeError, LatticeStripeError)
    assert issubclass(EventDecodeError, ValueError)


def test_unknown_top_level_event_keys_are_kept_in_extra() -> None:
    """Keys the Event does not model (request, pending_webhooks) are in extra, known ones not."""
    document = {
        "id": "evt_extra",
        "object": "event",
        "type": "invoice.paid",
        "created": 1,
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": {"object": "invoice", "id": "in_1"}},
        "pending_webhooks": 2,
        "request": {"id": "req_1", "idempotency_key": None},
    }
    event = Event.from_json(json.dumps(document).encode())
    assert event.extra == {
        "pending_webhooks": 2,
        "request": {"id": "req_1", "idempotency_key": None},
    }


def test_the_applications_names_bind_the_system_clocks() -> None:
    """lattice_stripe's receiver and store default to time.time / time.monotonic and a store."""
    import time

    import lattice_stripe
    from lattice_stripe.core.webhooks import InMemoryEventStore as CoreStore
    from lattice_stripe.core.webhooks import WebhookReceiver as CoreReceiver

    receiver = lattice_stripe.WebhookReceiver("whsec_test", {})
    assert isinstance(receiver, CoreReceiver)
    assert isinstance(receiver.store, CoreStore)
    assert receiver._clock is time.time
    assert lattice_stripe.InMemoryEventStore()._clock is time.monotonic


def test_the_cores_webhook_code_takes_its_clock_from_the_caller() -> None:
    """The core's verify, receiver and store have no default clock: a call without one fails."""
    from lattice_stripe.core.webhooks import InMemoryEventStore as CoreStore
    from lattice_stripe.core.webhooks import verify_signature as core_verify

    with pytest.raises(TypeError, match="clock"):
        CoreStore()  # type: ignore[call-arg]
    body = b'{"id":"evt_1"}'
    header = generate_signature_header(body, "whsec_test", timestamp=1000)
    assert core_verify(body, header, "whsec_test", clock=lambda: 1000.0) == 1000
