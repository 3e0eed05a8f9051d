"""RecordingTransport answers configuration calls as Stripe would, for both clients alike."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from lattice_stripe import (
    AsyncClient,
    Client,
    Configuration,
    CustomerUpdateFeature,
    Features,
    InvalidRequestError,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core import shape
from lattice_stripe.core.http import HttpRequest
from stripe_api import STRIPE_API

API_KEY = "sk_test_recording"
PATH = "/v1/billing_portal/configurations"
NOW = 1_800_000_000
DESIRED: dict[str, Any] = {
    "business_profile": {"headline": "Manage your plan"},
    "default_return_url": "https://example.com/account",
    "features": {
        "customer_update": {"enabled": True, "allowed_updates": ["email", "address"]},
        "invoice_history": {"enabled": True},
        "subscription_cancel": {
            "enabled": True,
            "mode": "immediately",
            "proration_behavior": "create_prorations",
            "cancellation_reason": {"enabled": True, "options": ["too_expensive"]},
        },
        "subscription_update": {
            "enabled": True,
            "default_allowed_updates": ["price", "quantity"],
            "products": [
                {
                    "product": "prod_basic",
                    "prices": ["price_basic_monthly"],
                    "adjustable_quantity": {"enabled": True, "minimum": 1, "maximum": 5},
                }
            ],
        },
    },
    "metadata": {"team": "billing"},
}


class Calls:
    """One client over one fake: each call awaitable whichever client runs it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fake = RecordingTransport(clock=lambda: NOW)
        self.client: Any = (
            AsyncClient(API_KEY, transport=self.fake)
            if kind == "async"
            else Client(API_KEY, transport=self.fake)
        )

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client.billing_portal.configurations, method)(*args, **kwargs)
        if method == "auto_paging_iter":
            if self.kind == "async":
                return [item async for item in result]
            return list(result)
        return await result if self.kind == "async" else result

    async def close(self) -> None:
        if self.kind == "async":
            await self.client.aclose()
        else:
            self.client.close()


async def echoes_what_was_sent_over_defaults(calls: Calls) -> None:
    """A create answers with what was sent, typed, and every other field at its default."""
    made = await calls("create", DESIRED)
    assert isinstance(made, Configuration)
    assert made.id.startswith("bpc_")
    assert (made.active, made.is_default, made.livemode) == (True, False, False)
    assert (made.created, made.updated) == (NOW, NOW)
    assert made.business_profile.headline == "Manage your plan"
    assert made.business_profile.privacy_policy_url is None
    features = made.features
    assert features.customer_update is not None
    assert features.customer_update.allowed_updates == ("email", "address")
    assert features.payment_method_update is not None
    assert features.payment_method_update.enabled is False
    assert features.subscription_cancel is not None
    assert features.subscription_cancel.mode == "immediately"
    assert features.subscription_cancel.cancellation_reason is not None
    assert features.subscription_cancel.cancellation_reason.options == ("too_expensive",)
    assert features.subscription_update is not None
    assert features.subscription_update.products is not None
    [product] = features.subscription_update.products
    assert product.adjustable_quantity is not None
    assert (product.adjustable_quantity.enabled, product.adjustable_quantity.maximum) == (True, 5)
    assert made.login_page.enabled is False
    assert made.metadata == {"team": "billing"}
    assert calls.fake.last_request.path == PATH
    assert await calls("retrieve", made.id) == made
    assert calls.fake.last_request.method == "GET"


async def updates_merge_and_clear(calls: Calls) -> None:
    """An update merges objects, clears an emptied list and a cleared string, edits metadata."""
    made = await calls("create", DESIRED)
    cleared = Features(customer_update=CustomerUpdateFeature(allowed_updates=()))
    updated = await calls(
        "update",
        made.id,
        {
            "features": cleared,
            "business_profile": {"headline": ""},
            "metadata": {"team": "", "owner": "ops"},
            "active": False,
        },
    )
    assert calls.fake.last_request.params["features"]["customer_update"]["allowed_updates"] == ""
    assert updated.features.customer_update.allowed_updates == ()
    assert updated.features.customer_update.enabled is True
    assert updated.features.invoice_history.enabled is True
    assert updated.business_profile.headline is None
    assert updated.metadata == {"owner": "ops"}
    assert updated.active is False
    assert await calls("retrieve", made.id) == updated
    emptied = await calls("update", made.id, {"metadata": {}})
    assert emptied.metadata == {}


async def lists_newest_first_and_pages(calls: Calls) -> None:
    """list gives a typed page newest first; auto_paging_iter walks every page; filters apply."""
    made = [await calls("create", {**DESIRED, "name": f"n{number}"}) for number in range(3)]
    first = await calls("list", {"limit": 2})
    assert (first.has_more, first.url) == (True, PATH)
    assert [item.id for item in first.data] == [made[2].id, made[1].id]
    every = await calls("auto_paging_iter", {"limit": 2})
    assert [item.id for item in every] == [item.id for item in reversed(made)]
    await calls("update", made[0].id, {"active": False})
    active = await calls("list", {"active": True})
    assert [item.id for item in active.data] == [made[2].id, made[1].id]


async def unknown_id_is_404(calls: Calls) -> None:
    """An unknown configuration ID is Stripe's 404 resource_missing, for retrieve and update."""
    for method, args in (("retrieve", ()), ("update", ({"name": "x"},))):
        with pytest.raises(InvalidRequestError) as info:
            await calls(method, "bpc_nothing", *args)
        assert (info.value.status, info.value.code) == (404, "resource_missing")
        assert info.value.param == "configuration"


async def ensure_twice_is_in_sync(calls: Calls) -> None:
    """ensure against the fake creates once; the second run finds it in sync, lookups only."""
    first = await calls("ensure", DESIRED, key="main")
    assert first.created is True
    before = len(calls.fake.requests)
    second = await calls("ensure", DESIRED, key="main")
    assert second.in_sync
    assert second.configuration.id == first.configuration.id
    assert {request.method for request in calls.fake.requests[before:]} == {"GET"}


SCENARIOS: list[Callable[[Calls], Awaitable[None]]] = [
    echoes_what_was_sent_over_defaults,
    updates_merge_and_clear,
    lists_newest_first_and_pages,
    unknown_id_is_404,
    ensure_twice_is_in_sync,
]


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_recording_configuration_scenarios(
    kind: str, scenario: Callable[[Calls], Awaitable[None]]
) -> None:
    """Both clients pass every configuration scenario against the recording fake."""

    async def run() -> None:
        calls = Calls(kind)
        try:
            await scenario(calls)
        finally:
            await calls.close()

    asyncio.run(run())


def _schemas() -> dict[str, Any]:
    found: dict[str, Any] = json.loads((STRIPE_API / "configuration_object.json").read_text())
    return found


def _missing(value: Any, schema: dict[str, Any], schemas: dict[str, Any], path: str) -> list[str]:
    """The spec properties absent from ``value``, recursing into objects the value has."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    for choice in schema.get("anyOf", ()):
        if isinstance(value, dict) and ("$ref" in choice or "properties" in choice):
            return _missing(value, choice, schemas, path)
    if isinstance(value, list) and "items" in schema:
        return [
            gap
            for index, item in enumerate(value)
            for gap in _missing(item, schema["items"], schemas, f"{path}[{index}]")
        ]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    gaps = [f"{path}.{name}" for name in schema["properties"] if name not in value]
    for name, inner in schema["properties"].items():
        if name in value and name != "metadata":
            gaps += _missing(value[name], inner, schemas, f"{path}.{name}")
    return gaps


def test_a_fake_configuration_has_every_field_of_stripes_object() -> None:
    """The fake's configuration JSON carries every property of Stripe's spec, nested ones too."""
    fake = RecordingTransport(clock=lambda: NOW)
    with Client(API_KEY, transport=fake) as client:
        client.billing_portal.configurations.create(DESIRED)
    response = fake.send(
        HttpRequest(
            method="POST",
            url="https://api.stripe.com" + PATH,
            headers={},
            body=fake.last_request.body,
        )
    )
    schemas = _schemas()
    gaps = _missing(json.loads(response.body), schemas["billing_portal.configuration"], schemas, "")
    assert gaps == []


@attrs.frozen(kw_only=True)
class _Limits:
    enabled: bool
    ceiling: int | None = None


@attrs.frozen(kw_only=True)
class _WithANewField:
    label: str | None = None
    limits: _Limits | None = None
    tags: tuple[str, ...] | None = None


def test_a_new_params_field_reaches_the_fakes_echo() -> None:
    """A field added to a params class is in the fake's defaults and typed in its echo, unlisted."""
    assert shape.defaults(_WithANewField) == {
        "label": None,
        "limits": {"enabled": False, "ceiling": None},
        "tags": [],
    }
    sent = {"label": "x", "limits": {"enabled": "true", "ceiling": "7"}, "tags": ""}
    assert shape.decode(_WithANewField, sent) == {
        "label": "x",
        "limits": {"enabled": True, "ceiling": 7},
        "tags": [],
    }
