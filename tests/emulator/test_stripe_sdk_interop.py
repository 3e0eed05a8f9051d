"""The official ``stripe`` SDK against the emulator: sessions, and Stripe's typed errors.

The SDK checks nothing before sending, so these tests pin the emulator's own
validation: whatever a raw client sends is judged as Stripe would judge it.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

stripe = pytest.importorskip("stripe")

from lattice_stripe.emulator import (  # noqa: E402
    DEFAULT_API_KEY,
    Emulator,
    RunningEmulator,
    serve,
    serve_in_thread,
)


@pytest.fixture(scope="module")
def running() -> Iterator[RunningEmulator]:
    """One emulator in a background thread (the SDK's default HTTP client blocks)."""
    with serve_in_thread(Emulator()) as running:
        yield running


@pytest.fixture
def sdk(running: RunningEmulator) -> Any:
    """A StripeClient whose API base is the emulator; no network retries."""
    return stripe.StripeClient(
        DEFAULT_API_KEY, base_addresses={"api": running.url}, max_network_retries=0
    )


def test_sdk_creates_a_portal_session(sdk: Any, running: RunningEmulator) -> None:
    """The SDK gets a billing_portal.session with its flow, as from Stripe."""
    params: Any = {
        "customer": "cus_demo",
        "return_url": "https://example.com/account",
        "flow_data": {
            "type": "subscription_cancel",
            "subscription_cancel": {"subscription": "sub_demo"},
            "after_completion": {
                "type": "redirect",
                "redirect": {"return_url": "https://example.com/done"},
            },
        },
    }
    session = sdk.v1.billing_portal.sessions.create(params)
    assert session.object == "billing_portal.session"
    assert session.customer == "cus_demo"
    assert session.url.startswith(running.url + "/p/session/")
    assert session.flow.type == "subscription_cancel"
    assert session.flow.subscription_cancel.subscription == "sub_demo"
    assert session.flow.after_completion.redirect.return_url == "https://example.com/done"
    assert session.last_response.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"customer": "cus_demo", "retrun_url": "https://example.com"}, "retrun_url"),
        (
            {"customer": "cus_demo", "flow_data": {"type": "subscription_cancel"}},
            "flow_data[subscription_cancel]",
        ),
        (
            {"customer": "cus_demo", "flow_data": {"type": "subscription_explode"}},
            "flow_data[type]",
        ),
        ({"customer": "cus_demo", "locale": "klingon"}, "locale"),
        ({"customer": "cus_ghost"}, "customer"),
        (
            {
                "customer": "cus_demo",
                "flow_data": {
                    "type": "subscription_update",
                    "subscription_update": {"subscription": "sub_team"},
                },
            },
            "flow_data[subscription_update][subscription]",
        ),
    ],
    ids=[
        "unknown param",
        "missing sub-hash",
        "bad enum",
        "bad locale",
        "unknown customer",
        "foreign subscription",
    ],
)
def test_sdk_gets_invalid_request_errors_with_the_param(sdk: Any, params: Any, param: str) -> None:
    """Bad input the SDK passes through raises stripe.InvalidRequestError naming the param."""
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk.v1.billing_portal.sessions.create(params)
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert caught.value.request_id.startswith("req_")


def test_sdk_wrong_key_is_an_authentication_error(running: RunningEmulator) -> None:
    """A wrong secret key raises stripe.AuthenticationError."""
    sdk = stripe.StripeClient(
        "sk_test_imposter", base_addresses={"api": running.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as caught:
        sdk.v1.billing_portal.sessions.create({"customer": "cus_demo"})
    assert caught.value.http_status == 401


def test_sdk_idempotency_key_reuse_is_an_idempotency_error(sdk: Any) -> None:
    """The same Idempotency-Key replays; with other params it raises stripe.IdempotencyError."""
    first = sdk.v1.billing_portal.sessions.create(
        {"customer": "cus_demo"}, {"idempotency_key": "sdk-key"}
    )
    replay = sdk.v1.billing_portal.sessions.create(
        {"customer": "cus_demo"}, {"idempotency_key": "sdk-key"}
    )
    assert replay.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.billing_portal.sessions.create(
            {"customer": "cus_team"}, {"idempotency_key": "sdk-key"}
        )


def test_sdk_reads_customers_and_subscriptions(sdk: Any) -> None:
    """The objects the demo reads decode as the SDK's typed resources."""
    customer = sdk.v1.customers.create({"email": "sdk@example.com"})
    assert sdk.v1.customers.retrieve(customer.id).email == "sdk@example.com"
    subscription = sdk.v1.subscriptions.retrieve("sub_demo")
    assert subscription.status == "active"
    assert subscription["items"].data[0].price.id == "price_pro_monthly"


def test_sdk_global_configuration_style(
    running: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module-level style (stripe.api_base, stripe.api_key) works too."""
    monkeypatch.setattr(stripe, "api_base", running.url)
    monkeypatch.setattr(stripe, "api_key", DEFAULT_API_KEY)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    session = stripe.billing_portal.Session.create(customer="cus_team")
    assert session.customer == "cus_team"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe.billing_portal.Session.create(customer="cus_team", locale="xx")
    assert caught.value.param == "locale"


@pytest.fixture
async def looped() -> AsyncIterator[RunningEmulator]:
    """An emulator in the test's own event loop, for the SDK's async client."""
    async with serve(Emulator()) as running:
        yield running


# The SDK's HTTPX client passes bytes as ``data=``, which httpx deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
async def test_sdk_async_client(looped: RunningEmulator) -> None:
    """The SDK's asyncio path (HTTPX) creates sessions and raises the same typed errors."""
    http_client = stripe.HTTPXClient()
    sdk = stripe.StripeClient(
        DEFAULT_API_KEY,
        base_addresses={"api": looped.url},
        http_client=http_client,
        max_network_retries=0,
    )
    try:
        session = await sdk.v1.billing_portal.sessions.create_async({"customer": "cus_demo"})
        assert session.url.startswith(looped.url)
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await sdk.v1.billing_portal.sessions.create_async({"customer": "cus_nope"})
        assert caught.value.param == "customer"
    finally:
        await http_client.close_async()


def test_sdk_manages_portal_configurations(sdk: Any) -> None:
    """The SDK's v1.billing_portal.configurations create/update/retrieve/list work as on Stripe."""
    configurations = sdk.v1.billing_portal.configurations
    made = configurations.create(
        {
            "business_profile": {"headline": "Manage your plan"},
            "features": {
                "customer_update": {"enabled": True, "allowed_updates": ["email"]},
                "invoice_history": {"enabled": True},
            },
            "metadata": {"team": "billing"},
        }
    )
    assert made.object == "billing_portal.configuration"
    assert made.is_default is False
    assert made.features.customer_update.allowed_updates == ["email"]
    updated = configurations.update(
        made.id, {"features": {"customer_update": {"allowed_updates": ""}}, "name": "Main"}
    )
    assert updated.features.customer_update.allowed_updates == []
    assert updated.name == "Main"
    assert configurations.retrieve(made.id).name == "Main"
    listed = configurations.list({"limit": 1})
    assert [item.id for item in listed.data] == [made.id]
    assert listed.has_more is True


def test_sdk_sees_a_missing_configuration_as_invalid_request(sdk: Any) -> None:
    """An unknown configuration is the SDK's InvalidRequestError with HTTP 404."""
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.billing_portal.configurations.retrieve("bpc_missing")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"
