"""Every example of the Customer Portal guide, in Python, against the recording fake."""

import enum

import attrs
import pytest

from lattice_stripe import Client, InvalidRequestError, Session, StripeError, ValidationError
from lattice_stripe.adapters.recording import RecordingTransport

RETURN_URL = "https://example.com/account"
ALL_FLOW_TYPES = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
    "subscription_pause",
    "customer_update",
)


def assert_portal_url(session: Session) -> None:
    assert session.url.startswith("https://billing.stripe.com/p/session/test_")


# -- Quickstart --------------------------------------------------------------------


def test_quickstart_homepage(stripe_client: Client, fake_stripe: RecordingTransport) -> None:
    """Quickstart: customer and return_url only, no flow_data, opens the portal homepage."""
    session = stripe_client.billing_portal.sessions.create(
        {"customer": "cus_abc123", "return_url": RETURN_URL}
    )
    request = fake_stripe.last_request
    assert (request.method, request.path) == ("POST", "/v1/billing_portal/sessions")
    assert request.params == {"customer": "cus_abc123", "return_url": RETURN_URL}
    assert session.customer == "cus_abc123"
    assert session.return_url == RETURN_URL
    assert session.flow is None
    assert_portal_url(session)


def test_quickstart_optional_params(stripe_client: Client, fake_stripe: RecordingTransport) -> None:
    """The optional params the guide lists (configuration, locale, on_behalf_of) are sent as is."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_abc123",
            "return_url": RETURN_URL,
            "configuration": "bpc_def",
            "locale": "fr",
            "on_behalf_of": "acct_connected",
        }
    )
    assert fake_stripe.last_request.params == {
        "customer": "cus_abc123",
        "return_url": RETURN_URL,
        "configuration": "bpc_def",
        "locale": "fr",
        "on_behalf_of": "acct_connected",
    }
    assert session.configuration == "bpc_def"
    assert session.locale == "fr"
    assert session.on_behalf_of == "acct_connected"


# -- Deep-link flows ---------------------------------------------------------------


def test_payment_method_update_flow(stripe_client: Client, fake_stripe: RecordingTransport) -> None:
    """payment_method_update needs no sub-fields."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_abc123",
            "return_url": RETURN_URL,
            "flow_data": {"type": "payment_method_update"},
        }
    )
    assert fake_stripe.last_request.params["flow_data"] == {"type": "payment_method_update"}
    assert session.flow is not None
    assert session.flow.type == "payment_method_update"
    assert_portal_url(session)


def test_subscription_cancel_flow(stripe_client: Client, fake_stripe: RecordingTransport) -> None:
    """subscription_cancel sends the subscription to cancel."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_abc123",
            "return_url": RETURN_URL,
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": "sub_1MowQVLkdIwHu7ix"},
            },
        }
    )
    assert fake_stripe.last_request.params["flow_data"] == {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": "sub_1MowQVLkdIwHu7ix"},
    }
    assert session.flow is not None
    assert session.flow.subscription_cancel is not None
    assert session.flow.subscription_cancel.subscription == "sub_1MowQVLkdIwHu7ix"


def test_subscription_update_flow(stripe_client: Client, fake_stripe: RecordingTransport) -> None:
    """subscription_update sends the subscription whose plan or quantity changes."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_abc123",
            "return_url": RETURN_URL,
            "flow_data": {
                "type": "subscription_update",
                "subscription_update": {"subscription": "sub_1MowQVLkdIwHu7ix"},
            },
        }
    )
    assert fake_stripe.last_request.params["flow_data"] == {
        "type": "subscription_update",
        "subscription_update": {"subscription": "sub_1MowQVLkdIwHu7ix"},
    }
    assert session.flow is not None
    assert session.flow.subscription_update is not None
    assert session.flow.subscription_update.subscription == "sub_1MowQVLkdIwHu7ix"


def test_subscription_update_confirm_flow(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """subscription_update_confirm sends the subscription and its items as items[0][id]..."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_abc123",
            "return_url": RETURN_URL,
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_1MowQVLkdIwHu7ix",
                    "items": [{"id": "si_NcLYdDxLHxlFo7", "price": "price_new_plan"}],
                },
            },
        }
    )
    request = fake_stripe.last_request
    assert b"flow_data%5Bsubscription_update_confirm%5D%5Bitems%5D%5B0%5D%5Bid%5D=" in request.body
    assert request.params["flow_data"]["subscription_update_confirm"] == {
        "subscription": "sub_1MowQVLkdIwHu7ix",
        "items": [{"id": "si_NcLYdDxLHxlFo7", "price": "price_new_plan"}],
    }
    assert session.flow is not None
    confirm = session.flow.subscription_update_confirm
    assert confirm is not None
    assert [(item.id, item.price) for item in confirm.items] == [
        ("si_NcLYdDxLHxlFo7", "price_new_plan")
    ]


@pytest.mark.parametrize(
    ("flow_data", "path"),
    [
        ({"type": "subscription_cancel", "subscription_cancel": {}}, "subscription_cancel"),
        ({"type": "subscription_update", "subscription_update": {}}, "subscription_update"),
        (
            {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {"items": [{"id": "si_1"}]},
            },
            "subscription_update_confirm",
        ),
    ],
)
def test_missing_subscription_fails_before_the_network(
    stripe_client: Client, fake_stripe: RecordingTransport, flow_data: dict[str, object], path: str
) -> None:
    """A flow without its subscription raises at once, naming the field path; nothing is sent."""
    with pytest.raises(ValidationError) as info:
        stripe_client.billing_portal.sessions.create(
            {"customer": "cus_abc123", "return_url": RETURN_URL, "flow_data": flow_data}
        )
    assert info.value.path == f"flow_data.{path}.subscription"
    assert fake_stripe.requests == []


def test_update_confirm_with_empty_items_fails_before_the_network(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """subscription_update_confirm with an empty items list names .items; nothing is sent."""
    with pytest.raises(ValidationError) as info:
        stripe_client.billing_portal.sessions.create(
            {
                "customer": "cus_abc123",
                "flow_data": {
                    "type": "subscription_update_confirm",
                    "subscription_update_confirm": {"subscription": "sub_1", "items": []},
                },
            }
        )
    assert info.value.path == "flow_data.subscription_update_confirm.items"
    assert fake_stripe.requests == []


# -- End-to-end web example --------------------------------------------------------


@attrs.frozen
class User:
    stripe_customer_id: str


def portal_url(client: Client, user: User, return_to: str) -> str:
    """The guide's MyApp.Billing.portal_url/2: a portal session URL for ``user``."""
    session = client.billing_portal.sessions.create(
        {"customer": user.stripe_customer_id, "return_url": return_to}
    )
    return session.url


@attrs.frozen
class Redirect:
    location: str
    flash: str | None = None


def billing_portal(client: Client, user: User, account_url: str) -> Redirect:
    """The guide's BillingController.portal/2: redirect to the portal, or back with a flash."""
    try:
        return Redirect(portal_url(client, user, account_url))
    except StripeError as error:
        return Redirect(account_url, flash=f"Could not open billing portal: {error.message}")


def test_portal_url_wrapper_happy_path(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """The wrapper redirects to a fresh portal URL for the user's Stripe customer."""
    response = billing_portal(stripe_client, User("cus_xyz"), RETURN_URL)
    assert response.flash is None
    assert response.location.startswith("https://billing.stripe.com/p/session/test_")
    assert fake_stripe.last_request.params == {"customer": "cus_xyz", "return_url": RETURN_URL}


def test_portal_url_wrapper_error_path(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """A Stripe error becomes a flash and a redirect back to the account page."""
    fake_stripe.queue_error(
        404, message="No such customer: 'cus_deleted'", code="resource_missing", param="customer"
    )
    with pytest.raises(InvalidRequestError):
        portal_url(stripe_client, User("cus_deleted"), RETURN_URL)
    fake_stripe.queue_error(
        404, message="No such customer: 'cus_deleted'", code="resource_missing", param="customer"
    )
    response = billing_portal(stripe_client, User("cus_deleted"), RETURN_URL)
    assert response == Redirect(
        RETURN_URL, flash="Could not open billing portal: No such customer: 'cus_deleted'"
    )
    assert len(fake_stripe.requests) == 2


# -- Security and session lifetime -------------------------------------------------


def test_inspect_shows_no_url_or_flow(stripe_client: Client) -> None:
    """repr(session) lists the safe fields and leaves url and flow out, not even [FILTERED]."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_xyz",
            "return_url": RETURN_URL,
            "flow_data": {"type": "payment_method_update"},
        }
    )
    shown = repr(session)
    for field in ("id=", "object=", "livemode=", "customer=", "configuration=", "on_behalf_of="):
        assert field in shown
    for field in ("created=", "return_url=", "locale="):
        assert field in shown
    assert session.url not in shown
    assert " url=" not in shown
    assert "flow" not in shown
    assert "FILTERED" not in shown
    assert str(session) == shown


def test_to_dict_is_the_escape_hatch(stripe_client: Client) -> None:
    """to_dict() shows every field, url and flow included, for deliberate debugging."""
    session = stripe_client.billing_portal.sessions.create(
        {
            "customer": "cus_xyz",
            "return_url": RETURN_URL,
            "flow_data": {"type": "payment_method_update"},
        }
    )
    everything = session.to_dict()
    assert everything["url"] == session.url
    assert everything["flow"]["type"] == "payment_method_update"
    assert everything["id"] == session.id


# -- Common pitfalls ---------------------------------------------------------------


def refused(client: Client, fake: RecordingTransport, params: object) -> ValidationError:
    """Create with ``params``, expect a ValidationError, and check nothing was sent."""
    with pytest.raises(ValidationError) as info:
        client.billing_portal.sessions.create(params)  # type: ignore[arg-type]
    assert fake.requests == []
    return info.value


def test_pitfall_customer_is_required(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """Without customer the call raises at once, naming 'customer'."""
    error = refused(stripe_client, fake_stripe, {"return_url": RETURN_URL})
    assert error.path == "customer"


def test_pitfall_email_instead_of_customer_id(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """An email address in place of the cus_ ID is refused with the hint to pass the ID."""
    error = refused(
        stripe_client, fake_stripe, {"customer": "jane@example.com", "return_url": RETURN_URL}
    )
    assert error.path == "customer"
    assert "(cus_...)" in error.reason
    assert "jane@example.com" not in str(error)


@pytest.mark.parametrize(
    "return_url", ["http://example.com/account", "/account", "example.com/account"]
)
def test_pitfall_return_url_must_be_absolute_https(
    stripe_client: Client, fake_stripe: RecordingTransport, return_url: str
) -> None:
    """A non-https or path-only return_url (account_path instead of account_url) is refused."""
    error = refused(stripe_client, fake_stripe, {"customer": "cus_xyz", "return_url": return_url})
    assert error.path == "return_url"
    assert "absolute https://" in error.reason


def test_pitfall_unknown_flow_type_lists_all_valid_types(
    stripe_client: Client, fake_stripe: RecordingTransport
) -> None:
    """An unknown flow type is refused with every valid type listed."""
    error = refused(
        stripe_client,
        fake_stripe,
        {"customer": "cus_xyz", "flow_data": {"type": "subscription_resume"}},
    )
    assert error.path == "flow_data.type"
    for flow_type in ALL_FLOW_TYPES:
        assert f"'{flow_type}'" in error.reason


class Key(enum.Enum):
    """Python's nearest thing to an Elixir atom used as a map key."""

    CUSTOMER = "customer"
    TYPE = "type"


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({Key.CUSTOMER: "cus_xyz"}, "params"),
        ({"customer": "cus_xyz", "flow_data": {Key.TYPE: "payment_method_update"}}, "flow_data"),
        ({b"customer": "cus_xyz"}, "params"),
    ],
)
def test_pitfall_atom_keys_are_refused(
    stripe_client: Client, fake_stripe: RecordingTransport, params: object, path: str
) -> None:
    """Non-string keys are refused before the network instead of reaching Stripe as a 400."""
    error = refused(stripe_client, fake_stripe, params)
    assert error.path == path
    assert "string" in error.reason


def test_pitfall_fresh_session_per_redirect(stripe_client: Client) -> None:
    """Each redirect creates a new session: two creates give two different ids and urls."""
    params = {"customer": "cus_xyz", "return_url": RETURN_URL}
    first = stripe_client.billing_portal.sessions.create(params)
    second = stripe_client.billing_portal.sessions.create(params)
    assert first.id != second.id
    assert first.url != second.url
