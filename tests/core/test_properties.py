"""Properties of generated params and sessions: valid input round-trips, invalid never sends."""

import copy
import json
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lattice_stripe import (
    AfterCompletion,
    AfterExpiration,
    Client,
    FlowData,
    Retention,
    SessionCreateParams,
    SubscriptionCancelFlow,
    SubscriptionUpdateConfirmFlow,
    UpdateConfirmDiscount,
    UpdateConfirmItem,
    ValidationError,
    guard,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.codec import (
    decode_form,
    decode_session,
    encode_form,
    encode_session_params,
    params_to_dict,
)
from lattice_stripe.core.expand import SESSION_EXPANDABLE
from stripe_api import STRIPE_API

LOCALES = sorted(
    line.strip() for line in (STRIPE_API / "locales.txt").read_text().splitlines() if line.strip()
)
ID_CHARS = string.ascii_letters + string.digits + "_"
# Pieces that form encoding must escape (or must not), drawn often so every run meets them.
URL_PIECES = ["a", "Z9", "-._~", "+", "%", "%2B", "&", "=", "?", "#", "@", ":", ";", ",", "!$'()*"]
TEXT_PIECES = [*URL_PIECES, " ", "[", "]", "[0]", "\n", "\\", "é", "ü", "€", "😀", "\u200b"]

Pair = tuple[Any, Any]
"""A valid parameter as a (mapping form, typed form) pair."""


# -- strategies for valid parameters -------------------------------------------------


def stripe_id(prefix: str) -> st.SearchStrategy[str]:
    return st.text(ID_CHARS, min_size=1, max_size=24).map(lambda tail: prefix + tail)


text = st.text(min_size=1, max_size=40) | st.lists(
    st.sampled_from(TEXT_PIECES), min_size=1, max_size=8
).map("".join)

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@st.composite
def https_urls(draw: st.DrawFn) -> str:
    host = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    port = draw(st.none() | st.integers(1, 65535))
    path = "".join(draw(st.lists(st.sampled_from([*URL_PIECES, "/"]), max_size=10)))
    return f"https://{host}{'' if port is None else f':{port}'}/{path}"


@st.composite
def after_completions(draw: st.DrawFn) -> Pair:
    kind = draw(st.sampled_from(["portal_homepage", "hosted_confirmation", "redirect"]))
    if kind == "portal_homepage":
        return {"type": kind}, AfterCompletion.portal_homepage()
    if kind == "redirect":
        url = draw(https_urls())
        return {"type": kind, "redirect": {"return_url": url}}, AfterCompletion.redirect(url)
    message = draw(st.none() | text | st.text(min_size=1, max_size=500))
    mapping: dict[str, Any] = {"type": kind}
    if message is not None:
        mapping["hosted_confirmation"] = {"custom_message": message}
    return mapping, AfterCompletion.hosted_confirmation(message)


@st.composite
def items(draw: st.DrawFn) -> Pair:
    item_id = draw(stripe_id("si_"))
    price = draw(st.none() | text)
    quantity = draw(st.integers(0, 10_000) if price is None else st.none() | st.integers(0, 10_000))
    mapping: dict[str, Any] = {"id": item_id}
    if price is not None:
        mapping["price"] = price
    if quantity is not None:
        mapping["quantity"] = quantity
    return mapping, UpdateConfirmItem(id=item_id, price=price, quantity=quantity)


@st.composite
def discounts(draw: st.DrawFn) -> Pair:
    key = draw(st.sampled_from(["coupon", "promotion_code"]))
    value = draw(text)
    return {key: value}, UpdateConfirmDiscount(**{key: value})


@st.composite
def flows(draw: st.DrawFn) -> Pair:
    flow_type = draw(
        st.sampled_from(
            [
                "payment_method_update",
                "customer_update",
                "subscription_cancel",
                "subscription_update",
                "subscription_update_confirm",
                "subscription_pause",
            ]
        )
    )
    completion = draw(st.none() | after_completions())
    mapping: dict[str, Any] = {"type": flow_type}
    after = None
    if completion is not None:
        mapping["after_completion"], after = completion
    typed: FlowData
    if flow_type == "payment_method_update":
        typed = FlowData.payment_method_update(after_completion=after)
    elif flow_type == "customer_update":
        typed = FlowData.customer_update(after_completion=after)
    else:
        subscription = draw(stripe_id("sub_"))
        sub: dict[str, Any] = {"subscription": subscription}
        mapping[flow_type] = sub
        if flow_type == "subscription_cancel":
            coupon = draw(st.none() | text)
            retention = None
            if coupon is not None:
                sub["retention"] = {"type": "coupon_offer", "coupon_offer": {"coupon": coupon}}
                retention = Retention.coupon_offer(coupon)
            typed = FlowData.subscription_cancel(
                subscription, retention=retention, after_completion=after
            )
        elif flow_type == "subscription_update_confirm":
            item_pairs = draw(st.lists(items(), min_size=1, max_size=1))
            discount_pairs = draw(st.none() | st.lists(discounts(), min_size=1, max_size=2))
            sub["items"] = [mapping for mapping, _ in item_pairs]
            if discount_pairs is not None:
                sub["discounts"] = [mapping for mapping, _ in discount_pairs]
            typed = FlowData.subscription_update_confirm(
                subscription,
                [item for _, item in item_pairs],
                discounts=None if discount_pairs is None else [d for _, d in discount_pairs],
                after_completion=after,
            )
        elif flow_type == "subscription_update":
            typed = FlowData.subscription_update(subscription, after_completion=after)
        else:
            typed = FlowData.subscription_pause(subscription, after_completion=after)
    return mapping, typed


@st.composite
def session_params(draw: st.DrawFn) -> tuple[dict[str, Any], SessionCreateParams]:
    """Valid parameters in both forms; absent optional fields are sometimes an explicit None."""
    mapping: dict[str, Any] = {}
    fields: dict[str, Any] = {}

    def optional(name: str, pair: Pair | None) -> None:
        if pair is None:
            if draw(st.booleans()):
                mapping[name] = None
            return
        mapping[name], fields[name] = pair

    def same(value: Any) -> Pair | None:
        return None if value is None else (value, value)

    owner = draw(st.sampled_from(["customer", "customer_account"]))
    owner_id = draw(stripe_id("cus_" if owner == "customer" else "acct_"))
    mapping[owner] = fields[owner] = owner_id
    optional("return_url", same(draw(st.none() | https_urls())))
    optional("configuration", same(draw(st.none() | stripe_id("bpc_"))))
    optional("locale", same(draw(st.none() | st.sampled_from(LOCALES))))
    optional("on_behalf_of", same(draw(st.none() | stripe_id("acct_"))))
    optional("flow_data", draw(st.none() | flows()))
    expiration = None
    if draw(st.booleans()):
        expires_at = draw(st.none() | st.integers(1, 2**40))
        after: dict[str, Any] = {"type": "customer_login"}
        if expires_at is not None:
            after["customer_login"] = {"expires_at": expires_at}
        expiration = (after, AfterExpiration.customer_login(expires_at))
    optional("after_expiration", expiration)
    expand = draw(
        st.none() | st.lists(st.sampled_from(sorted(SESSION_EXPANDABLE)), min_size=1, max_size=3)
    )
    optional("expand", None if expand is None else (expand, tuple(expand)))
    return mapping, SessionCreateParams(**fields)


# -- helpers written here, independent of the codec --------------------------------


def drop_none(value: Any) -> Any:
    """The value as Stripe's docs show it: None dropped, tuples as lists."""
    if isinstance(value, dict):
        return {key: drop_none(inner) for key, inner in value.items() if inner is not None}
    if isinstance(value, (list, tuple)):
        return [drop_none(inner) for inner in value]
    return value


def stringified(value: Any) -> Any:
    """What a form body can carry: every scalar as a string."""
    if isinstance(value, dict):
        return {key: stringified(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [stringified(inner) for inner in value]
    return str(value)


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested data from ``a[b][0][c]=v`` pairs: all-digit keys become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, *rest = key.split("[")
        parts = [head, *(part.removesuffix("]") for part in rest)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        assert parts[-1] not in node, f"duplicate form key {key!r}"
        node[parts[-1]] = value
    nested: dict[str, Any] = listify(root)
    return nested


def listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if value and all(key.isdigit() for key in value):
        assert sorted(map(int, value)) == list(range(len(value)))
        return [listify(value[str(index)]) for index in range(len(value))]
    return {key: listify(inner) for key, inner in value.items()}


def reversed_order(value: Any) -> Any:
    """The same data with every mapping's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {key: reversed_order(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_order(inner) for inner in value]
    return value


# -- valid parameters --------------------------------------------------------------


@given(session_params())
def test_valid_params_pass_and_both_forms_agree(pair: tuple[dict[str, Any], Any]) -> None:
    """Valid parameters always pass; the mapping parses into exactly the typed value."""
    mapping, typed = pair
    assert guard(mapping) == typed
    assert guard(typed) is typed


@given(session_params())
def test_params_to_dict_is_the_mapping_form(pair: tuple[dict[str, Any], Any]) -> None:
    """params_to_dict gives back the documented nested mapping, None dropped."""
    mapping, typed = pair
    assert params_to_dict(guard(mapping)) == drop_none(mapping)
    assert params_to_dict(typed) == drop_none(mapping)


@given(session_params())
def test_form_body_round_trips(pair: tuple[dict[str, Any], Any]) -> None:
    """parse_qsl plus an independent unflatten of the body gives params_to_dict, stringified."""
    mapping, typed = pair
    checked = guard(mapping)
    body = encode_session_params(checked)
    assert body.isascii()
    pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert unflatten(pairs) == stringified(params_to_dict(checked))
    assert encode_session_params(typed) == body


@given(session_params())
def test_session_encoder_agrees_with_generic_encoder(pair: tuple[dict[str, Any], Any]) -> None:
    """encode_session_params and encode_form(params_to_dict(...)) decode to the same data."""
    checked = guard(pair[0])
    generic = encode_form(params_to_dict(checked))
    assert decode_form(encode_session_params(checked)) == decode_form(generic)


@given(session_params())
def test_encoding_ignores_key_order(pair: tuple[dict[str, Any], Any]) -> None:
    """Mappings with the same content in any key order encode to identical bytes."""
    mapping, _ = pair
    reordered = reversed_order(mapping)
    assert encode_session_params(guard(reordered)) == encode_session_params(guard(mapping))


@given(session_params())
def test_client_sends_exactly_the_params(pair: tuple[dict[str, Any], Any]) -> None:
    """Through a Client, the fake records the caller's parameters (as strings) and echoes them."""
    mapping, typed = pair
    fake = RecordingTransport(clock=lambda: 1_700_000_000.0)
    client = Client("sk_test_property0", transport=fake)
    session = client.billing_portal.sessions.create(mapping)
    assert fake.last_request.params == stringified(drop_none(mapping))
    assert session.customer == typed.customer
    assert session.customer_account == typed.customer_account
    assert session.return_url == typed.return_url
    assert (session.flow is None) == (typed.flow_data is None)
    if typed.flow_data is not None:
        assert session.flow is not None
        assert session.flow.type == typed.flow_data.type


# -- invalid mutations -------------------------------------------------------------

Slot = tuple[Any, Any]
"""A place in the tree: (container, key or index)."""


def slots(node: Any) -> list[Slot]:
    """Every (container, key) whose value is not None, depth first."""
    found: list[Slot] = []
    entries = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in entries:
        if value is None:
            continue
        found.append((node, key))
        if isinstance(value, (dict, list)):
            found.extend(slots(value))
    return found


def mappings(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node] + [c[k] for c, k in slots(node) if isinstance(c[k], dict)]


def required_slots(params: dict[str, Any]) -> list[Slot]:
    """Every key whose removal Stripe refuses."""
    owner = "customer" if params.get("customer") is not None else "customer_account"
    found: list[Slot] = [(params, owner)]
    flow = params.get("flow_data")
    if flow is not None:
        found.append((flow, "type"))
        sub = flow.get(flow["type"])
        if sub is not None:
            found += [(flow, flow["type"]), (sub, "subscription")]
            if "items" in sub:
                found.append((sub, "items"))
                found += [(item, "id") for item in sub["items"]]
            for discount in sub.get("discounts") or ():
                found += [(discount, key) for key in discount]
            retention = sub.get("retention")
            if retention is not None:
                found += [(retention, "type"), (retention, "coupon_offer")]
                found.append((retention["coupon_offer"], "coupon"))
        completion = flow.get("after_completion")
        if completion is not None:
            found.append((completion, "type"))
            if completion["type"] == "redirect":
                found += [(completion, "redirect"), (completion["redirect"], "return_url")]
    expiration = params.get("after_expiration")
    if expiration is not None:
        found.append((expiration, "type"))
    return found


def enum_slots(params: dict[str, Any]) -> list[Slot]:
    """Every enum-valued key, plus the top-level locale (added if absent)."""
    found: list[Slot] = [(params, "locale")]
    found += [(c, k) for c, k in slots(params) if k == "type"]
    return found


def string_slots(params: dict[str, Any]) -> list[Slot]:
    return [(c, k) for c, k in slots(params) if isinstance(c[k], str)]


def swapped(value: Any) -> Any:
    """A value of another JSON type than ``value``."""
    if isinstance(value, str):
        return 7
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return [value]
    return "x"


MUTATIONS = ["drop required", "unknown key", "swap type", "non-str key", "bad enum", "too long"]


@st.composite
def invalid_params(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid mapping broken by exactly one mutation of the given kind."""
    params = copy.deepcopy(draw(session_params())[0])
    if kind == "drop required":
        container, key = draw(st.sampled_from(required_slots(params)))
        del container[key]
    elif kind == "unknown key":
        target = draw(st.sampled_from(mappings(params)))
        target[draw(st.sampled_from(["zz_unknown", "customerr", "url", "Type"]))] = "x"
    elif kind == "swap type":
        by_type: dict[type, list[Slot]] = {}
        for container, key in slots(params):
            by_type.setdefault(type(container[key]), []).append((container, key))
        container, key = draw(st.sampled_from(draw(st.sampled_from(list(by_type.values())))))
        container[key] = swapped(container[key])
    elif kind == "non-str key":
        target = draw(st.sampled_from(mappings(params)))
        target[draw(st.sampled_from([1, b"customer", None, ("type",), 2.5]))] = "x"
    elif kind == "bad enum":
        container, key = draw(st.sampled_from(enum_slots(params)))
        container[key] = draw(st.sampled_from(["bogus", "EN", "coupon-offer", "redirect "]))
    else:
        container, key = draw(st.sampled_from(string_slots(params)))
        container[key] = container[key] + "a" * 5001
    return params


@pytest.mark.parametrize("kind", MUTATIONS)
@given(data=st.data())
def test_invalid_mutations_are_refused_and_nothing_is_sent(kind: str, data: st.DataObject) -> None:
    """Any single breaking mutation raises ValidationError; the fake records no request."""
    params = data.draw(invalid_params(kind))
    fake = RecordingTransport()
    client = Client("sk_test_property0", transport=fake)
    with pytest.raises(ValidationError) as info:
        client.billing_portal.sessions.create(params)
    assert info.value.path
    assert fake.requests == []


def typed_mutations(params: SessionCreateParams) -> list[Callable[[], SessionCreateParams]]:
    """Ways to break typed parameters, each applicable to ``params``."""
    evolve = attrs.evolve
    found: list[Callable[[], SessionCreateParams]] = [
        lambda: evolve(params, locale="xx"),
        lambda: evolve(params, return_url="http://example.com/"),
        lambda: evolve(params, expand=("",)),
        lambda: evolve(params, expand=(*params.expand, "customer")),
        lambda: evolve(params, after_expiration=AfterExpiration(expires_at=0)),
        lambda: evolve(params, customer=123, customer_account=None),
        lambda: evolve(params, customer="a@b.example", customer_account=None),
        lambda: evolve(params, customer="cus_1", customer_account="acct_1"),
        lambda: evolve(params, customer=None, customer_account=None),
        lambda: evolve(params, configuration="c" * 5001),
    ]
    flow = params.flow_data
    if flow is not None:
        found.append(
            lambda: evolve(
                params,
                flow_data=evolve(flow, after_completion=AfterCompletion(type="bogus")),  # type: ignore[arg-type]
            )
        )
        if hasattr(flow, "subscription"):
            found.append(lambda: evolve(params, flow_data=evolve(flow, subscription=None)))
        if isinstance(flow, SubscriptionUpdateConfirmFlow):
            found.append(lambda: evolve(params, flow_data=evolve(flow, items=())))
            found.append(lambda: evolve(params, flow_data=evolve(flow, items=set(flow.items))))
            found.append(lambda: evolve(params, flow_data=evolve(flow, items=flow.items * 2)))
            found.append(
                lambda: evolve(
                    params,
                    flow_data=evolve(
                        flow, items=(evolve(flow.items[0], price=None, quantity=None),)
                    ),
                )
            )
        if isinstance(flow, SubscriptionCancelFlow):
            found.append(
                lambda: evolve(params, flow_data=evolve(flow, retention=Retention(coupon="")))
            )
    return found


@given(session_params(), st.data())
def test_invalid_typed_params_are_refused(
    pair: tuple[dict[str, Any], SessionCreateParams], data: st.DataObject
) -> None:
    """Broken typed parameters raise ValidationError and send nothing, like mappings."""
    mutate = data.draw(st.sampled_from(typed_mutations(pair[1])))
    fake = RecordingTransport()
    client = Client("sk_test_property0", transport=fake)
    with pytest.raises(ValidationError):
        client.billing_portal.sessions.create(mutate())
    assert fake.requests == []


# -- sessions never print their URL ------------------------------------------------

any_text = st.text(max_size=30)
SHOWN = (
    "id",
    "configuration",
    "customer",
    "customer_account",
    "return_url",
    "locale",
    "on_behalf_of",
)


@st.composite
def session_documents(draw: st.DrawFn) -> dict[str, Any]:
    host = draw(st.text(min_size=1, max_size=20))
    secret = draw(st.text(min_size=1, max_size=60))
    url = f"https://{host}/p/session/{secret}"
    document: dict[str, Any] = {
        "id": draw(any_text),
        "object": "billing_portal.session",
        "url": url,
        "created": draw(st.integers(0, 2**40)),
        "livemode": draw(st.booleans()),
        "configuration": draw(any_text),
        "customer": draw(st.none() | any_text),
        "customer_account": draw(st.none() | any_text),
        "return_url": draw(st.none() | any_text),
        "locale": draw(st.none() | any_text),
        "on_behalf_of": draw(st.none() | any_text),
        "flow": draw(
            st.none()
            | st.just(
                {
                    "type": "payment_method_update",
                    "after_completion": {"type": "redirect", "redirect": {"return_url": url}},
                }
            )
        ),
    }
    if draw(st.booleans()):
        document["url_added_later"] = url
    return document


@given(session_documents())
def test_session_repr_never_contains_its_url(document: dict[str, Any]) -> None:
    """repr and str of any decoded session, unicode URLs included, never contain the URL."""
    session = decode_session(json.dumps(document).encode())
    url = session.url
    assume(not any(isinstance(document[key], str) and url in document[key] for key in SHOWN))
    escaped = repr(url)[1:-1]
    for text_form in (repr(session), str(session), f"{session}"):
        assert url not in text_form
        assert escaped not in text_form
