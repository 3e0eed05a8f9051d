# ruff: noqa: E501  (the rule tables read best one case per line)
"""Portal configuration params: every guard rule, named constructors, and generated properties."""

import copy
import string
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lattice_stripe import (
    Client,
    ConfigurationCreateParams,
    ConfigurationUpdateParams,
    CustomerUpdateFeature,
    Features,
    ProductOption,
    SubscriptionCancelFeature,
    SubscriptionUpdateFeature,
    ValidationError,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.codec import decode_form
from lattice_stripe.core.configuration import (
    guard_configuration_create,
    guard_configuration_list,
    guard_configuration_update,
    plan_update,
)
from lattice_stripe.core.shape import encode
from lattice_stripe.testing import configuration_body

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
CALL_KEY = "sk_test_51ConfigurationKeyAudit0000000"
BASE: dict[str, Any] = {"features": {"invoice_history": {"enabled": True}}}


def with_(path: str, value: object, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default BASE) with the dotted ``path`` set to ``value``."""
    document = copy.deepcopy(BASE if base is None else base)
    node = document
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return document


CREATE_ERRORS: list[tuple[Any, str, str]] = [
    ({}, "features", "required"),
    ({"features": {}}, "features", "at least one feature"),
    (with_("colour", "red"), "colour", "unknown parameter"),
    (with_("features.customer_update", {"enabled": True, "allowed_updates": ["age"]}),
     "features.customer_update.allowed_updates[0]", "'email'"),
    (with_("features.customer_update", {"allowed_updates": ["email"]}),
     "features.customer_update.enabled", "required when creating"),
    (with_("features.subscription_cancel", {"enabled": True, "mode": "later"}),
     "features.subscription_cancel.mode", "'immediately'"),
    (with_("features.subscription_cancel", {"enabled": True, "proration_behavior": "always_invoice"}),
     "features.subscription_cancel.proration_behavior", "refuses 'always_invoice'"),
    (with_("features.subscription_cancel",
           {"enabled": True, "mode": "at_period_end", "proration_behavior": "create_prorations"}),
     "features.subscription_cancel.proration_behavior", "mode='immediately'"),
    (with_("features.subscription_cancel", {"enabled": True, "proration_behavior": "create_prorations"}),
     "features.subscription_cancel.proration_behavior", "mode='immediately'"),
    (with_("features.subscription_cancel", {"enabled": True, "cancellation_reason": {"enabled": True}}),
     "features.subscription_cancel.cancellation_reason.options", "required when creating"),
    (with_("features.subscription_update", {
        "enabled": True,
        "products": [{"product": f"prod_{n}", "prices": ["price_1"]} for n in range(11)]}),
     "features.subscription_update.products", "at most 10"),
    (with_("features.subscription_update", {"enabled": True, "products": [{"product": "prod_1"}]}),
     "features.subscription_update.products[0].prices", "required"),
    (with_("features.subscription_update", {"enabled": True, "products": [{"product": "prod_1", "prices": []}]}),
     "features.subscription_update.products[0].prices", "at least one price"),
    (with_("features.subscription_update", {"enabled": True, "products": [{"product": "price_1", "prices": ["price_1"]}]}),
     "features.subscription_update.products[0].product", "'prod_'"),
    (with_("features.subscription_update", {"enabled": True, "products": [{"product": "prod_1", "prices": ["prod_1"]}]}),
     "features.subscription_update.products[0].prices[0]", "'price_'"),
    (with_("features.subscription_update", {"enabled": True, "products": [{
        "product": "prod_1", "prices": ["price_1"],
        "adjustable_quantity": {"enabled": True, "minimum": 5, "maximum": 2}}]}),
     "features.subscription_update.products[0].adjustable_quantity.maximum", "less than minimum"),
    (with_("features.subscription_update", {"enabled": True, "products": [{
        "product": "prod_1", "prices": ["price_1"], "adjustable_quantity": {"enabled": True, "minimum": -1}}]}),
     "features.subscription_update.products[0].adjustable_quantity.minimum", "0 or more"),
    (with_("features.subscription_pause", {"enabled": True, "duration": {"type": "interval_options"}}),
     "features.subscription_pause.duration.interval_options", "required when"),
    (with_("features.subscription_pause", {"enabled": True, "duration": {
        "type": "indefinite", "interval_options": [{"interval": "month"}]}}),
     "features.subscription_pause.duration.interval_options", "only allowed"),
    (with_("features.subscription_pause", {"duration": {"type": "interval_options",
                                           "interval_options": [{"interval": "fortnight"}]}}),
     "features.subscription_pause.duration.interval_options[0].interval", "'month'"),
    (with_("features.invoice_history", {}), "features.invoice_history.enabled", "required"),
    (with_("features.invoice_history", {"enabled": "yes"}), "features.invoice_history.enabled", "true or false"),
    (with_("default_return_url", "http://example.com/"), "default_return_url", "https"),
    (with_("default_return_url", "javascript:alert(1)"), "default_return_url", "https"),
    (with_("business_profile", {"privacy_policy_url": "/privacy"}),
     "business_profile.privacy_policy_url", "https"),
    (with_("business_profile", {"headline": "x" * 61}), "business_profile.headline", "60"),
    (with_("name", "n" * 257), "name", "256"),
    (with_("metadata", {f"k{n}": "v" for n in range(51)}), "metadata", "at most 50"),
    (with_("metadata", {"k" * 41: "v"}), "metadata.'" + "k" * 40 + "'", "40 characters"),
    (with_("metadata", {"a[b]": "v"}), "metadata.a[b]", "'['"),
    (with_("metadata", {"k": "v" * 501}), "metadata.k", "500 characters"),
    (with_("metadata", {"k": 5}), "metadata.k", "string value"),
    (with_("login_page", {"enabled": None}), "login_page.enabled", "required"),
    (with_("features.payment_method_update", {"enabled": True, "payment_method_configuration": "pm_1"}),
     "features.payment_method_update.payment_method_configuration", "'pmc_'"),
    (with_("expand", "features"), "expand", "expected a list"),
    ([("features", {})], "params", "expected a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "path", "fix"), CREATE_ERRORS)
def test_create_guard_rules(params: Any, path: str, fix: str) -> None:
    """Each create rule fails with the field path and a fix, and the client sends nothing."""
    with pytest.raises(ValidationError) as info:
        guard_configuration_create(params)
    assert info.value.path == path
    assert fix in str(info.value)
    fake = RecordingTransport()
    with Client(API_KEY, transport=fake) as client, pytest.raises(ValidationError):
        client.billing_portal.configurations.create(params)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("params", "path", "fix"),
    [
        ({}, "params", "nothing to update"),
        ({"expand": ["application"]}, "params", "nothing to update"),
        ({"active": "false"}, "active", "true or false"),
        ({"features": {"subscription_cancel": {"proration_behavior": "always_invoice"}}},
         "features.subscription_cancel.proration_behavior", "refuses"),
        ({"features": {"subscription_cancel": {"mode": "at_period_end",
                                               "proration_behavior": "create_prorations"}}},
         "features.subscription_cancel.proration_behavior", "mode='immediately'"),
    ],
)  # fmt: skip
def test_update_guard_rules(params: Any, path: str, fix: str) -> None:
    """Each update rule, including an update with nothing to change, names the path and fix."""
    with pytest.raises(ValidationError) as info:
        guard_configuration_update(params)
    assert info.value.path == path
    assert fix in str(info.value)


def test_update_may_change_proration_alone() -> None:
    """An update may set create_prorations without mode: the stored mode may be immediately."""
    update = {"features": {"subscription_cancel": {"proration_behavior": "create_prorations"}}}
    assert guard_configuration_update(update).features is not None


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"starting_after": "cus_1"}, "starting_after"),
        ({"starting_after": "bpc_1", "ending_before": "bpc_2"}, "ending_before"),
        ({"active": 1}, "active"),
    ],
)
def test_list_guard_rules(params: Any, path: str) -> None:
    """List filters are checked: limit 1..100, bpc_ cursors, one direction, booleans."""
    with pytest.raises(ValidationError) as info:
        guard_configuration_list(params)
    assert info.value.path == path


def test_clearing_a_list_sends_stripes_empty_value() -> None:
    """An empty allowed_updates is sent as features[customer_update][allowed_updates]=."""
    update = ConfigurationUpdateParams(
        features=Features(customer_update=CustomerUpdateFeature(allowed_updates=()))
    )
    body = encode(guard_configuration_update(update))
    assert body == b"features%5Bcustomer_update%5D%5Ballowed_updates%5D="
    assert parse_qsl(body.decode(), keep_blank_values=True) == [
        ("features[customer_update][allowed_updates]", "")
    ]


def test_clearing_a_text_field_sends_an_empty_value() -> None:
    """name='' and default_return_url='' unset them (Stripe's empty value), not refused."""
    body = encode(guard_configuration_update({"name": "", "default_return_url": ""}))
    assert decode_form(body) == {"default_return_url": "", "name": ""}


def test_named_constructors_build_valid_common_shapes() -> None:
    """self_service, at_period_end, immediately and for_products pass the guard as built."""
    params = ConfigurationCreateParams.self_service(
        default_return_url="https://example.com/account",
        headline="Manage your plan",
        cancel=SubscriptionCancelFeature.immediately(prorate=True),
        update=SubscriptionUpdateFeature.for_products(
            ProductOption.of("prod_1", "price_1", "price_2", quantity=(1, 10))
        ),
    )
    checked = guard_configuration_create(params)
    wire = decode_form(encode(checked))
    assert wire["features"]["subscription_cancel"] == {
        "enabled": "true",
        "mode": "immediately",
        "proration_behavior": "create_prorations",
    }
    assert wire["features"]["subscription_update"]["products"] == [
        {
            "product": "prod_1",
            "prices": ["price_1", "price_2"],
            "adjustable_quantity": {"enabled": "true", "maximum": "10", "minimum": "1"},
        }
    ]
    at_end = SubscriptionCancelFeature.at_period_end(reasons=("too_expensive", "other"))
    assert guard_configuration_create({"features": Features(subscription_cancel=at_end)})


def test_plan_update_sends_only_what_differs() -> None:
    """plan_update leaves equal fields out, sends a changed feature whole and metadata by key."""
    from lattice_stripe.core.codec import decode_configuration

    current = decode_configuration(configuration_body(metadata={"lattice_stripe_key": "main"}))
    desired = guard_configuration_create(
        {
            "features": {
                "invoice_history": {"enabled": True},
                "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
            },
            "metadata": {"lattice_stripe_key": "main", "team": "billing"},
        }
    )
    update, changes = plan_update(desired, current)
    assert [str(change) for change in changes] == [
        "features.subscription_cancel.enabled: False -> True",
        "metadata.team: None -> 'billing'",
    ]
    assert update is not None
    assert decode_form(encode(update)) == {
        "features": {"subscription_cancel": {"enabled": "true", "mode": "at_period_end"}},
        "metadata": {"team": "billing"},
    }
    in_sync, none = plan_update(guard_configuration_create(BASE), current)
    assert (in_sync, none) == (None, ())


# -- properties ----------------------------------------------------------------------

ID_CHARS = string.ascii_letters + string.digits + "_"
NO_SURROGATES = st.characters(blacklist_categories=["Cs"])
text = st.text(NO_SURROGATES, min_size=1, max_size=30)
https_url = st.sampled_from(
    ["https://example.com/", "https://a.b.test/x?y=1&z=%20", "https://x.io"]
)
tail = st.text(ID_CHARS, min_size=1, max_size=8)
Strategy = st.SearchStrategy[Any]
CUSTOMER_UPDATE: Strategy = st.fixed_dictionaries(
    {"enabled": st.booleans()},
    optional={
        "allowed_updates": st.lists(
            st.sampled_from(["address", "email", "name", "phone", "shipping", "tax_id"]),
            max_size=6,
            unique=True,
        )
    },
)
SUBSCRIPTION_CANCEL: Strategy = st.fixed_dictionaries(
    {"enabled": st.booleans(), "mode": st.just("immediately")},
    optional={"proration_behavior": st.sampled_from(["none", "create_prorations"])},
)
PRODUCT: Strategy = st.fixed_dictionaries(
    {
        "product": tail.map("prod_".__add__),
        "prices": st.lists(tail.map("price_".__add__), min_size=1, max_size=3),
    }
)
SUBSCRIPTION_UPDATE: Strategy = st.fixed_dictionaries(
    {"enabled": st.booleans()},
    optional={
        "default_allowed_updates": st.lists(
            st.sampled_from(["price", "promotion_code", "quantity"]), max_size=3, unique=True
        ),
        "products": st.lists(PRODUCT, max_size=10),
        "proration_behavior": st.sampled_from(["always_invoice", "create_prorations", "none"]),
    },
)
ENABLED: Strategy = st.fixed_dictionaries({"enabled": st.booleans()})
FEATURES: Strategy = st.fixed_dictionaries(
    {},
    optional={
        "customer_update": CUSTOMER_UPDATE,
        "invoice_history": ENABLED,
        "payment_method_update": ENABLED,
        "subscription_cancel": SUBSCRIPTION_CANCEL,
        "subscription_update": SUBSCRIPTION_UPDATE,
    },
).filter(bool)
# All-digit keys are left out: a form parser cannot tell metadata[0] from a list entry.
METADATA_KEY = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="[]"), min_size=1, max_size=40
).filter(lambda key: not key.isdigit())
METADATA: Strategy = st.dictionaries(METADATA_KEY, st.text(NO_SURROGATES, max_size=50), max_size=5)
BUSINESS_PROFILE: Strategy = st.fixed_dictionaries(
    {},
    optional={
        "headline": st.text(NO_SURROGATES, min_size=1, max_size=60),
        "privacy_policy_url": https_url,
    },
)
create_params: Strategy = st.fixed_dictionaries(
    {"features": FEATURES},
    optional={
        "business_profile": BUSINESS_PROFILE,
        "default_return_url": https_url,
        "login_page": ENABLED,
        "metadata": METADATA,
        "name": text,
    },
)


def on_the_wire(value: Any, key: str = "") -> Any:
    """What a form parser reads back: strings, true/false, '' for [] and {} metadata.

    A hash with nothing in it has no form encoding, so it is absent.
    """
    if isinstance(value, dict):
        if not value:
            return "" if key == "metadata" else None
        wire = {name: on_the_wire(item, name) for name, item in value.items()}
        return {name: item for name, item in wire.items() if item is not None}
    if isinstance(value, list):
        return [on_the_wire(item) for item in value] if value else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@given(create_params)
def test_valid_params_are_accepted_and_round_trip(params: dict[str, Any]) -> None:
    """Valid params pass the guard and a standard form parser reads back the same structure."""
    body = encode(guard_configuration_create(params))
    assert body.isascii()
    assert decode_form(body) == on_the_wire(params)


MUTATIONS = [
    ("features", lambda p: p.pop("features")),
    ("name", lambda p: p.__setitem__("name", "x" * 257)),
    ("default_return_url", lambda p: p.__setitem__("default_return_url", "http://example.com")),
    ("metadata", lambda p: p.__setitem__("metadata", {"a]": "b"})),
    ("features.invoice_history", lambda p: p["features"].__setitem__("invoice_history", {"enabled": 1})),
    ("features.subscription_cancel", lambda p: p["features"].__setitem__(
        "subscription_cancel", {"enabled": True, "proration_behavior": "always_invoice"})),
    ("extra", lambda p: p.__setitem__("unknown_field", "x")),
]  # fmt: skip


@given(create_params, st.sampled_from(MUTATIONS))
def test_mutated_params_raise_and_send_nothing(params: dict[str, Any], mutation: Any) -> None:
    """A valid configuration broken in one place raises ValidationError and sends no request."""
    _, mutate = mutation
    broken = copy.deepcopy(params)
    mutate(broken)
    fake = RecordingTransport()
    with Client(API_KEY, transport=fake) as client, pytest.raises(ValidationError):
        client.billing_portal.configurations.create(broken)
    assert fake.requests == []


def test_a_failed_configuration_call_keeps_no_key_in_traceback_locals() -> None:
    """A per-call api_key given to a configuration call is in no frame of the error's traceback."""
    import traceback

    from lattice_stripe import InvalidRequestError

    fake = RecordingTransport()
    fake.queue_error(400, message="bad")
    with Client(API_KEY, transport=fake) as client, pytest.raises(InvalidRequestError) as info:
        client.billing_portal.configurations.create(BASE, api_key=CALL_KEY)
    rendered = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert CALL_KEY not in rendered
    assert CALL_KEY[8:] not in rendered


def test_plan_update_reactivates_an_inactive_configuration() -> None:
    """An inactive configuration that otherwise matches is planned as active=True, nothing else."""
    from lattice_stripe.core.codec import decode_configuration

    current = decode_configuration(configuration_body(active=False))
    update, changes = plan_update(guard_configuration_create(BASE), current)
    assert [str(change) for change in changes] == ["active: False -> True"]
    assert update is not None
    assert encode(update) == b"active=true"


class _Shifty(str):
    """A str whose formatting and concatenation say something else than its value."""

    def __str__(self) -> str:
        return "https://evil.example/"

    def __format__(self, spec: str) -> str:
        return "https://evil.example/"

    def __add__(self, other: object) -> str:
        return "https://evil.example/"


class _Twice(list[Any]):
    """A list that is empty the second time it is iterated."""

    def __init__(self, *items: Any) -> None:
        super().__init__(items)
        self.reads = 0

    def __iter__(self) -> Any:
        self.reads += 1
        return iter(list.copy(self) if self.reads == 1 else [])


def test_what_is_checked_is_what_is_sent() -> None:
    """str subclasses are sent as their value and lists are read once: no bait and switch."""
    params = {
        "default_return_url": _Shifty("https://example.com/account"),
        "features": {
            "customer_update": {"enabled": True, "allowed_updates": _Twice("email")},
        },
        "metadata": {_Shifty("team"): _Shifty("billing")},
    }
    wire = decode_form(encode(guard_configuration_create(params)))
    assert wire["default_return_url"] == "https://example.com/account"
    assert wire["features"]["customer_update"]["allowed_updates"] == ["email"]
    assert wire["metadata"] == {"team": "billing"}
