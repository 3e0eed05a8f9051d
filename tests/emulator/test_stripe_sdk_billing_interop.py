"""The official ``stripe`` SDK's customer and subscription calls against the emulator."""

from collections.abc import Iterator
from typing import Any

import pytest

stripe = pytest.importorskip("stripe")

from lattice_stripe import Client  # noqa: E402
from lattice_stripe.emulator import (  # noqa: E402
    DEFAULT_API_KEY,
    Emulator,
    RunningEmulator,
    serve_in_thread,
)


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    """A fresh emulator per test in a background thread (the SDK's HTTP client blocks)."""
    with serve_in_thread(Emulator()) as running:
        yield running


@pytest.fixture
def sdk(running: RunningEmulator) -> Any:
    """A StripeClient whose API base is the emulator; no network retries."""
    return stripe.StripeClient(
        DEFAULT_API_KEY, base_addresses={"api": running.url}, max_network_retries=0
    )


def test_sdk_creates_retrieves_and_updates_a_customer(sdk: Any) -> None:
    """The SDK's customer create, retrieve and update work, and read as ours do."""
    made = sdk.v1.customers.create(
        {"email": "jo@example.com", "metadata": {"user_id": "7"}, "preferred_locales": ["fr"]}
    )
    assert made.id.startswith("cus_")
    assert sdk.v1.customers.retrieve(made.id).email == "jo@example.com"
    updated = sdk.v1.customers.update(made.id, {"name": "Jo", "metadata": {"user_id": ""}})
    assert (updated.name, updated.email, updated.preferred_locales) == (
        "Jo",
        "jo@example.com",
        ["fr"],
    )
    assert updated.metadata.to_dict() == {}


def test_sdk_and_ours_read_the_same_customer(sdk: Any, running: RunningEmulator) -> None:
    """A customer the SDK creates reads back through our client with the same fields."""
    made = sdk.v1.customers.create({"email": "sam@example.com", "name": "Sam"})
    with Client(DEFAULT_API_KEY, base_url=running.url, allow_http_localhost=True) as client:
        ours = client.customers.retrieve(made.id)
    assert (ours.id, ours.email, ours.name, ours.created) == (
        made.id,
        "sam@example.com",
        "Sam",
        made.created,
    )


def test_sdk_lists_and_pages_subscriptions(sdk: Any) -> None:
    """The SDK's list filters and auto-pagination walk the emulator's subscriptions."""
    team = sdk.v1.subscriptions.list({"customer": "cus_team"})
    assert sorted(sub.id for sub in team.data) == ["sub_team", "sub_team_addon"]
    every = sdk.v1.subscriptions.list({"status": "all", "limit": 1}).auto_paging_iter()
    assert sorted(sub.id for sub in every) == [
        "sub_demo",
        "sub_lapsed",
        "sub_team",
        "sub_team_addon",
    ]
    by_price = sdk.v1.subscriptions.list({"price": "price_pro_yearly"})
    assert [sub.id for sub in by_price.data] == ["sub_team_addon"]
    sub = sdk.v1.subscriptions.retrieve("sub_team")
    assert sub["items"].data[0].price.id == "price_basic_monthly"


def test_sdk_sees_stripes_404_for_unknown_ids(sdk: Any) -> None:
    """Unknown customers and subscriptions are InvalidRequestError with resource_missing."""
    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (sdk.v1.customers.retrieve, ("cus_ghost",)),
        (sdk.v1.customers.update, ("cus_ghost", {"name": "x"})),
        (sdk.v1.subscriptions.retrieve, ("sub_ghost",)),
    ]
    for method, args in calls:
        with pytest.raises(stripe.InvalidRequestError) as info:
            method(*args)
        assert (info.value.http_status, info.value.code) == (404, "resource_missing")


def test_sdk_unknown_cursor_names_its_param(sdk: Any) -> None:
    """An unknown starting_after is a 400 naming the parameter."""
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.subscriptions.list({"starting_after": "sub_ghost"})
    assert info.value.param == "starting_after"
