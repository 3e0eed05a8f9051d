# ruff: noqa: E501  (the rule tables read best one case per line)
"""Customers, subscriptions and the billing state: one scenario table through both clients."""

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lattice_stripe import (
    AsyncClient,
    BillingState,
    Client,
    Customer,
    InvalidRequestError,
    ResponseDecodeError,
    Subscription,
    ValidationError,
    abilling_state,
    billing_state,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.billing import (
    guard_customer_create,
    guard_customer_update,
    guard_subscription_list,
)
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.emulator import DEFAULT_API_KEY, Emulator, RunningEmulator, serve_in_thread

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"


@pytest.fixture
def threaded() -> Iterator[RunningEmulator]:
    """A fresh emulator per test, in a thread, so that the blocking client can call it."""
    with serve_in_thread(Emulator()) as running:
        yield running


class Calls:
    """One client's billing calls, awaitable whichever client runs them."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        options: dict[str, Any] = {"base_url": url, "allow_http_localhost": True}
        self.client: Any = (
            AsyncClient(DEFAULT_API_KEY, **options)
            if kind == "async"
            else Client(DEFAULT_API_KEY, **options)
        )

    async def __call__(self, resource: str, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(getattr(self.client, resource), method)(*args, **kwargs)
        if method == "auto_paging_iter":
            if self.kind == "async":
                return [item async for item in result]
            return list(result)
        return await result if self.kind == "async" else result

    async def state(self, customer: str) -> BillingState:
        if self.kind == "async":
            return await abilling_state(self.client, customer)
        return billing_state(self.client, customer)

    async def close(self) -> None:
        if self.kind == "async":
            await self.client.aclose()
        else:
            self.client.close()


async def creates_retrieves_and_updates_a_customer(calls: Calls) -> None:
    """A customer is created with its fields, reads back equal, and an update changes only what it names."""
    made = await calls(
        "customers",
        "create",
        {
            "email": "jo@example.com",
            "name": "Jo Example",
            "phone": "+15555550100",
            "description": "from the shop",
            "address": {"city": "Paris", "country": "FR"},
            "metadata": {"user_id": "42"},
            "preferred_locales": ["fr", "en"],
        },
    )
    assert isinstance(made, Customer)
    assert made.id.startswith("cus_")
    assert (made.email, made.name, made.phone) == ("jo@example.com", "Jo Example", "+15555550100")
    assert made.address is not None
    assert (made.address.city, made.address.country, made.address.line1) == ("Paris", "FR", None)
    assert made.metadata == {"user_id": "42"}
    assert made.preferred_locales == ("fr", "en")
    assert await calls("customers", "retrieve", made.id) == made
    updated = await calls(
        "customers", "update", made.id, {"name": "Jo E.", "metadata": {"plan": "pro"}}
    )
    assert (updated.name, updated.email) == ("Jo E.", "jo@example.com")
    assert updated.metadata == {"user_id": "42", "plan": "pro"}
    for personal in ("jo@example.com", "Jo E.", "+15555550100", "Paris"):
        assert personal not in repr(updated)


async def unknown_ids_are_404(calls: Calls) -> None:
    """An unknown customer or subscription ID is Stripe's 404 resource_missing."""
    for resource, method, args in [
        ("customers", "retrieve", ("cus_nothing",)),
        ("customers", "update", ("cus_nothing", {"name": "x"})),
        ("subscriptions", "retrieve", ("sub_nothing",)),
    ]:
        with pytest.raises(InvalidRequestError) as info:
            await calls(resource, method, *args)
        assert (info.value.status, info.value.code) == (404, "resource_missing")


async def retrieves_a_subscription(calls: Calls) -> None:
    """A seeded subscription reads with its typed item and expanded price."""
    sub = await calls("subscriptions", "retrieve", "sub_team")
    assert isinstance(sub, Subscription)
    assert (sub.id, sub.customer, sub.status) == ("sub_team", "cus_team", "active")
    [item] = sub.items
    assert item.price is not None
    assert (item.price.id, item.quantity) == ("price_basic_monthly", 5)
    assert item.price.recurring is not None
    assert item.price.recurring.interval == "month"
    assert sub.current_period_end == item.current_period_end


async def lists_with_filters(calls: Calls) -> None:
    """customer, status and price filter as Stripe does; canceled only with status=canceled or all."""
    team = await calls("subscriptions", "list", customer="cus_team")
    assert [sub.id for sub in team.data]
    assert {sub.id for sub in team.data} == {
        "sub_team",
        "sub_team_addon",
    }
    trialing = await calls("subscriptions", "list", {"customer": "cus_team", "status": "trialing"})
    assert [sub.id for sub in trialing.data] == ["sub_team_addon"]
    lapsed = await calls("subscriptions", "list", customer="cus_lapsed")
    assert lapsed.data == ()
    everything = await calls("subscriptions", "list", customer="cus_lapsed", status="all")
    assert [sub.id for sub in everything.data] == ["sub_lapsed"]
    pro = await calls("subscriptions", "list", price="price_pro_monthly")
    assert [sub.id for sub in pro.data] == ["sub_demo"]


async def pages_through_every_subscription(calls: Calls) -> None:
    """auto_paging_iter walks pages of one until has_more is false, each subscription once."""
    first = await calls("subscriptions", "list", status="all", limit=1)
    assert first.has_more is True
    assert len(first.data) == 1
    every = await calls("subscriptions", "auto_paging_iter", status="all", limit=1)
    assert sorted(sub.id for sub in every) == [
        "sub_demo",
        "sub_lapsed",
        "sub_team",
        "sub_team_addon",
    ]


async def reads_the_billing_state(calls: Calls) -> None:
    """billing_state summarizes every subscription of the customer, canceled ones included."""
    state = await calls.state("cus_team")
    assert state.customer == "cus_team"
    by_id = {sub.id: sub for sub in state.subscriptions}
    assert set(by_id) == {"sub_team", "sub_team_addon"}
    team = by_id["sub_team"]
    assert (team.status, team.price, team.quantity) == ("active", "price_basic_monthly", 5)
    assert (team.cancel_at_period_end, team.cancel_at, team.pause_collection) == (False, None, None)
    assert team.current_period_end is not None
    assert state.entitled is True
    lapsed = await calls.state("cus_lapsed")
    assert [(sub.id, sub.status) for sub in lapsed.subscriptions] == [("sub_lapsed", "canceled")]
    assert lapsed.entitled is False
    assert json.loads(json.dumps(state.to_dict()))["customer"] == "cus_team"


SCENARIOS: list[Callable[[Calls], Awaitable[None]]] = [
    creates_retrieves_and_updates_a_customer,
    unknown_ids_are_404,
    retrieves_a_subscription,
    lists_with_filters,
    pages_through_every_subscription,
    reads_the_billing_state,
]


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_billing_scenarios(
    kind: str, scenario: Callable[[Calls], Awaitable[None]], threaded: RunningEmulator
) -> None:
    """Both clients pass every customer and subscription scenario against the same emulator."""

    async def run() -> None:
        calls = Calls(kind, threaded.url)
        try:
            await scenario(calls)
        finally:
            await calls.close()

    asyncio.run(run())


def test_concurrent_creates_with_one_idempotency_key_make_one_customer(
    threaded: RunningEmulator,
) -> None:
    """Two threads creating a customer with the same idempotency key get the same customer."""
    client = Client(DEFAULT_API_KEY, base_url=threaded.url, allow_http_localhost=True)
    made: list[Customer] = []
    start = threading.Barrier(2)

    def create() -> None:
        start.wait()
        made.append(client.customers.create({"email": "a@example.com"}, idempotency_key="user-7"))

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len(made) == 2
    assert made[0].id == made[1].id
    assert (
        sum(
            customer.email == "a@example.com"
            for customer in threaded.emulator.store.customers.values()
        )
        == 1
    )


# -- the guard: bad input names its field and sends nothing ------------------------


GUARD_CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], str, str]] = [
    ("customers", ("create", {"email": "not-an-email"}), {}, "email", "not an email address"),
    ("customers", ("create", {"email": "a@b.c" + "x" * 600}), {}, "email", "too long"),
    ("customers", ("create", {"phone": "+1" * 20}), {}, "phone", "at most 20"),
    ("customers", ("create", {"metadata": {"k" * 41: "v"}}), {}, "metadata.", "key too long"),
    (
        "customers",
        ("create", {"metadata": {str(n): "v" for n in range(51)}}),
        {},
        "metadata",
        "at most 50",
    ),
    ("customers", ("create", {"test_clock": "tc_1"}), {}, "test_clock", "'clock_'"),
    (
        "customers",
        ("create", {"preferred_locales": ["not a locale"]}),
        {},
        "preferred_locales[0]",
        "language tag",
    ),
    ("customers", ("create", {"emial": "a@example.com"}), {}, "emial", "unknown parameter"),
    ("customers", ("create", {"address": {"zip": "1"}}), {}, "address.zip", "unknown parameter"),
    ("customers", ("retrieve", "sub_1"), {}, "customer", "starting with 'cus_'"),
    ("customers", ("update", "cus_1", {}), {}, "params", "nothing to update"),
    (
        "customers",
        ("update", "cus_1", {"test_clock": "clock_1"}),
        {},
        "test_clock",
        "unknown parameter",
    ),
    ("subscriptions", ("retrieve", "cus_1"), {}, "subscription", "starting with 'sub_'"),
    ("subscriptions", ("list",), {"customer": "sub_1"}, "customer", "'cus_'"),
    ("subscriptions", ("list",), {"price": "prod_1"}, "price", "'price_'"),
    ("subscriptions", ("list",), {"status": "alive"}, "status", "unknown value"),
    ("subscriptions", ("list",), {"limit": 101}, "limit", "100 or less"),
    ("subscriptions", ("list",), {"limit": 0}, "limit", "1 or more"),
    (
        "subscriptions",
        ("list", {"starting_after": "sub_1", "ending_before": "sub_2"}),
        {},
        "ending_before",
        "at most one",
    ),
    ("subscriptions", ("list", {"customer": "cus_1"}), {"status": "all"}, "params", "not both"),
]


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(("resource", "call", "keywords", "path", "reason"), GUARD_CASES)
def test_bad_input_is_a_validation_error_and_nothing_is_sent(
    kind: str,
    resource: str,
    call: tuple[Any, ...],
    keywords: dict[str, Any],
    path: str,
    reason: str,
) -> None:
    """Each rule names the field path and the fix, through both clients, before any request."""
    transport = RecordingTransport()
    method, *args = call

    async def run() -> None:
        if kind == "async":
            async with AsyncClient(API_KEY, transport=transport) as client:
                await getattr(getattr(client, resource), method)(*args, **keywords)
        else:
            with Client(API_KEY, transport=transport) as client:
                getattr(getattr(client, resource), method)(*args, **keywords)

    with pytest.raises(ValidationError) as info:
        asyncio.run(run())
    assert info.value.path.startswith(path)
    assert reason in str(info.value)
    assert transport.requests == []


def test_an_invalid_email_is_not_echoed() -> None:
    """The refused email (personal data) is not in the error message."""
    with pytest.raises(ValidationError) as info:
        guard_customer_create({"email": "jo.secret@@example.com"})
    assert "jo.secret" not in str(info.value)


def test_a_broken_subscription_body_is_a_response_decode_error() -> None:
    """A subscription without a status surfaces as ResponseDecodeError naming the field."""
    body = json.dumps({"id": "sub_1", "object": "subscription", "status": None}).encode()
    transport = RecordingTransport()
    transport.queue(HttpResponse(status=200, headers={}, body=body))
    with (
        Client(API_KEY, transport=transport) as client,
        pytest.raises(ResponseDecodeError, match="status"),
    ):
        client.subscriptions.retrieve("sub_1")


def test_the_list_query_is_stripes() -> None:
    """The filters go as the query string in field order; a GET carries no idempotency key."""
    sent: list[HttpRequest] = []
    page = {"object": "list", "data": [], "has_more": False, "url": "/v1/subscriptions"}

    class Capturing(RecordingTransport):
        def send(self, request: HttpRequest) -> HttpResponse:
            sent.append(request)
            return HttpResponse(status=200, body=json.dumps(page).encode())

    with Client(API_KEY, transport=Capturing()) as client:
        client.subscriptions.list(customer="cus_1", status="all", limit=3)
    [request] = sent
    assert request.method == "GET"
    assert request.url.endswith("/v1/subscriptions?customer=cus_1&status=all&limit=3")
    assert "Idempotency-Key" not in request.headers


# -- property tests of the new guards -------------------------------------------------

_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@given(local=_local, domain=_label, tld=_label)
def test_well_formed_emails_pass_and_are_sent_unchanged(local: str, domain: str, tld: str) -> None:
    """Any local@domain.tld of plain characters is accepted as it is."""
    email = f"{local}@{domain}.{tld}"
    assert guard_customer_create({"email": email}).email == email


@given(st.text(max_size=40).filter(lambda text: "@" not in text))
def test_a_string_without_at_sign_is_never_an_email(text: str) -> None:
    """Without an '@' nothing passes as an email; the error names the field."""
    with pytest.raises(ValidationError) as info:
        guard_customer_create({"email": text})
    assert info.value.path == "email"


def _surrogate(*texts: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for text in texts for char in text)


@given(
    st.text(max_size=12), st.sampled_from(["customer", "price", "starting_after", "ending_before"])
)
def test_list_ids_need_their_prefix(value: str, field: str) -> None:
    """A list filter ID is accepted exactly when it has its prefix (cus_, price_, sub_)."""
    prefix = {"customer": "cus_", "price": "price_"}.get(field, "sub_")
    if value.startswith(prefix) and not _surrogate(value):
        assert getattr(guard_subscription_list({field: value}), field) == value
    else:
        with pytest.raises(ValidationError) as info:
            guard_subscription_list({field: value})
        assert info.value.path == field


@given(st.dictionaries(st.text(min_size=1, max_size=45), st.text(max_size=510), max_size=55))
def test_metadata_limits_match_the_configuration_rule(metadata: dict[str, str]) -> None:
    """Customer metadata passes exactly when it keeps Stripe's limits: 50 keys, 40 and 500 characters."""
    within = (
        len(metadata) <= 50
        and all(len(key) <= 40 and "[" not in key and "]" not in key for key in metadata)
        and all(len(value) <= 500 for value in metadata.values())
    )
    if within:
        assert guard_customer_update({"metadata": metadata}).metadata == metadata
    else:
        with pytest.raises(ValidationError) as info:
            guard_customer_update({"metadata": metadata})
        assert info.value.path.startswith("metadata")


def test_a_customer_update_publishes_customer_updated_with_what_changed(
    threaded: RunningEmulator,
) -> None:
    """The emulator's update sends customer.updated with previous_attributes; a no-op sends none."""
    with Client(DEFAULT_API_KEY, base_url=threaded.url, allow_http_localhost=True) as client:
        made = client.customers.create({"name": "Jo", "metadata": {"a": "1"}})
        before = len(threaded.emulator.webhooks.log)
        client.customers.update(made.id, {"name": "Jo E.", "metadata": {"a": ""}})
        client.customers.update(made.id, {"name": "Jo E."})
    [delivery] = threaded.emulator.webhooks.log[before:]
    data = delivery.event["data"]
    assert delivery.event["type"] == "customer.updated"
    assert data["object"]["name"] == "Jo E."
    assert data["object"]["metadata"] == {}
    assert data["previous_attributes"]["name"] == "Jo"


def test_personal_data_is_never_in_a_repr() -> None:
    """Customers, payment methods and cancellation comments keep personal data out of repr."""
    from lattice_stripe.core.billing import PaymentMethod
    from lattice_stripe.core.codec import read_object

    customer = read_object(
        Customer,
        {
            "id": "cus_1",
            "object": "customer",
            "email": "jo@example.com",
            "name": "Jo Example",
            "phone": "+15555550100",
            "description": "VIP Jo",
            "address": {"line1": "1 Secret Lane"},
            "shipping": {"name": "Jo Shipping"},
            "metadata": {"home": "Secret Town"},
            "business_name": "Jo's Business",
        },
        "customer",
    )
    method = read_object(
        PaymentMethod,
        {
            "id": "pm_1",
            "object": "payment_method",
            "type": "card",
            "billing_details": {"email": "jo@example.com", "name": "Jo Example"},
        },
        "payment_method",
    )
    sub = read_object(
        Subscription,
        {
            "id": "sub_1",
            "object": "subscription",
            "status": "canceled",
            "cancellation_details": {"comment": "Jo hates it", "feedback": "other"},
        },
        "subscription",
    )
    shown = repr(customer) + str(customer) + repr(method) + repr(sub)
    assert "cus_1" in shown
    assert "pm_1" in shown
    assert "'other'" in shown
    for personal in (
        "jo@example.com",
        "Jo Example",
        "+15555550100",
        "VIP Jo",
        "Secret Lane",
        "Jo Shipping",
        "Secret Town",
        "Jo's Business",
        "Jo hates it",
    ):
        assert personal not in shown
