"""Fuzzing: arbitrary input to the guard and arbitrary bytes to the decoders.

The only outcomes allowed are the typed value or an error from the library's
own tree: never a KeyError, TypeError, RecursionError or UnicodeError.
"""

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lattice_stripe import ResponseDecodeError, Session, SessionCreateParams, StripeError
from lattice_stripe.core import codec
from lattice_stripe.core.codec import decode_session, encode_session_params
from lattice_stripe.core.errors import ValidationError, error_from_response
from lattice_stripe.core.guard import guard
from stripe_api import STRIPE_API

FIXTURE = STRIPE_API / "fixture_session.json"
GUARD_EXAMPLES = int(os.environ.get("LATTICE_GUARD_FUZZ_EXAMPLES", "10000"))

# Keys the guard knows, so that fuzzed mappings often reach its deeper rules.
_KNOWN_KEYS = [
    "customer", "customer_account", "return_url", "configuration", "locale", "on_behalf_of",
    "flow_data", "after_expiration", "expand", "type", "after_completion", "redirect",
    "hosted_confirmation", "custom_message", "subscription_cancel", "subscription_update",
    "subscription_update_confirm", "subscription_pause", "subscription", "retention",
    "coupon_offer", "coupon", "items", "id", "price", "quantity", "discounts",
    "promotion_code", "customer_login", "expires_at",
]  # fmt: skip
_KNOWN_VALUES = [
    "cus_abc123", "sub_1", "si_1", "price_1", "bpc_1", "acct_1", "en", "auto",
    "https://example.com/account", "http://localhost/x", "javascript:alert(1)",
    "subscription_cancel", "subscription_update_confirm", "payment_method_update",
    "customer_update", "subscription_pause", "subscription_update", "redirect",
    "hosted_confirmation", "portal_homepage", "coupon_offer", "customer_login",
]  # fmt: skip

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.binary(max_size=10)
    | st.sampled_from(_KNOWN_VALUES)
)
_keys = st.sampled_from(_KNOWN_KEYS) | st.text(max_size=10) | st.integers() | st.none()
_json_like = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=25,
)
_params = st.dictionaries(_keys, _json_like, max_size=6) | _json_like


@settings(
    max_examples=GUARD_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(params=_params)
def test_guard_accepts_or_raises_validation_error_only(params: Any) -> None:
    """Any nested data gives a checked SessionCreateParams that encodes, or a ValidationError."""
    try:
        checked = guard(params)
    except ValidationError as error:
        refusal: ValidationError | None = error
    else:
        refusal = None
        assert isinstance(checked, SessionCreateParams)
        assert encode_session_params(checked).isascii()
    if refusal is not None:
        assert str(refusal).startswith(refusal.path or "params")


def _fixture() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    return document


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(document=_json_values)
def test_decoder_takes_any_json(document: Any) -> None:
    """Arbitrary JSON decodes to a Session or raises ResponseDecodeError."""
    body = json.dumps(document).encode()
    try:
        assert isinstance(decode_session(body), Session)
    except ResponseDecodeError as error:
        failure: ResponseDecodeError | None = error
    else:
        failure = None
    assert failure is None or failure.status == 200


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=200))
def test_decoder_takes_any_bytes(body: bytes) -> None:
    """Arbitrary bytes never escape as anything but ResponseDecodeError."""
    try:
        assert isinstance(decode_session(body), Session)
    except ResponseDecodeError as error:
        failure: ResponseDecodeError | None = error
    else:
        failure = None
    assert failure is None or len(failure.body_prefix) <= 200


_paths = st.lists(st.sampled_from([*sorted(_fixture()), "flow", "after_completion"]), max_size=3)


def _replaced(path: list[str], value: Any) -> Any:
    """The fixture session with the field at ``path`` (as far as it nests) set to ``value``."""
    document: Any = _fixture()
    node = document
    for key in path[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            break
        node = child
    if path and isinstance(node, dict):
        node[path[-1]] = value
    return document


@settings(max_examples=1000, deadline=None)
@given(path=_paths, value=_json_values)
def test_decoder_takes_a_real_session_with_any_field_replaced(path: list[str], value: Any) -> None:
    """A real session with any (nested) field replaced by any JSON decodes or fails cleanly."""
    document = _replaced(path, value)
    try:
        session = decode_session(json.dumps(document).encode())
    except ResponseDecodeError:
        return
    assert session.object == "billing_portal.session"


@settings(max_examples=1000, deadline=None)
@given(path=_paths, value=_json_values)
def test_direct_decoder_takes_only_what_cattrs_takes_and_builds_the_same(
    path: list[str], value: Any
) -> None:
    """The direct Session decoder declines, or builds exactly cattrs' Session, extra included."""
    document = _replaced(path, value)
    direct = codec._direct(Session)(document)
    try:
        expected = codec._converter().structure(document, Session)
    except Exception:
        assert direct is codec._DECLINED
        return
    if direct is not codec._DECLINED:
        assert direct == expected
        assert direct.to_dict() == expected.to_dict()


@settings(max_examples=500, deadline=None)
@given(
    status=st.integers(min_value=300, max_value=599),
    body=st.binary(max_size=100) | _json_values.map(lambda v: json.dumps({"error": v}).encode()),
)
def test_error_mapping_takes_any_body(status: int, body: bytes) -> None:
    """Any error status and body maps to a StripeError subclass carrying that status."""
    error = error_from_response(status, body, request_id="req_1")
    assert isinstance(error, StripeError)
    assert error.status == status
