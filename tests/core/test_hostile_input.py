"""Objects that change under inspection cannot inject parameters: what is sent is what was checked.

The guard judges a value, then the encoder writes it. A ``str`` subclass can
answer ``+`` (``__radd__``) or ``format`` differently from what the guard saw,
an ``int`` subclass can format itself as ``1&customer=cus_evil``, a list can
iterate differently the second time. The guard hands the encoder exact
builtin copies, made once, so the bytes on the wire are exactly the checked
values; a mapping that raises while it is read is a ValidationError.
"""

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from lattice_stripe import (
    Client,
    FlowData,
    SessionCreateParams,
    UpdateConfirmItem,
    ValidationError,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.codec import decode_form

RETURN_URL = "https://example.com/account"
INJECTED = "&customer=cus_evil&return_url=https%3A%2F%2Fevil.example"


class Shifty(str):
    """A string that is one thing when checked and another when written."""

    def __radd__(self, other: object) -> str:
        return f"{other}{str.__str__(self)}{INJECTED}"

    def __add__(self, other: object) -> str:
        return f"{str.__str__(self)}{INJECTED}{other}"

    def __format__(self, spec: str) -> str:
        return str.__str__(self) + INJECTED

    def __str__(self) -> str:
        return str.__str__(self) + INJECTED


class ShiftyInt(int):
    """An integer that formats itself as more parameters."""

    def __format__(self, spec: str) -> str:
        return f"{int(self)}{INJECTED}"

    def __str__(self) -> str:
        return f"{int(self)}{INJECTED}"

    __repr__ = __str__


class TwoFaced(list[Any]):
    """A list that shows valid entries once, then different ones."""

    def __init__(self, first: list[Any], then: list[Any]) -> None:
        super().__init__(first)
        self._then = then
        self._seen = False

    def __iter__(self) -> Iterator[Any]:
        if self._seen:
            return iter(self._then)
        self._seen = True
        return super().__iter__()


class Exploding(Mapping[str, object]):
    """A mapping that raises part-way through being read."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("backend gone")

    def __iter__(self) -> Iterator[str]:
        yield "customer"
        raise RuntimeError("backend gone")

    def __len__(self) -> int:
        return 2


@pytest.fixture
def fake() -> RecordingTransport:
    """A fake Stripe recording what is sent."""
    return RecordingTransport()


def sent(fake: RecordingTransport, params: object) -> dict[str, Any]:
    """Create a session with ``params`` and return the form the fake received, decoded."""
    with Client("sk_test_51HostileInput", transport=fake) as client:
        client.billing_portal.sessions.create(params)  # type: ignore[arg-type]
    body = fake.last_request.body
    assert b"evil" not in body
    return decode_form(body)


@pytest.mark.parametrize(
    "params",
    [
        {"customer": Shifty("cus_ok"), "return_url": Shifty(RETURN_URL)},
        {Shifty("customer"): "cus_ok", "return_url": RETURN_URL},
        SessionCreateParams(customer=Shifty("cus_ok"), return_url=Shifty(RETURN_URL)),
        {"customer": "cus_ok", "expand": [Shifty("flow")]},
    ],
    ids=["values", "key", "typed", "expand"],
)
def test_a_string_subclass_is_sent_as_the_string_that_was_checked(
    fake: RecordingTransport, params: object
) -> None:
    """__radd__, __add__, __format__ and __str__ overrides never reach the wire."""
    form = sent(fake, params)
    assert form["customer"] == "cus_ok"
    assert set(form) <= {"customer", "return_url", "expand"}


@pytest.mark.parametrize("typed", [False, True], ids=["mapping", "typed"])
def test_an_int_subclass_is_sent_as_the_number_that_was_checked(
    fake: RecordingTransport, typed: bool
) -> None:
    """An item quantity that formats itself as extra parameters is sent as its plain value."""
    quantity = ShiftyInt(3)
    params: object = (
        SessionCreateParams(
            customer="cus_ok",
            flow_data=FlowData.subscription_update_confirm(
                "sub_1", [UpdateConfirmItem(id="si_1", quantity=quantity)]
            ),
        )
        if typed
        else {
            "customer": "cus_ok",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_1",
                    "items": [{"id": "si_1", "quantity": quantity}],
                },
            },
        }
    )
    form = sent(fake, params)
    items = form["flow_data"]["subscription_update_confirm"]["items"]
    assert items == [{"id": "si_1", "quantity": "3"}]
    assert form["customer"] == "cus_ok"


def test_a_list_that_iterates_differently_the_second_time_is_read_once(
    fake: RecordingTransport,
) -> None:
    """The entries checked are the entries sent, whatever a second iteration would yield."""
    expand = TwoFaced(["configuration"], ["configuration", "x" * 6000])
    form = sent(fake, {"customer": "cus_ok", "expand": expand})
    assert form["expand"] == ["configuration"]


def test_a_mapping_raising_while_read_is_a_validation_error(fake: RecordingTransport) -> None:
    """A mapping that raises during iteration is refused naming the path; nothing is sent."""
    with Client("sk_test_51HostileInput", transport=fake) as client:
        with pytest.raises(ValidationError) as top:
            client.billing_portal.sessions.create(Exploding())
        with pytest.raises(ValidationError) as nested:
            client.billing_portal.sessions.create({"customer": "cus_ok", "flow_data": Exploding()})
    assert top.value.path == "params"
    assert nested.value.path == "flow_data"
    assert "could not be read" in str(nested.value)
    assert fake.requests == []


def _flow(flow_type: str, sub: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Session params with one flow: its sub-hash and its after_completion."""
    return {
        "customer": "cus_ok",
        "flow_data": {"type": flow_type, flow_type: sub, "after_completion": after},
        "after_expiration": {"type": "customer_login", "customer_login": {"expires_at": 10}},
    }


_REDIRECT = {"type": "redirect", "redirect": {"return_url": RETURN_URL}}
_HOSTED = {"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": "Thanks"}}
_CANCEL = {
    "subscription": "sub_1",
    "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE"}},
}
_CONFIRM = {
    "subscription": "sub_1",
    "items": [{"id": "si_1", "price": "price_1", "quantity": 2}],
    "discounts": [{"coupon": "SAVE"}],
}
# Every leaf of the mapping form, by its path from the top: each one is replaced by a
# hostile subclass of its own value in turn.
_LEAVES = [
    (_flow("subscription_cancel", _CANCEL, _REDIRECT), path)
    for path in (
        "customer",
        "flow_data.type",
        "flow_data.after_completion.type",
        "flow_data.after_completion.redirect.return_url",
        "flow_data.subscription_cancel.subscription",
        "flow_data.subscription_cancel.retention.type",
        "flow_data.subscription_cancel.retention.coupon_offer.coupon",
        "after_expiration.type",
        "after_expiration.customer_login.expires_at",
    )
] + [
    (_flow("subscription_update_confirm", _CONFIRM, _HOSTED), path)
    for path in (
        "flow_data.after_completion.hosted_confirmation.custom_message",
        "flow_data.subscription_update_confirm.subscription",
        "flow_data.subscription_update_confirm.items.0.id",
        "flow_data.subscription_update_confirm.items.0.price",
        "flow_data.subscription_update_confirm.items.0.quantity",
        "flow_data.subscription_update_confirm.discounts.0.coupon",
    )
]


@pytest.mark.parametrize(("params", "path"), _LEAVES, ids=[path for _, path in _LEAVES])
def test_every_leaf_of_a_mapping_is_sent_as_the_value_that_was_checked(
    fake: RecordingTransport, params: dict[str, Any], path: str
) -> None:
    """A hostile str or int subclass at any leaf sends the same form as the plain value."""
    params = copy.deepcopy(params)
    sent(fake, params)
    plain = fake.last_request.body
    node: Any = params
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    value = node[last]
    node[last] = ShiftyInt(value) if isinstance(value, int) else Shifty(value)
    sent(fake, params)
    assert fake.last_request.body == plain
