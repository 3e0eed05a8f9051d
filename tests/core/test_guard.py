"""The pre-flight guard: one test per rule, each pinning the exact path and the fix it names."""

from collections.abc import Mapping
from typing import Any

import pytest

from lattice_stripe import (
    AfterCompletion,
    AfterExpiration,
    FlowData,
    Retention,
    SessionCreateParams,
    SubscriptionUpdateConfirmFlow,
    UpdateConfirmDiscount,
    UpdateConfirmItem,
    ValidationError,
    guard,
)
from lattice_stripe.core.expand import SESSION_EXPANDABLE
from stripe_api import STRIPE_API

LOCALES_FILE = STRIPE_API / "locales.txt"
SIX_FLOW_TYPES = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
    "subscription_pause",
    "customer_update",
)
SUBSCRIPTION_FLOWS = (
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
    "subscription_pause",
)
COMPLETION_TYPES = ("hosted_confirmation", "portal_homepage", "redirect")
SECRET = "S3cr3tMarker9f8e7d6c5b4a"


def rejected(params: Any, *, allow_http_localhost: bool = False) -> ValidationError:
    """Run the guard and return its ValidationError (failing if it accepted ``params``)."""
    with pytest.raises(ValidationError) as info:
        guard(params, allow_http_localhost=allow_http_localhost)
    return info.value


def with_customer(**fields: object) -> dict[str, object]:
    return {"customer": "cus_abc123", **fields}


def with_flow(flow_data: object) -> dict[str, object]:
    return with_customer(flow_data=flow_data)


def confirm_flow(**sub: object) -> dict[str, object]:
    return with_flow({"type": "subscription_update_confirm", "subscription_update_confirm": sub})


def cancel_flow(**sub: object) -> dict[str, object]:
    return with_flow({"type": "subscription_cancel", "subscription_cancel": sub})


def completion(after_completion: object) -> dict[str, object]:
    return with_flow({"type": "payment_method_update", "after_completion": after_completion})


def redirect_to(url: object) -> dict[str, object]:
    return completion({"type": "redirect", "redirect": {"return_url": url}})


# -- customer ----------------------------------------------------------------------


def test_customer_is_required() -> None:
    """Without customer or customer_account the guard names 'customer' and both ways to fix it."""
    error = rejected({"return_url": "https://example.com/account"})
    assert error.path == "customer"
    assert "cus_" in error.reason
    assert "customer_account" in error.reason


def test_customer_and_customer_account_are_exclusive() -> None:
    """Passing both customer and customer_account asks for exactly one."""
    error = rejected({"customer": "cus_abc123", "customer_account": "acct_123"})
    assert error.path == "customer_account"
    assert "exactly one" in error.reason


def test_customer_account_alone_is_accepted() -> None:
    """An Accounts v2 customer (acct_ ID) without customer passes."""
    checked = guard({"customer_account": "acct_1Nv0FGQ9RKHgCVdK"})
    assert checked == SessionCreateParams(customer_account="acct_1Nv0FGQ9RKHgCVdK")


def test_customer_account_must_be_an_account_id() -> None:
    """customer_account takes an acct_ ID, not a cus_ ID."""
    error = rejected({"customer_account": "cus_abc123"})
    assert error.path == "customer_account"
    assert "'acct_'" in error.reason


def test_customer_email_gets_the_cus_id_hint_without_echoing_it() -> None:
    """An email address as customer is refused with 'pass the Stripe ID (cus_...)', never echoed."""
    error = rejected({"customer": "jane.doe@example.com"})
    assert error.path == "customer"
    assert "email" in error.reason
    assert "(cus_...)" in error.reason
    assert "jane.doe" not in str(error)
    assert "example.com" not in str(error)


@pytest.mark.parametrize(
    "customer",
    ["abc123", "acct_123", "CUS_abc", "cus_abc 123", "cus_abc/../x", "cus_abc-1", " cus_abc"],
)
def test_customer_must_be_a_cus_id(customer: str) -> None:
    """Anything but cus_ followed by ID characters is refused, naming the cus_ prefix."""
    error = rejected({"customer": customer})
    assert error.path == "customer"
    assert "'cus_'" in error.reason


def test_empty_string_is_refused_as_unset() -> None:
    """An empty customer is refused rather than sent as Stripe's 'unset'."""
    error = rejected({"customer": ""})
    assert error.path == "customer"
    assert "empty" in error.reason


# -- return URLs -------------------------------------------------------------------

UNSAFE_URLS = [
    pytest.param("javascript:alert(document.cookie)", "https://", id="javascript"),
    pytest.param("data:text/html;base64,PHNjcmlwdD4=", "https://", id="data"),
    pytest.param("/account", "https://", id="relative-path"),
    pytest.param("account/settings", "https://", id="relative-word"),
    pytest.param("//evil.example/account", "https://", id="protocol-relative"),
    pytest.param("https:evil.example/account", "https://", id="no-authority"),
    pytest.param("https://", "https://", id="no-host"),
    pytest.param("ftp://example.com/account", "https://", id="ftp"),
    pytest.param("http://example.com/account", "https://", id="http"),
    pytest.param("https://bank.example@evil.example/", "user info", id="userinfo"),
    pytest.param("https://user:pw@bank.example/", "user info", id="userinfo-password"),
    pytest.param(" https://example.com/", "whitespace", id="leading-space"),
    pytest.param("https://example.com/a b", "whitespace", id="inner-space"),
    pytest.param("https://example.com/\n", "whitespace", id="newline"),
    pytest.param("https://example.com/\t", "whitespace", id="tab"),
    pytest.param("https://example.com/\x00", "control", id="nul"),
    pytest.param("https://example.com\\@evil.example/", "backslash", id="backslash-userinfo"),
    pytest.param("https:\\\\evil.example\\", "backslash", id="backslash-authority"),
    pytest.param("https://exämple.com/", "punycode", id="idn-host"),
    pytest.param("https://\u0430pple.com/", "punycode", id="cyrillic-lookalike"),
    pytest.param("https://example.com/konto/übersicht", "percent-encode", id="non-ascii-path"),
    pytest.param("https://example.com:0/", "port", id="port-zero"),
    pytest.param("https://example.com:99999/", "https://", id="port-out-of-range"),
    pytest.param("https://-bad-.example/", "host name", id="bad-label"),
]


@pytest.mark.parametrize(("url", "fix"), UNSAFE_URLS)
def test_return_url_must_be_absolute_https(url: str, fix: str) -> None:
    """An unsafe top-level return_url is refused at 'return_url' with the specific fix."""
    error = rejected(with_customer(return_url=url))
    assert error.path == "return_url"
    assert fix in error.reason


@pytest.mark.parametrize(("url", "fix"), UNSAFE_URLS)
def test_redirect_return_url_must_be_absolute_https(url: str, fix: str) -> None:
    """after_completion.redirect.return_url follows the same rules, at its own path."""
    error = rejected(redirect_to(url))
    assert error.path == "flow_data.after_completion.redirect.return_url"
    assert fix in error.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/account",
        "https://example.com",
        "HTTPS://Example.COM/Account",
        "https://app.example.com:8443/billing?tab=plan&x=%C3%BC#top",
        "https://xn--exmple-cua.com/konto",
        "https://127.0.0.1/account",
        "https://[::1]:8443/account",
    ],
)
def test_safe_https_urls_are_accepted(url: str) -> None:
    """Absolute https URLs, punycode hosts and IP literals pass in both places."""
    assert guard(with_customer(return_url=url)).return_url == url
    checked = guard(redirect_to(url))
    assert checked.flow_data is not None
    assert checked.flow_data.after_completion == AfterCompletion.redirect(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/account",
        "http://localhost:4000/account",
        "http://127.0.0.1:8000/",
        "http://[::1]:8000/",
    ],
)
def test_http_localhost_needs_the_flag(url: str) -> None:
    """http://localhost is refused by default with a hint to allow_http_localhost, then accepted."""
    error = rejected(with_customer(return_url=url))
    assert error.path == "return_url"
    assert "allow_http_localhost" in error.reason
    assert guard(with_customer(return_url=url), allow_http_localhost=True).return_url == url
    assert guard(redirect_to(url), allow_http_localhost=True).flow_data is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/account",
        "http://localhost.evil.example/",
        "http://localhost@evil.example/",
        "http://10.0.0.1/",
        "javascript:alert(1)",
    ],
)
def test_http_localhost_flag_allows_only_loopback(url: str) -> None:
    """allow_http_localhost does not open http to any other host or scheme."""
    error = rejected(with_customer(return_url=url), allow_http_localhost=True)
    assert error.path == "return_url"


# -- flow_data.type ----------------------------------------------------------------


@pytest.mark.parametrize("flow_type", ["subscription_resume", "Subscription_Cancel", "", 3])
def test_unknown_flow_type_lists_all_six(flow_type: object) -> None:
    """An unknown or non-string flow type is refused at flow_data.type, listing all six."""
    error = rejected(with_flow({"type": flow_type}))
    assert error.path == "flow_data.type"
    for name in SIX_FLOW_TYPES:
        assert f"'{name}'" in error.reason


def test_flow_type_is_required() -> None:
    """flow_data without type is refused at flow_data.type, listing the valid types."""
    error = rejected(with_flow({"after_completion": {"type": "portal_homepage"}}))
    assert error.path == "flow_data.type"
    assert "required" in error.reason
    assert "'subscription_pause'" in error.reason


# -- subscription flows ------------------------------------------------------------


@pytest.mark.parametrize("flow_type", SUBSCRIPTION_FLOWS)
def test_subscription_flow_requires_its_sub_hash(flow_type: str) -> None:
    """A subscription flow without its sub-hash is refused at flow_data.<type>."""
    error = rejected(with_flow({"type": flow_type}))
    assert error.path == f"flow_data.{flow_type}"
    assert "'subscription': 'sub_...'" in error.reason


@pytest.mark.parametrize("flow_type", SUBSCRIPTION_FLOWS)
def test_subscription_flow_requires_its_subscription(flow_type: str) -> None:
    """A sub-hash without subscription is refused at flow_data.<type>.subscription."""
    sub: dict[str, object] = {}
    if flow_type == "subscription_update_confirm":
        sub["items"] = [{"id": "si_1"}]
    error = rejected(with_flow({"type": flow_type, flow_type: sub}))
    assert error.path == f"flow_data.{flow_type}.subscription"
    assert "(sub_...)" in error.reason


@pytest.mark.parametrize("flow_type", SUBSCRIPTION_FLOWS)
def test_subscription_must_be_a_sub_id(flow_type: str) -> None:
    """A subscription that is not a sub_ ID is refused, naming the sub_ prefix."""
    sub: dict[str, object] = {"subscription": "cus_abc123"}
    if flow_type == "subscription_update_confirm":
        sub["items"] = [{"id": "si_1"}]
    error = rejected(with_flow({"type": flow_type, flow_type: sub}))
    assert error.path == f"flow_data.{flow_type}.subscription"
    assert "'sub_'" in error.reason


def test_update_confirm_requires_items() -> None:
    """subscription_update_confirm without items is refused at .items: a non-empty list."""
    error = rejected(confirm_flow(subscription="sub_1"))
    assert error.path == "flow_data.subscription_update_confirm.items"
    assert "non-empty" in error.reason


def test_update_confirm_requires_non_empty_items() -> None:
    """An empty items list is refused the same way as a missing one."""
    error = rejected(confirm_flow(subscription="sub_1", items=[]))
    assert error.path == "flow_data.subscription_update_confirm.items"
    assert "non-empty" in error.reason
    assert "(si_...)" in error.reason


def test_update_confirm_requires_subscription_as_well_as_items() -> None:
    """Items without a subscription are refused at .subscription."""
    error = rejected(confirm_flow(items=[{"id": "si_1", "price": "price_2"}]))
    assert error.path == "flow_data.subscription_update_confirm.subscription"


@pytest.mark.parametrize(
    "item", [{"price": "price_new", "quantity": 2}, {"id": None, "quantity": 1}]
)
def test_update_confirm_item_requires_id(item: dict[str, object]) -> None:
    """An item needs its si_ id; the path names the item's id."""
    error = rejected(confirm_flow(subscription="sub_1", items=[item]))
    assert error.path == "flow_data.subscription_update_confirm.items[0].id"
    assert "si_" in error.reason


def test_update_confirm_takes_at_most_one_item() -> None:
    """A second item is refused at items[1], as Stripe refuses it ("only up to one")."""
    items = [{"id": "si_a", "price": "price_1"}, {"id": "si_b", "quantity": 2}]
    error = rejected(confirm_flow(subscription="sub_1", items=items))
    assert error.path == "flow_data.subscription_update_confirm.items[1]"
    assert "at most 1 item" in error.reason


def test_update_confirm_typed_flow_takes_at_most_one_item() -> None:
    """The typed constructor's flow with two items is refused the same way before the network."""
    flow = FlowData.subscription_update_confirm(
        "sub_1",
        [UpdateConfirmItem(id="si_a", quantity=1), UpdateConfirmItem(id="si_b", quantity=2)],
    )
    error = rejected(SessionCreateParams(customer="cus_1", flow_data=flow))
    assert error.path == "flow_data.subscription_update_confirm.items[1]"


@pytest.mark.parametrize("item", [{"id": "si_a"}, {"id": "si_a", "price": None, "quantity": None}])
def test_update_confirm_item_needs_price_or_quantity(item: dict[str, object]) -> None:
    """An item with only its id changes nothing and is refused, naming price and quantity."""
    error = rejected(confirm_flow(subscription="sub_1", items=[item]))
    assert error.path == "flow_data.subscription_update_confirm.items[0]"
    assert "price" in error.reason
    assert "quantity" in error.reason


@pytest.mark.parametrize("item", [{"price": "price_2"}, {"quantity": 0}, {"quantity": 3}])
def test_update_confirm_item_with_price_or_quantity_passes(item: dict[str, object]) -> None:
    """An item with its id and a price, a quantity (zero included) or both is accepted."""
    checked = guard(confirm_flow(subscription="sub_1", items=[{"id": "si_a", **item}]))
    assert isinstance(checked.flow_data, SubscriptionUpdateConfirmFlow)
    assert checked.flow_data.items == (UpdateConfirmItem(id="si_a", **item),)  # type: ignore[arg-type]


def test_update_confirm_item_id_must_be_si_id() -> None:
    """An item id that is not a subscription item ID is refused, naming si_."""
    error = rejected(confirm_flow(subscription="sub_1", items=[{"id": "price_1"}]))
    assert error.path == "flow_data.subscription_update_confirm.items[0].id"
    assert "'si_'" in error.reason


@pytest.mark.parametrize(
    "discount",
    [{}, {"coupon": "SAVE", "promotion_code": "promo_1"}],
    ids=["neither", "both"],
)
def test_update_confirm_discount_needs_exactly_one_of_coupon_and_code(
    discount: dict[str, str],
) -> None:
    """A discount carries exactly one of coupon and promotion_code."""
    error = rejected(
        confirm_flow(
            subscription="sub_1", items=[{"id": "si_1", "quantity": 2}], discounts=[discount]
        )
    )
    assert error.path == "flow_data.subscription_update_confirm.discounts[0]"
    assert "exactly one of coupon and promotion_code" in error.reason


def test_retention_requires_coupon_offer() -> None:
    """A retention without coupon_offer is refused at retention.coupon_offer."""
    error = rejected(cancel_flow(subscription="sub_1", retention={"type": "coupon_offer"}))
    assert error.path == "flow_data.subscription_cancel.retention.coupon_offer"
    assert "'coupon'" in error.reason


def test_retention_requires_coupon() -> None:
    """A coupon_offer without coupon is refused at retention.coupon_offer.coupon."""
    error = rejected(
        cancel_flow(subscription="sub_1", retention={"type": "coupon_offer", "coupon_offer": {}})
    )
    assert error.path == "flow_data.subscription_cancel.retention.coupon_offer.coupon"
    assert "coupon" in error.reason


@pytest.mark.parametrize("retention_type", [None, "percent_off"])
def test_retention_type_must_be_coupon_offer(retention_type: str | None) -> None:
    """The retention type is required and can only be coupon_offer."""
    retention: dict[str, object] = {"coupon_offer": {"coupon": "SAVE25"}}
    if retention_type is not None:
        retention["type"] = retention_type
    error = rejected(cancel_flow(subscription="sub_1", retention=retention))
    assert error.path == "flow_data.subscription_cancel.retention.type"
    assert "'coupon_offer'" in error.reason


@pytest.mark.parametrize(
    ("flow_type", "stray"),
    [
        ("subscription_cancel", "subscription_update"),
        ("subscription_update", "subscription_cancel"),
        ("payment_method_update", "subscription_cancel"),
        ("customer_update", "subscription_pause"),
        ("subscription_pause", "subscription_update_confirm"),
    ],
)
def test_sub_hash_of_another_flow_is_refused(flow_type: str, stray: str) -> None:
    """A sub-hash that does not belong to flow_data.type is refused at its own path."""
    flow: dict[str, object] = {"type": flow_type, stray: {"subscription": "sub_1"}}
    if flow_type in SUBSCRIPTION_FLOWS:
        flow[flow_type] = {"subscription": "sub_1"}
    error = rejected(with_flow(flow))
    assert error.path == f"flow_data.{stray}"
    assert f"flow_data.type is '{flow_type}'" in error.reason


# -- enums -------------------------------------------------------------------------


def stripe_locales() -> list[str]:
    return [line.strip() for line in LOCALES_FILE.read_text().splitlines() if line.strip()]


def test_every_stripe_locale_is_accepted() -> None:
    """Every locale in Stripe's enum passes, as a mapping and as typed params."""
    locales = stripe_locales()
    assert len(locales) == 47
    for locale in locales:
        assert guard(with_customer(locale=locale)).locale == locale
        typed = SessionCreateParams(customer="cus_abc123", locale=locale)
        assert guard(typed) is typed


@pytest.mark.parametrize("locale", ["en-us", "EN", "xx", "en_GB", "", 7])
def test_unknown_locale_lists_the_valid_ones(locale: object) -> None:
    """A locale outside Stripe's enum is refused at 'locale', listing every valid locale."""
    error = rejected(with_customer(locale=locale))
    assert error.path == "locale"
    for valid in stripe_locales():
        assert valid in error.reason


@pytest.mark.parametrize("completion_type", ["bogus", "Redirect", 1])
def test_after_completion_type_enum(completion_type: object) -> None:
    """An unknown after_completion.type is refused, listing the three valid types."""
    error = rejected(completion({"type": completion_type}))
    assert error.path == "flow_data.after_completion.type"
    for name in COMPLETION_TYPES:
        assert f"'{name}'" in error.reason


def test_after_completion_type_is_required() -> None:
    """after_completion without type is refused at after_completion.type."""
    error = rejected(completion({}))
    assert error.path == "flow_data.after_completion.type"
    assert "required" in error.reason


def test_redirect_completion_requires_return_url() -> None:
    """type 'redirect' needs redirect.return_url."""
    error = rejected(completion({"type": "redirect"}))
    assert error.path == "flow_data.after_completion.redirect.return_url"
    assert "https" in error.reason


@pytest.mark.parametrize(
    ("after_completion", "path"),
    [
        (
            {"type": "portal_homepage", "redirect": {"return_url": "https://example.com/"}},
            "flow_data.after_completion.redirect",
        ),
        (
            {"type": "redirect", "hosted_confirmation": {"custom_message": "Thanks"}},
            "flow_data.after_completion.hosted_confirmation",
        ),
    ],
)
def test_completion_detail_must_match_its_type(
    after_completion: dict[str, object], path: str
) -> None:
    """redirect and hosted_confirmation details are only allowed with their own type."""
    error = rejected(completion(after_completion))
    assert error.path == path
    assert "only allowed when flow_data.after_completion.type is" in error.reason


def test_after_expiration_type_is_required() -> None:
    """after_expiration without type is refused, naming 'customer_login'."""
    error = rejected(with_customer(after_expiration={"customer_login": {"expires_at": 1}}))
    assert error.path == "after_expiration.type"
    assert "'customer_login'" in error.reason


# -- lengths -----------------------------------------------------------------------


def test_custom_message_is_at_most_500_characters() -> None:
    """custom_message of 500 characters passes and 501 is refused, naming the limit."""

    def hosted(message: str) -> dict[str, object]:
        return completion(
            {"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": message}}
        )

    guard(hosted("m" * 500))
    error = rejected(hosted("m" * 501))
    assert error.path == "flow_data.after_completion.hosted_confirmation.custom_message"
    assert "at most 500" in error.reason


def long_id(prefix: str, length: int) -> str:
    return prefix + "a" * (length - len(prefix))


def id_cases(length: int) -> list[tuple[dict[str, object], str]]:
    """One params mapping per 5000-character field, with that field ``length`` long."""
    sub = long_id("sub_", length)
    return [
        ({"customer": long_id("cus_", length)}, "customer"),
        ({"customer_account": long_id("acct_", length)}, "customer_account"),
        (with_customer(configuration=long_id("bpc_", length)), "configuration"),
        (with_customer(on_behalf_of=long_id("acct_", length)), "on_behalf_of"),
        (
            with_flow(
                {"type": "subscription_update", "subscription_update": {"subscription": sub}}
            ),
            "flow_data.subscription_update.subscription",
        ),
        (
            confirm_flow(
                subscription="sub_1", items=[{"id": long_id("si_", length), "quantity": 1}]
            ),
            "flow_data.subscription_update_confirm.items[0].id",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", "price": "p" * length}]),
            "flow_data.subscription_update_confirm.items[0].price",
        ),
        (
            confirm_flow(
                subscription="sub_1",
                items=[{"id": "si_1", "quantity": 2}],
                discounts=[{"coupon": "c" * length}],
            ),
            "flow_data.subscription_update_confirm.discounts[0].coupon",
        ),
        (
            cancel_flow(
                subscription="sub_1",
                retention={"type": "coupon_offer", "coupon_offer": {"coupon": "c" * length}},
            ),
            "flow_data.subscription_cancel.retention.coupon_offer.coupon",
        ),
    ]


@pytest.mark.parametrize("index", range(len(id_cases(10))))
def test_ids_are_at_most_5000_characters(index: int) -> None:
    """Each 5000-character field passes at 5000 and is refused at 5001 at its own path."""
    at_limit, _ = id_cases(5000)[index]
    guard(at_limit)
    over, path = id_cases(5001)[index]
    error = rejected(over)
    assert error.path == path
    assert "at most 5000" in error.reason


# -- unknown and non-string keys ---------------------------------------------------


@pytest.mark.parametrize(
    ("params", "path", "allowed"),
    [
        ({"customer": "cus_1", "custmer": "cus_1"}, "custmer", "customer"),
        ({"customer": "cus_1", "success_url": "https://e.com"}, "success_url", "return_url"),
        (
            with_flow({"type": "subscription_update", "subscription": "sub_1"}),
            "flow_data.subscription",
            "subscription_update",
        ),
        (
            with_flow({"type": "customer_update", "customer_update": {}}),
            "flow_data.customer_update",
            "after_completion",
        ),
        (
            completion({"type": "redirect", "return_url": "https://e.com"}),
            "flow_data.after_completion.return_url",
            "redirect",
        ),
        (
            completion({"type": "redirect", "redirect": {"url": "https://e.com"}}),
            "flow_data.after_completion.redirect.url",
            "return_url",
        ),
        (
            with_flow(
                {
                    "type": "subscription_update",
                    "subscription_update": {"subscription": "sub_1", "items": []},
                }
            ),
            "flow_data.subscription_update.items",
            "subscription",
        ),
        (
            cancel_flow(subscription="sub_1", retention={"type": "coupon_offer", "coupon": "X"}),
            "flow_data.subscription_cancel.retention.coupon",
            "coupon_offer",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", "plan": "p"}]),
            "flow_data.subscription_update_confirm.items[0].plan",
            "price",
        ),
        (
            confirm_flow(
                subscription="sub_1",
                items=[{"id": "si_1", "quantity": 2}],
                discounts=[{"amount_off": 5}],
            ),
            "flow_data.subscription_update_confirm.discounts[0].amount_off",
            "promotion_code",
        ),
        (
            with_customer(after_expiration={"type": "customer_login", "expires_at": 1}),
            "after_expiration.expires_at",
            "customer_login",
        ),
    ],
)
def test_unknown_keys_are_refused_by_name(
    params: dict[str, object], path: str, allowed: str
) -> None:
    """An unknown key at any depth is refused at a path naming it, listing what is accepted."""
    error = rejected(params)
    assert error.path == path
    assert "accepts only" in error.reason
    assert allowed in error.reason


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({1: "x", "customer": "cus_1"}, "params"),
        ({b"customer": "cus_1"}, "params"),
        ({("customer",): "cus_1"}, "params"),
        (with_flow({"type": "payment_method_update", 1: "x"}), "flow_data"),
        (completion({"type": "portal_homepage", None: "x"}), "flow_data.after_completion"),
        (
            with_flow(
                {"type": "subscription_update", "subscription_update": {b"subscription": "sub_1"}}
            ),
            "flow_data.subscription_update",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", 0: 1}]),
            "flow_data.subscription_update_confirm.items[0]",
        ),
        (
            cancel_flow(
                subscription="sub_1",
                retention={"type": "coupon_offer", "coupon_offer": {"coupon": "X", 2.5: 1}},
            ),
            "flow_data.subscription_cancel.retention.coupon_offer",
        ),
    ],
)
def test_non_string_keys_are_refused(params: Mapping[Any, object], path: str) -> None:
    """Keys that are not strings (Elixir's atom-key pitfall) are refused at their mapping."""
    error = rejected(params)
    assert error.path == path
    assert "must be a string" in error.reason


# -- value types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "path", "fix"),
    [
        ({"customer": 123}, "customer", "expected a string, got int"),
        ({"customer": b"cus_1"}, "customer", "expected a string, got bytes"),
        (with_customer(return_url=["https://e.com"]), "return_url", "expected a string"),
        (with_customer(configuration=1), "configuration", "expected a string"),
        (with_customer(flow_data=["payment_method_update"]), "flow_data", "expected a mapping"),
        (with_customer(flow_data="payment_method_update"), "flow_data", "expected a mapping"),
        (completion("portal_homepage"), "flow_data.after_completion", "expected a mapping"),
        (
            with_flow({"type": "subscription_pause", "subscription_pause": ["sub_1"]}),
            "flow_data.subscription_pause",
            "expected a mapping",
        ),
        (
            with_flow({"type": "subscription_pause", "subscription_pause": {"subscription": 1}}),
            "flow_data.subscription_pause.subscription",
            "expected a string",
        ),
        (
            confirm_flow(subscription="sub_1", items={"id": "si_1"}),
            "flow_data.subscription_update_confirm.items",
            "expected a list",
        ),
        (
            confirm_flow(subscription="sub_1", items="si_1"),
            "flow_data.subscription_update_confirm.items",
            "expected a list",
        ),
        (
            confirm_flow(subscription="sub_1", items=["si_1"]),
            "flow_data.subscription_update_confirm.items[0]",
            "expected a mapping",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", "quantity": True}]),
            "flow_data.subscription_update_confirm.items[0].quantity",
            "expected an integer, got bool",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", "quantity": "2"}]),
            "flow_data.subscription_update_confirm.items[0].quantity",
            "expected an integer, got str",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", "quantity": 2.0}]),
            "flow_data.subscription_update_confirm.items[0].quantity",
            "expected an integer, got float",
        ),
        (
            confirm_flow(subscription="sub_1", items=[{"id": "si_1", "quantity": -1}]),
            "flow_data.subscription_update_confirm.items[0].quantity",
            "0 or more",
        ),
        (
            confirm_flow(
                subscription="sub_1",
                items=[{"id": "si_1", "quantity": 2}],
                discounts={"coupon": "C"},
            ),
            "flow_data.subscription_update_confirm.discounts",
            "expected a list",
        ),
        (
            cancel_flow(subscription="sub_1", retention="SAVE25"),
            "flow_data.subscription_cancel.retention",
            "expected a mapping",
        ),
        (with_customer(expand="configuration"), "expand", "expected a list"),
        (with_customer(expand=[1]), "expand[0]", "expected a string"),
        (
            with_customer(
                after_expiration={"type": "customer_login", "customer_login": {"expires_at": True}}
            ),
            "after_expiration.customer_login.expires_at",
            "expected an integer",
        ),
        (
            with_customer(
                after_expiration={"type": "customer_login", "customer_login": {"expires_at": 0}}
            ),
            "after_expiration.customer_login.expires_at",
            "1 or more",
        ),
    ],
)
def test_wrong_value_types_are_refused(params: dict[str, object], path: str, fix: str) -> None:
    """A value of the wrong type is refused at its exact path, saying what was expected."""
    error = rejected(params)
    assert error.path == path
    assert fix in error.reason


def test_params_must_be_a_mapping_or_typed() -> None:
    """Anything but a mapping or SessionCreateParams is refused at 'params'."""
    error = rejected([("customer", "cus_1")])
    assert error.path == "params"
    assert "SessionCreateParams" in error.reason


def test_lone_surrogates_are_refused() -> None:
    """Text that cannot be sent as UTF-8 (a lone surrogate) is a ValidationError, not a crash."""
    error = rejected(
        completion(
            {"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": "Hi \ud800"}}
        )
    )
    assert error.path == "flow_data.after_completion.hosted_confirmation.custom_message"
    assert "surrogate" in error.reason


# -- nothing echoed ----------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"customer": f"{SECRET}@example.com"},
        {"customer": "sk_live_" + SECRET * 4},
        {"customer": "cus_" + SECRET + "!"},
        {"customer": 12345, "return_url": f"https://{SECRET}.example/ x"},
        with_customer(return_url=f"javascript:fetch('{SECRET}')"),
        with_customer(return_url=f"https://admin:{SECRET}@bank.example/"),
        with_customer(return_url=f"https://{SECRET}ü.example/"),
        with_customer(locale=SECRET),
        with_customer(configuration=SECRET),
        with_flow({"type": "rk_live_" + SECRET}),
        redirect_to(f"http://{SECRET}.example/"),
        completion(
            {"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": SECRET * 30}}
        ),
        confirm_flow(subscription="sub_1", items=[{"id": SECRET}]),
        with_customer(after_expiration={"type": SECRET}),
    ],
)
def test_messages_never_echo_the_offending_value(params: dict[str, object]) -> None:
    """Neither the message, the reason nor the repr of the error contains the bad value."""
    error = rejected(params)
    for text in (str(error), repr(error), error.reason, error.path):
        assert SECRET not in text


# -- typed params ------------------------------------------------------------------


def test_typed_params_take_lists_where_tuples_are_stored() -> None:
    """Lists given for expand, items and discounts are stored as tuples and pass the guard."""
    params = SessionCreateParams(
        customer="cus_1",
        expand=["flow"],
        flow_data=SubscriptionUpdateConfirmFlow(
            subscription="sub_1",
            items=[UpdateConfirmItem(id="si_1", quantity=2)],
            discounts=[UpdateConfirmDiscount(coupon="SAVE")],
        ),
    )
    checked = guard(params)
    assert checked.expand == ("flow",)
    assert isinstance(checked.flow_data, SubscriptionUpdateConfirmFlow)
    assert checked.flow_data.items == (UpdateConfirmItem(id="si_1", quantity=2),)
    assert checked.flow_data.discounts == (UpdateConfirmDiscount(coupon="SAVE"),)


@pytest.mark.parametrize(
    ("params", "path", "fix"),
    [
        (SessionCreateParams(customer=123), "customer", "expected a string"),  # type: ignore[arg-type]
        (SessionCreateParams(customer="jane@example.com"), "customer", "(cus_...)"),
        (SessionCreateParams(), "customer", "required"),
        (SessionCreateParams(customer="cus_1", locale="xx"), "locale", "en-GB"),  # type: ignore[arg-type]
        (SessionCreateParams(customer="cus_1", return_url="/account"), "return_url", "https://"),
        (
            SessionCreateParams(customer="cus_1", expand="configuration"),  # type: ignore[arg-type]
            "expand",
            "tuple",
        ),
        (
            SessionCreateParams(customer="cus_1", flow_data={"type": "customer_update"}),  # type: ignore[arg-type]
            "flow_data",
            "FlowData",
        ),
        (SessionCreateParams(customer="cus_1", flow_data=FlowData()), "flow_data", "FlowData"),
        (
            SessionCreateParams(customer="cus_1", flow_data=FlowData.subscription_cancel(None)),  # type: ignore[arg-type]
            "flow_data.subscription_cancel.subscription",
            "(sub_...)",
        ),
        (
            SessionCreateParams(
                customer="cus_1", flow_data=FlowData.subscription_update_confirm("sub_1", [])
            ),
            "flow_data.subscription_update_confirm.items",
            "non-empty",
        ),
        (
            SessionCreateParams(
                customer="cus_1",
                flow_data=FlowData.subscription_update_confirm(
                    "sub_1", [UpdateConfirmItem(id="si_1", quantity=True)]
                ),
            ),
            "flow_data.subscription_update_confirm.items[0].quantity",
            "got bool",
        ),
        (
            SessionCreateParams(
                customer="cus_1",
                flow_data=FlowData.subscription_update_confirm(
                    "sub_1",
                    [UpdateConfirmItem(id="si_1", quantity=1)],
                    discounts=[UpdateConfirmDiscount()],
                ),
            ),
            "flow_data.subscription_update_confirm.discounts[0]",
            "exactly one",
        ),
        (
            SessionCreateParams(
                customer="cus_1",
                flow_data=FlowData.subscription_cancel(
                    "sub_1", retention=Retention.coupon_offer("")
                ),
            ),
            "flow_data.subscription_cancel.retention.coupon_offer.coupon",
            "empty",
        ),
        (
            SessionCreateParams(
                customer="cus_1",
                flow_data=FlowData.payment_method_update(
                    after_completion=AfterCompletion.redirect("http://example.com/")
                ),
            ),
            "flow_data.after_completion.redirect.return_url",
            "https://",
        ),
        (
            SessionCreateParams(
                customer="cus_1",
                flow_data=FlowData.customer_update(
                    after_completion=AfterCompletion(type="bogus")  # type: ignore[arg-type]
                ),
            ),
            "flow_data.after_completion.type",
            "'portal_homepage'",
        ),
        (
            SessionCreateParams(
                customer="cus_1",
                flow_data=FlowData.customer_update(
                    after_completion=AfterCompletion.hosted_confirmation("x" * 501)
                ),
            ),
            "flow_data.after_completion.hosted_confirmation.custom_message",
            "at most 500",
        ),
        (
            SessionCreateParams(
                customer="cus_1", after_expiration=AfterExpiration.customer_login(expires_at=-5)
            ),
            "after_expiration.customer_login.expires_at",
            "1 or more",
        ),
    ],
)
def test_typed_params_go_through_the_same_checks(
    params: SessionCreateParams, path: str, fix: str
) -> None:
    """SessionCreateParams built by hand meet the same rules as mappings (no run-time typing)."""
    error = rejected(params)
    assert error.path == path
    assert fix in error.reason


def test_valid_typed_params_are_returned_as_is() -> None:
    """A valid SessionCreateParams is returned unchanged (the very same object)."""
    typed = SessionCreateParams(
        customer="cus_abc123",
        return_url="https://example.com/account",
        flow_data=FlowData.subscription_pause("sub_1"),
    )
    assert guard(typed) is typed


FLOW_EXAMPLES: list[tuple[dict[str, object], FlowData]] = [
    ({"type": "payment_method_update"}, FlowData.payment_method_update()),
    ({"type": "customer_update"}, FlowData.customer_update()),
    (
        {
            "type": "subscription_cancel",
            "subscription_cancel": {
                "subscription": "sub_1",
                "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE25"}},
            },
        },
        FlowData.subscription_cancel("sub_1", retention=Retention.coupon_offer("SAVE25")),
    ),
    (
        {"type": "subscription_update", "subscription_update": {"subscription": "sub_2"}},
        FlowData.subscription_update("sub_2"),
    ),
    (
        {
            "type": "subscription_update_confirm",
            "after_completion": {
                "type": "redirect",
                "redirect": {"return_url": "https://example.com/done"},
            },
            "subscription_update_confirm": {
                "subscription": "sub_3",
                "items": [{"id": "si_1", "price": "price_9", "quantity": 3}],
                "discounts": [{"promotion_code": "promo_1"}],
            },
        },
        FlowData.subscription_update_confirm(
            "sub_3",
            [UpdateConfirmItem(id="si_1", price="price_9", quantity=3)],
            discounts=[UpdateConfirmDiscount(promotion_code="promo_1")],
            after_completion=AfterCompletion.redirect("https://example.com/done"),
        ),
    ),
    (
        {
            "type": "subscription_pause",
            "after_completion": {
                "type": "hosted_confirmation",
                "hosted_confirmation": {"custom_message": "Paused. See you soon!"},
            },
            "subscription_pause": {"subscription": "sub_4"},
        },
        FlowData.subscription_pause(
            "sub_4", after_completion=AfterCompletion.hosted_confirmation("Paused. See you soon!")
        ),
    ),
]


@pytest.mark.parametrize(("flow_data", "expected"), FLOW_EXAMPLES)
def test_valid_mappings_become_the_typed_values(
    flow_data: dict[str, object], expected: FlowData
) -> None:
    """Each flow type as a mapping parses into the value its named constructor builds."""
    checked = guard(
        {
            "customer": "cus_abc123",
            "return_url": "https://example.com/account",
            "locale": "fr-CA",
            "configuration": "bpc_1",
            "on_behalf_of": "acct_1",
            "flow_data": flow_data,
            "after_expiration": {
                "type": "customer_login",
                "customer_login": {"expires_at": 1800000000},
            },
            "expand": ["configuration"],
        }
    )
    assert checked == SessionCreateParams(
        customer="cus_abc123",
        return_url="https://example.com/account",
        locale="fr-CA",
        configuration="bpc_1",
        on_behalf_of="acct_1",
        flow_data=expected,
        after_expiration=AfterExpiration.customer_login(expires_at=1800000000),
        expand=("configuration",),
    )


def test_validation_error_is_a_value_error() -> None:
    """ValidationError is also a ValueError, so generic input handling catches it."""
    assert isinstance(rejected({}), ValueError)


# -- expand ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SESSION_EXPANDABLE))
def test_every_expandable_path_passes(path: str) -> None:
    """Every path the spec marks expandable on a session (nested ones included) is accepted."""
    assert guard(with_customer(expand=[path])).expand == (path,)


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("customer", "configuration"),
        ("configuration.bogus", "configuration.application"),
        ("flow.subscription_pause", "flow.subscription_cancel"),
        ("url", "flow"),
        ("Configuration", "configuration"),
    ],
)
def test_unexpandable_paths_are_refused_with_the_nearest_choices(path: str, hint: str) -> None:
    """A path the spec does not mark expandable is refused at expand[i], naming valid paths."""
    error = rejected(with_customer(expand=["flow", path]))
    assert error.path == "expand[1]"
    assert "not expandable" in error.reason
    assert hint in error.reason


def test_expansions_deeper_than_four_levels_are_refused() -> None:
    """Stripe expands at most four levels: a five-level path is refused saying so."""
    deep = "configuration.features.subscription_update.products.adjustable_quantity"
    error = rejected(with_customer(expand=[deep]))
    assert error.path == "expand[0]"
    assert "at most 4 levels" in error.reason
