"""Stripe's wire formats: the form body we send and the session JSON we read back."""

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from lattice_stripe import Configuration, ResponseDecodeError, Session, guard
from lattice_stripe.core import codec
from lattice_stripe.core.codec import (
    decode_form,
    decode_session,
    encode_form,
    encode_session_params,
)
from stripe_api import STRIPE_API

FIXTURES = ["fixture_session.json", "fixture_session.stripe-openapi.json"]


def fixture_document(name: str = "fixture_session.json") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((STRIPE_API / name).read_text())
    return document


def encode(params: Mapping[str, object]) -> str:
    return encode_session_params(guard(params)).decode("ascii")


def is_contained(expected: Any, actual: Any) -> bool:
    """True when every key of ``expected`` (recursively) is in ``actual`` with an equal value."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and is_contained(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(is_contained(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


# -- form encoding -----------------------------------------------------------------


def test_encode_session_params_writes_stripe_form_body() -> None:
    """A confirm flow encodes to the exact body Stripe's form rules give, written by hand."""
    body = encode(
        {
            "customer": "cus_abc123",
            "return_url": "https://example.com/account?tab=billing",
            "locale": "fr-CA",
            "flow_data": {
                "type": "subscription_update_confirm",
                "after_completion": {
                    "type": "redirect",
                    "redirect": {"return_url": "https://example.com/done"},
                },
                "subscription_update_confirm": {
                    "subscription": "sub_1",
                    "items": [{"id": "si_1", "price": "price_2", "quantity": 3}],
                    "discounts": [{"coupon": "SAVE 10%"}],
                },
            },
            "expand": ["configuration"],
        }
    )
    confirm = "flow_data%5Bsubscription_update_confirm%5D"
    assert body.split("&") == [
        "customer=cus_abc123",
        "return_url=https%3A%2F%2Fexample.com%2Faccount%3Ftab%3Dbilling",
        "locale=fr-CA",
        "flow_data%5Btype%5D=subscription_update_confirm",
        "flow_data%5Bafter_completion%5D%5Btype%5D=redirect",
        "flow_data%5Bafter_completion%5D%5Bredirect%5D%5Breturn_url%5D="
        "https%3A%2F%2Fexample.com%2Fdone",
        f"{confirm}%5Bsubscription%5D=sub_1",
        f"{confirm}%5Bitems%5D%5B0%5D%5Bid%5D=si_1",
        f"{confirm}%5Bitems%5D%5B0%5D%5Bprice%5D=price_2",
        f"{confirm}%5Bitems%5D%5B0%5D%5Bquantity%5D=3",
        f"{confirm}%5Bdiscounts%5D%5B0%5D%5Bcoupon%5D=SAVE%2010%25",
        "expand%5B0%5D=configuration",
    ]


def test_encode_session_params_percent_encodes_unicode_as_utf8() -> None:
    """Non-ASCII text is sent as UTF-8 percent-escapes; retention and expiry nest as documented."""
    body = encode(
        {
            "customer_account": "acct_1",
            "on_behalf_of": "acct_2",
            "configuration": "bpc_3",
            "flow_data": {
                "type": "subscription_cancel",
                "after_completion": {
                    "type": "hosted_confirmation",
                    "hosted_confirmation": {"custom_message": "Merci, à bientôt !"},
                },
                "subscription_cancel": {
                    "subscription": "sub_9",
                    "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE25"}},
                },
            },
            "after_expiration": {
                "type": "customer_login",
                "customer_login": {"expires_at": 1800000000},
            },
        }
    )
    assert body == (
        "customer_account=acct_1"
        "&configuration=bpc_3"
        "&on_behalf_of=acct_2"
        "&flow_data%5Btype%5D=subscription_cancel"
        "&flow_data%5Bafter_completion%5D%5Btype%5D=hosted_confirmation"
        "&flow_data%5Bafter_completion%5D%5Bhosted_confirmation%5D%5Bcustom_message%5D="
        "Merci%2C%20%C3%A0%20bient%C3%B4t%20%21"
        "&flow_data%5Bsubscription_cancel%5D%5Bsubscription%5D=sub_9"
        "&flow_data%5Bsubscription_cancel%5D%5Bretention%5D%5Btype%5D=coupon_offer"
        "&flow_data%5Bsubscription_cancel%5D%5Bretention%5D%5Bcoupon_offer%5D%5Bcoupon%5D=SAVE25"
        "&after_expiration%5Btype%5D=customer_login"
        "&after_expiration%5Bcustomer_login%5D%5Bexpires_at%5D=1800000000"
    )


def test_encoding_order_does_not_depend_on_mapping_order() -> None:
    """The same parameters in any key order give byte-identical bodies."""
    forward = {
        "customer": "cus_1",
        "return_url": "https://example.com/",
        "locale": "de",
        "flow_data": {
            "type": "subscription_update",
            "after_completion": {"type": "portal_homepage"},
            "subscription_update": {"subscription": "sub_1"},
        },
    }
    backward = {
        "flow_data": {
            "subscription_update": {"subscription": "sub_1"},
            "after_completion": {"type": "portal_homepage"},
            "type": "subscription_update",
        },
        "locale": "de",
        "return_url": "https://example.com/",
        "customer": "cus_1",
    }
    assert encode(forward) == encode(backward)
    assert encode(forward) == encode(forward)


def test_none_values_are_dropped() -> None:
    """Optional parameters given as None are left out of the body entirely."""
    body = encode(
        {
            "customer": "cus_1",
            "return_url": None,
            "locale": None,
            "configuration": None,
            "flow_data": None,
            "after_expiration": None,
            "expand": None,
        }
    )
    assert body == "customer=cus_1"


def test_encode_form_booleans_lists_and_none() -> None:
    """encode_form writes true/false, a[0][k] for lists of mappings, and drops None."""
    body = encode_form(
        {
            "enabled": True,
            "archived": False,
            "items": [{"id": "si_1"}, {"id": "si_2", "quantity": 2}],
            "gone": None,
            "nested": {"skip": None, "text": "a b&c=d"},
            "tags": ["x", "y"],
        }
    )
    assert body.decode("ascii").split("&") == [
        "enabled=true",
        "archived=false",
        "items%5B0%5D%5Bid%5D=si_1",
        "items%5B1%5D%5Bid%5D=si_2",
        "items%5B1%5D%5Bquantity%5D=2",
        "nested%5Btext%5D=a%20b%26c%3Dd",
        "tags%5B0%5D=x",
        "tags%5B1%5D=y",
    ]


def test_decode_form_reads_a_hand_written_body() -> None:
    """decode_form nests a[b] and a[0][k], reads '+' as a space and keeps values as strings."""
    body = "a%5B0%5D%5Bk%5D=v&a[1][k]=w&b=x+y&c[d][e]=%C3%BC&n=3&empty="
    assert decode_form(body) == {
        "a": [{"k": "v"}, {"k": "w"}],
        "b": "x y",
        "c": {"d": {"e": "ü"}},
        "n": "3",
        "empty": "",
    }


def test_decode_form_inverts_encode_form() -> None:
    """decode_form(encode_form(x)) gives x back, with scalars as strings and None dropped."""
    data = {
        "customer": "cus_1",
        "flow_data": {
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "items": [{"id": "si_1", "quantity": 2}, {"id": "si_2", "price": "p & q"}],
                "discounts": None,
            },
        },
        "flag": True,
        "message": "ünïcødé / ? # [brackets]",
    }
    assert decode_form(encode_form(data)) == {
        "customer": "cus_1",
        "flow_data": {
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "items": [{"id": "si_1", "quantity": "2"}, {"id": "si_2", "price": "p & q"}],
            },
        },
        "flag": "true",
        "message": "ünïcødé / ? # [brackets]",
    }


@pytest.mark.parametrize("body", ["a[1]=x", "a=1&a[b]=2", "a[0]=1&a[x]=2"])
def test_decode_form_refuses_contradictory_keys(body: str) -> None:
    """Sparse list indices or a key nesting inside a plain value are a ValueError."""
    with pytest.raises(ValueError, match="form key"):
        decode_form(body)


# -- decoding sessions -------------------------------------------------------------


def test_decode_stripe_mock_fixture() -> None:
    """stripe-mock's billing_portal.session fixture decodes field by field."""
    document = fixture_document()
    session = decode_session(json.dumps(document).encode())
    assert session.id == "bps_1Pgc7HB7WZ01zgkWNs8s9Auh"
    assert session.object == "billing_portal.session"
    assert session.url == document["url"]
    assert session.created == 1234567890
    assert session.livemode is True
    assert session.configuration == "bpc_1Pgc7HB7WZ01zgkWxH2EPWRX"
    assert session.customer == "cus_QXg1o8vcGmoR32"
    assert session.customer_account is None
    assert session.return_url == "https://example.com/account"
    assert session.locale is None
    assert session.on_behalf_of is None
    assert session.after_expiration is None
    flow = session.flow
    assert flow is not None
    assert flow.type == "subscription_update"
    assert flow.after_completion.type == "hosted_confirmation"
    assert flow.after_completion.hosted_confirmation is not None
    assert flow.after_completion.hosted_confirmation.custom_message is None
    assert flow.after_completion.redirect is not None
    assert flow.after_completion.redirect.return_url == "return_url"
    assert flow.subscription_cancel is not None
    assert flow.subscription_cancel.retention is not None
    assert flow.subscription_cancel.retention.type == "coupon_offer"
    assert flow.subscription_cancel.retention.coupon_offer is not None
    assert flow.subscription_cancel.retention.coupon_offer.coupon == "coupon"
    assert flow.subscription_update is not None
    assert flow.subscription_update.subscription == "subscription"
    confirm = flow.subscription_update_confirm
    assert confirm is not None
    assert confirm.discounts is None
    assert len(confirm.items) == 1
    assert confirm.items[0].id is None
    assert confirm.items[0].price is None
    assert flow.subscription_pause is None
    assert flow.customer_update is None


@pytest.mark.parametrize("name", FIXTURES)
def test_fixtures_round_trip_through_to_dict(name: str) -> None:
    """Every field of both published fixtures comes back from to_dict() unchanged."""
    document = fixture_document(name)
    session = decode_session(json.dumps(document).encode())
    assert is_contained(document, session.to_dict())
    assert session.extra == {}


def test_openapi_fixture_has_customer_account() -> None:
    """The stripe/openapi fixture's customer_account (null) decodes without landing in extra."""
    session = decode_session((STRIPE_API / FIXTURES[1]).read_bytes())
    assert session.customer_account is None
    assert "customer_account" not in session.extra


def full_document() -> dict[str, Any]:
    """A session with every nested object present, per the 2026-10-28.endive schema."""
    document = fixture_document()
    document["flow"]["subscription_update_confirm"] = {
        "subscription": "sub_1",
        "items": [{"id": "si_1", "price": "price_1", "quantity": 2}],
        "discounts": [{"coupon": "SAVE", "promotion_code": None}],
    }
    document["flow"]["subscription_pause"] = {"subscription": "sub_2"}
    document["flow"]["customer_update"] = {}
    document["after_expiration"] = {"type": "customer_login", "customer_login": {"expires_at": 5}}
    document["configuration"] = {
        "id": "bpc_1",
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {"headline": None, "privacy_policy_url": None},
        "created": 1,
        "default_return_url": None,
        "features": {"invoice_history": {"enabled": True}},
        "is_default": True,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": {},
        "name": None,
        "updated": 2,
    }
    return document


def objects_in(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every response object of the full document, by its dotted path."""
    flow = document["flow"]
    confirm = flow["subscription_update_confirm"]
    cancel = flow["subscription_cancel"]
    return [
        ("", document),
        ("flow", flow),
        ("flow.after_completion", flow["after_completion"]),
        ("flow.after_completion.redirect", flow["after_completion"]["redirect"]),
        (
            "flow.after_completion.hosted_confirmation",
            flow["after_completion"]["hosted_confirmation"],
        ),
        ("flow.subscription_cancel", cancel),
        ("flow.subscription_cancel.retention", cancel["retention"]),
        ("flow.subscription_cancel.retention.coupon_offer", cancel["retention"]["coupon_offer"]),
        ("flow.subscription_update", flow["subscription_update"]),
        ("flow.subscription_update_confirm", confirm),
        ("flow.subscription_update_confirm.items.0", confirm["items"][0]),
        ("flow.subscription_update_confirm.discounts.0", confirm["discounts"][0]),
        ("flow.subscription_pause", flow["subscription_pause"]),
        ("flow.customer_update", flow["customer_update"]),
        ("configuration", document["configuration"]),
        ("after_expiration", document["after_expiration"]),
    ]


def value_at(root: Any, dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def test_unknown_keys_are_kept_in_extra_at_every_level() -> None:
    """A field Stripe adds to any object lands in that object's extra and back in to_dict()."""
    document = full_document()
    for path, obj in objects_in(document):
        obj["added_later"] = {"path": path, "list": [1, None]}
    session = decode_session(json.dumps(document).encode())
    for path, _ in objects_in(document):
        value = value_at(session, path)
        assert dict(value.extra) == {"added_later": {"path": path, "list": [1, None]}}, path
    assert is_contained(document, session.to_dict())


def test_extra_is_read_only() -> None:
    """extra is a read-only view: a decoded session cannot be altered through it."""
    document = fixture_document()
    document["added_later"] = 1
    session = decode_session(json.dumps(document).encode())
    with pytest.raises(TypeError):
        session.extra["added_later"] = 2  # type: ignore[index]


def test_configuration_as_id() -> None:
    """An unexpanded configuration stays its bpc_ ID string."""
    session = decode_session((STRIPE_API / FIXTURES[0]).read_bytes())
    assert session.configuration == "bpc_1Pgc7HB7WZ01zgkWxH2EPWRX"


@pytest.mark.parametrize(
    "application", [None, "ca_123", {"id": "ca_123", "object": "application", "name": None}]
)
def test_configuration_expanded(application: object) -> None:
    """An expanded configuration decodes to a Configuration; application as null, ID or object."""
    document = full_document()
    document["configuration"]["application"] = application
    session = decode_session(json.dumps(document).encode())
    configuration = session.configuration
    assert isinstance(configuration, Configuration)
    assert configuration.id == "bpc_1"
    assert configuration.active is True
    assert configuration.is_default is True
    assert configuration.created == 1
    assert configuration.updated == 2
    assert configuration.features.invoice_history is not None
    assert configuration.features.invoice_history.enabled is True
    assert configuration.features.subscription_cancel is None
    assert configuration.login_page.enabled is False
    assert configuration.login_page.url is None
    assert configuration.application == application


def test_full_document_decodes_new_flow_objects() -> None:
    """subscription_pause, customer_update, after_expiration and item quantities decode."""
    session = decode_session(json.dumps(full_document()).encode())
    assert session.flow is not None
    assert session.flow.subscription_pause is not None
    assert session.flow.subscription_pause.subscription == "sub_2"
    assert session.flow.customer_update is not None
    confirm = session.flow.subscription_update_confirm
    assert confirm is not None
    assert confirm.items[0].quantity == 2
    assert confirm.discounts is not None
    assert confirm.discounts[0].coupon == "SAVE"
    assert session.after_expiration is not None
    assert session.after_expiration.customer_login == {"expires_at": 5}


Mutation = Callable[[dict[str, Any]], None]


def without(key: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document[key]

    return mutate


def setting(path: str, value: object) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (without("url"), "$.url"),
        (without("id"), "$.id"),
        (without("created"), "$.created"),
        (without("livemode"), "$.livemode"),
        (without("configuration"), "$.configuration"),
        (setting("url", 5), "$.url"),
        (setting("url", None), "$.url"),
        (setting("created", "1234567890"), "$.created"),
        (setting("created", True), "$.created"),
        (setting("created", 1.5), "$.created"),
        (setting("livemode", "true"), "$.livemode"),
        (setting("livemode", 1), "$.livemode"),
        (setting("customer", 7), "$.customer"),
        (setting("return_url", {"url": "x"}), "$.return_url"),
        (setting("configuration", 5), "$.configuration"),
        (setting("configuration", {"object": "billing_portal.configuration"}), "$.configuration"),
        (
            setting("configuration", {**full_document()["configuration"], "metadata": []}),
            "$.configuration.metadata",
        ),
        (setting("flow", []), "$.flow"),
        (setting("flow", "subscription_update"), "$.flow"),
        (setting("flow.type", None), "$.flow.type"),
        (setting("flow.after_completion", None), "$.flow.after_completion"),
        (setting("flow.subscription_update_confirm.items", None), "$.flow"),
        (setting("flow.subscription_update_confirm.items", {"id": "si_1"}), "$.flow"),
        (setting("flow.subscription_update_confirm.items", "si_1"), "$.flow"),
        (setting("flow.subscription_update_confirm.items.0.quantity", 1.5), "$.flow"),
        (setting("flow.subscription_update_confirm.items.0", "si_1"), "$.flow"),
        (setting("flow.subscription_cancel.retention", []), "$.flow.subscription_cancel"),
        (setting("after_expiration", {"customer_login": {}}), "$.after_expiration"),
        (setting("after_expiration", {"type": "customer_login", "customer_login": 5}), "$.after"),
    ],
)
def test_malformed_sessions_raise_response_decode_error(mutate: Mutation, where: str) -> None:
    """A missing field or wrong type is a ResponseDecodeError naming where, never a crash."""
    document = fixture_document()
    url = document["url"]
    mutate(document)
    with pytest.raises(ResponseDecodeError) as info:
        decode_session(json.dumps(document).encode(), status=200, request_id="req_123")
    error = info.value
    assert error.status == 200
    assert error.request_id == "req_123"
    assert where in error.message
    assert url not in str(error)
    assert url not in error.body_prefix


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b'{"id": "bps_1", "object": "billing_portal.ses', "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "got list"),
        (b"null", "got NoneType"),
        (b'"billing_portal.session"', "got str"),
        (b"42", "got int"),
        (b'{"object": "customer", "id": "cus_1"}', "'object'"),
        (b'{"id": "bps_1"}', "'object'"),
    ],
)
def test_non_session_bodies_raise_response_decode_error(body: bytes, reason: str) -> None:
    """Non-JSON, non-object or non-session bodies keep the status and the first bytes."""
    with pytest.raises(ResponseDecodeError) as info:
        decode_session(body, status=201, request_id="req_abc", idempotency_key="key-1")
    error = info.value
    assert reason in error.message
    assert error.status == 201
    assert error.request_id == "req_abc"
    assert error.idempotency_key == "key-1"
    assert error.body_prefix == body[:200].decode("utf-8", "replace")
    assert "body starts" in str(error)


def test_body_prefix_is_bounded_and_scrubbed() -> None:
    """Only the first 200 bytes are kept, with portal URLs and keys scrubbed out."""
    secret_url = "https://billing.stripe.com/p/session/test_YWNjdF8xTXNlY3JldA"
    body = ('{"url": "' + secret_url + '", "key": "sk_live_abcdef123456", "pad": "').encode()
    body += b"x" * 1000
    with pytest.raises(ResponseDecodeError) as info:
        decode_session(body, status=200)
    error = info.value
    assert secret_url not in str(error)
    assert "sk_live_abcdef123456" not in str(error)
    assert "test_YWNjdF8xTXNlY3JldA" not in error.body_prefix
    assert len(error.body_prefix) <= 200


def test_decoded_session_is_a_session() -> None:
    """decode_session returns the public Session type, equal for equal bodies."""
    body = (STRIPE_API / FIXTURES[0]).read_bytes()
    first, second = decode_session(body), decode_session(body)
    assert isinstance(first, Session)
    assert first == second
    assert first is not second


def test_decode_form_reads_empty_brackets_as_appends() -> None:
    """``expand[]=a&expand[]=b``, as some clients send lists, decodes to a list in order."""
    assert decode_form(b"expand[]=flow&expand[]=configuration") == {
        "expand": ["flow", "configuration"]
    }


def test_non_ascii_utf8_body_decodes_intact() -> None:
    """A UTF-8 body with non-ASCII text (raw, not \\u-escaped) decodes with the text intact."""
    document = fixture_document()
    document["return_url"] = "https://example.com/compte/réglages"
    document["extra_note"] = "Zürich 東京"
    session = decode_session(json.dumps(document, ensure_ascii=False).encode("utf-8"))
    assert session.return_url == "https://example.com/compte/réglages"
    assert session.extra["extra_note"] == "Zürich 東京"


def test_utf16_body_is_a_decode_error() -> None:
    """A body in another encoding than UTF-8 is a ResponseDecodeError, not a decoding crash."""
    body = json.dumps(fixture_document()).encode("utf-16")
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        decode_session(body, status=200)


@pytest.mark.parametrize("make", [lambda: fixture_document(FIXTURES[1]), full_document])
def test_well_formed_documents_take_the_direct_decoder(make: Callable[[], Any]) -> None:
    """A session of the usual shape, expanded configuration included, skips cattrs' dispatch."""
    document = make()
    direct = codec._direct(Session)(document)
    assert direct is not codec._DECLINED
    assert direct.to_dict() == codec._converter().structure(document, Session).to_dict()
    assert is_contained(document, direct.to_dict())
