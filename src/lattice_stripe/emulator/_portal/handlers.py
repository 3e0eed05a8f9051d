"""The hosted portal: server-rendered HTML forms behind a session's single-use URL.

Opening ``/p/session/<secret>`` consumes the URL (a second visit, or one after
``session_ttl``, gets an error page, never the portal) and starts a *visit*
held in an HttpOnly cookie. A session created with ``flow_data`` shows only
its flow's page; when that is done, ``after_completion`` decides what follows
(a redirect, a hosted confirmation, or the homepage). Every form carries the
visit's CSRF token. Each change is published as webhooks, and the page waits
(briefly) for their first delivery before moving on, so the app already knows
when the customer lands back on it.
"""

import hmac
import secrets
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from lattice_stripe.core.codec import decode_form
from lattice_stripe.emulator._engine import EMULATOR, remember
from lattice_stripe.emulator._portal.pages import (
    CUSTOMER_FIELDS,
    HOME,
    PAUSE_MONTHS,
    PageError,
    cancel_page,
    card_page,
    confirm_page,
    customer_page,
    date,
    done_page,
    features,
    home_page,
    invoice_page,
    invoices_page,
    pause_offered,
    pause_page,
    redirect,
    see_other,
    update_offered,
    update_page,
)
from lattice_stripe.emulator._state import (
    Change,
    PortalVisit,
    Store,
    Subscription,
    SubscriptionItem,
    add_months,
)

__all__ = ["COOKIE", "routes"]

COOKIE = "lattice_portal"

_PAGES = {
    "subscription_cancel": "cancel",
    "subscription_update": "update",
    "subscription_update_confirm": "confirm",
    "subscription_pause": "pause",
    "payment_method_update": "payment-method",
    "customer_update": "customer",
}
# The feature each page belongs to: a page of a disabled feature does not exist for the visit.
_PAGE_FEATURES = {
    "cancel": "subscription_cancel",
    "confirm": "subscription_update",
    "customer": "customer_update",
    "invoices": "invoice_history",
    "payment-method": "payment_method_update",
}
_DECLINES = {
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
    "4000000000000069": "Your card has expired.",
    "4000000000000127": "Your card's security code is incorrect.",
}


# -- visits ----------------------------------------------------------------------------


def _flow_page(flow: dict[str, Any]) -> str:
    kind = flow["type"]
    detail = flow.get(kind) or {}
    sub = detail.get("subscription")
    return f"{HOME}/{_PAGES[kind]}" + (f"/{sub}" if sub else "")


def _visit(request: web.Request, *, finished_ok: bool = False) -> PortalVisit:
    emulator = request.app[EMULATOR]
    visit = emulator.store.visits.get(request.cookies.get(COOKIE, ""))
    if visit is None:
        raise PageError(
            403,
            "Portal session not found",
            "Open the billing portal again from the site you came from.",
        )
    if emulator.clock() >= visit.expires_at:
        raise PageError(
            410,
            "Portal session expired",
            "This portal session has timed out. Open the billing portal again from the site.",
            return_url=visit.session.return_url,
        )
    if visit.finished and not finished_ok:
        raise PageError(
            410,
            "Portal session ended",
            "You are done here. Open the billing portal again from the site to make other changes.",
            return_url=visit.session.return_url,
        )
    return visit


def _enter(request: web.Request, page: str, sub_id: str | None = None) -> PortalVisit:
    """The visit, if it may see ``page``; a session with a flow sees only that flow's page."""
    visit = _visit(request)
    if visit.flow is not None:
        target = _flow_page(visit.flow)
        here = HOME if page == "home" else f"{HOME}/{page}" + (f"/{sub_id}" if sub_id else "")
        if target != here:
            redirect(target)
    if not _offered(request.app[EMULATOR].store, visit, page):
        raise PageError(
            404,
            "Not available",
            "This part of the billing portal is turned off for this account.",
            return_url=visit.session.return_url,
        )
    return visit


def _offered(store: Store, visit: PortalVisit, page: str) -> bool:
    """Whether the session's configuration has the feature behind ``page`` enabled."""
    if page == "update":
        return update_offered(store, visit)
    if page == "pause":
        return pause_offered(store, visit)
    feature = _PAGE_FEATURES.get(page)
    return feature is None or bool((features(store, visit).get(feature) or {}).get("enabled"))


def _subscription(store: Store, visit: PortalVisit, sub_id: str) -> Subscription:
    sub = store.subscriptions.get(sub_id)
    if sub is None or sub.customer != visit.session.customer or not sub.is_live:
        raise PageError(
            404,
            "Subscription not found",
            "This subscription does not exist or can no longer be changed.",
            return_url=visit.session.return_url,
        )
    return sub


def _on_subscription(request: web.Request, page: str) -> tuple[Store, PortalVisit, Subscription]:
    """The store, the visit (if it may see ``page``) and the subscription named in the URL."""
    store = request.app[EMULATOR].store
    sub_id = request.match_info["sub"]
    visit = _enter(request, page, sub_id)
    return store, visit, _subscription(store, visit, sub_id)


def _single_item(store: Store, visit: PortalVisit, sub: Subscription) -> SubscriptionItem:
    if len(sub.items) != 1:
        raise PageError(
            400,
            "Cannot update this subscription",
            "A subscription with several items cannot be changed in the portal.",
            return_url=visit.session.return_url,
        )
    return sub.items[0]


async def _fields(request: web.Request, visit: PortalVisit) -> dict[str, Any]:
    try:
        fields = decode_form(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise PageError(400, "Bad request", "The form could not be read.") from None
    token = fields.get("csrf_token")
    if not isinstance(token, str) or not hmac.compare_digest(
        token.encode(), visit.csrf_token.encode()
    ):
        raise PageError(
            403,
            "Form expired",
            "This form could not be verified (it came from another page or session). "
            "Go back, reload the page and try again.",
            return_url=visit.session.return_url,
        )
    if fields.get("version") != str(visit.version):
        raise PageError(
            409,
            "This page was out of date",
            "Something changed since this page was shown (perhaps you went Back and submitted "
            "it again), so nothing was done. Open the portal home to see where things stand.",
            return_url=visit.session.return_url,
        )
    return fields


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _complete(
    request: web.Request, visit: PortalVisit, changes: Iterable[Change], notice: str
) -> web.Response:
    """Publish the changes, then do what the flow's ``after_completion`` says."""
    emulator = request.app[EMULATOR]
    visit.version += 1
    deliveries = emulator.webhooks.publish(changes)
    await emulator.webhooks.settle(deliveries, timeout=emulator.settle_timeout)
    completion = (visit.flow or {}).get("after_completion") or {"type": "portal_homepage"}
    if completion["type"] == "redirect":
        visit.finished = True
        response = see_other(completion["redirect"]["return_url"])
        response.del_cookie(COOKIE, path="/p/")
        return response
    if completion["type"] == "hosted_confirmation":
        visit.finished = True
        visit.confirmation = (completion.get("hosted_confirmation") or {}).get(
            "custom_message"
        ) or notice
        return see_other(f"{HOME}/done")
    visit.flow = None
    visit.notice = notice
    return see_other(HOME)


# -- handlers --------------------------------------------------------------------------


async def open_session(request: web.Request) -> web.Response:
    """``GET /p/session/<secret>``: use the URL up, start a visit."""
    emulator = request.app[EMULATOR]
    session = emulator.store.sessions.get(request.match_info["token"])
    if session is None:
        raise PageError(
            404,
            "Link not valid",
            "This billing portal link is not valid. Open the portal again from the site.",
        )
    if session.opened:
        raise PageError(
            410,
            "Link already used",
            "This billing portal link has already been used: each link opens the portal once. "
            "Open the portal again from the site.",
            return_url=session.return_url,
        )
    now = emulator.clock()
    if now >= session.expires_at:
        login = session.after_expiration is not None
        raise PageError(
            410,
            "Link expired",
            "This billing portal link has expired. "
            + (
                "Sign in again with your email address to get a new link."
                if login
                else "Open the portal again from the site."
            ),
            return_url=session.return_url,
        )
    session.opened = True
    visit = PortalVisit(
        id=secrets.token_urlsafe(32),
        csrf_token=secrets.token_urlsafe(32),
        session=session,
        expires_at=now + emulator.visit_ttl,
        flow=session.flow,
    )
    remember(emulator.store.visits, visit.id, visit, emulator.max_remembered)
    response = see_other(HOME if visit.flow is None else _flow_page(visit.flow))
    response.set_cookie(
        COOKIE,
        visit.id,
        path="/p/",
        httponly=True,
        samesite="Lax",
        max_age=int(emulator.visit_ttl),
    )
    return response


async def cancel_form(request: web.Request) -> web.Response:
    """The cancellation form."""
    return cancel_page(*_on_subscription(request, "cancel"))


async def home(request: web.Request) -> web.Response:
    """The portal homepage."""
    store = request.app[EMULATOR].store
    return home_page(store, _enter(request, "home"))


async def cancel(request: web.Request) -> web.Response:
    """Cancel now or at the end of the period."""
    store, visit, sub = _on_subscription(request, "cancel")
    fields = await _fields(request, visit)
    reason = _text(fields, "reason")
    feature = features(store, visit)["subscription_cancel"]
    reason_feature = feature.get("cancellation_reason") or {}
    reasons = reason_feature.get("options", ()) if reason_feature.get("enabled") else ()
    if reason and reason not in reasons:
        return cancel_page(
            store,
            visit,
            sub,
            error="Choose a reason from the list.",
            field="reason",
            typed={"reason": reason},
        )
    now = feature.get("mode") == "immediately"
    changes = store.cancel_subscription(
        sub,
        immediately=now,
        feedback=reason or None,
        prorate=feature.get("proration_behavior") == "create_prorations",
    )
    notice = (
        "Your plan was canceled."
        if now
        else f"Your plan will be canceled on {date(sub.current_period_end)}."
    )
    return await _complete(request, visit, changes, notice)


async def accept_retention(request: web.Request) -> web.Response:
    """Accept the retention coupon instead of canceling."""
    store, visit, sub = _on_subscription(request, "cancel")
    await _fields(request, visit)
    retention = ((visit.flow or {}).get("subscription_cancel") or {}).get("retention")
    if retention is None:
        raise PageError(404, "No offer", "There is no offer for this plan.")
    coupon = store.coupons[retention["coupon_offer"]["coupon"]]
    changes = store.apply_coupon(sub, coupon.id)
    return await _complete(
        request, visit, changes, f"Offer accepted: {coupon.name or coupon.id}. Thanks for staying!"
    )


async def renew(request: web.Request) -> web.Response:
    """Undo a cancellation at period end."""
    store, visit, sub = _on_subscription(request, "home")
    await _fields(request, visit)
    if not sub.cancel_at_period_end:
        return see_other(HOME)
    return await _complete(request, visit, store.renew_subscription(sub), "Your plan will renew.")


async def update_form(request: web.Request) -> web.Response:
    """Choose another price or quantity."""
    store, visit, sub = _on_subscription(request, "update")
    return update_page(store, visit, sub, _single_item(store, visit, sub))


async def update(request: web.Request) -> web.Response:
    """Switch the price and/or quantity of the subscription's item."""
    store, visit, sub = _on_subscription(request, "update")
    item = _single_item(store, visit, sub)
    fields = await _fields(request, visit)
    configuration = store.configuration_for(visit.session)
    allowed = features(store, visit)["subscription_update"].get("default_allowed_updates") or ()
    price = _text(fields, "price") or item.price
    raw_quantity = _text(fields, "quantity")
    code = _text(fields, "promotion_code")
    typed = {"price": price, "quantity": raw_quantity, "promotion_code": code}

    def refuse(message: str, field: str) -> web.Response:
        return update_page(store, visit, sub, item, error=message, field=field, typed=typed)

    if price != item.price and (
        "price" not in allowed or price not in store.offered_prices(configuration)
    ):
        return refuse("Choose one of the plans offered.", "price")
    coupons: tuple[str, ...] = ()
    if code:
        promotion = next(
            (p for p in store.promotion_codes.values() if p.code.lower() == code.lower()), None
        )
        if "promotion_code" not in allowed or promotion is None:
            return refuse("This promotion code is not valid.", "promotion_code")
        coupons = (promotion.coupon,)
    limits = store.quantity_limits(price, configuration) if "quantity" in allowed else None
    if not raw_quantity or limits is None:
        quantity = item.quantity
    elif not raw_quantity.isdigit():
        return refuse("Enter the quantity as a whole number.", "quantity")
    else:
        quantity = int(raw_quantity)
        low, high = limits
        if quantity < low or (high is not None and quantity > high):
            top = f" and {high}" if high is not None else " or more"
            return refuse(f"Choose a quantity between {low}{top}.", "quantity")
    if price == item.price and quantity == item.quantity and not coupons:
        return refuse("Choose a different plan or quantity.", "price")
    changes = store.change_item(
        sub,
        item.id,
        price=price,
        quantity=quantity,
        configuration=configuration,
        discounts=coupons,
    )
    return await _complete(request, visit, changes, "Your plan was updated.")


def _prepared(visit: PortalVisit, sub_id: str) -> dict[str, Any]:
    flow = visit.flow or {}
    prepared = flow.get("subscription_update_confirm")
    if prepared is None or prepared["subscription"] != sub_id:
        raise PageError(
            404,
            "Nothing to confirm",
            "There is no prepared change for this plan.",
            return_url=visit.session.return_url,
        )
    result: dict[str, Any] = prepared
    return result


async def confirm_form(request: web.Request) -> web.Response:
    """Review a change the app prepared (``subscription_update_confirm``)."""
    store, visit, sub = _on_subscription(request, "confirm")
    prepared = _prepared(visit, sub.id)
    item = _single_item(store, visit, sub)
    return confirm_page(store, visit, sub, item, prepared, _coupons(store, prepared))


def _coupons(store: Store, prepared: dict[str, Any]) -> tuple[str, ...]:
    """The coupon IDs of a prepared change's discounts (promotion codes resolved)."""
    return tuple(
        entry["coupon"] or store.promotion_codes[entry["promotion_code"]].coupon
        for entry in prepared["discounts"] or ()
    )


async def confirm(request: web.Request) -> web.Response:
    """Apply the prepared change."""
    store, visit, sub = _on_subscription(request, "confirm")
    prepared = _prepared(visit, sub.id)
    item = _single_item(store, visit, sub)
    await _fields(request, visit)
    change = prepared["items"][0]
    changes = store.change_item(
        sub,
        item.id,
        price=change["price"],
        quantity=change["quantity"],
        configuration=store.configuration_for(visit.session),
        discounts=_coupons(store, prepared),
    )
    return await _complete(request, visit, changes, "Your plan was updated.")


async def pause_form(request: web.Request) -> web.Response:
    """Choose how long to pause."""
    store, visit, sub = _on_subscription(request, "pause")
    return pause_page(store, visit, sub)


async def pause(request: web.Request) -> web.Response:
    """Pause collection, for some months or until resumed."""
    store, visit, sub = _on_subscription(request, "pause")
    fields = await _fields(request, visit)
    choice = _text(fields, "resume")
    if choice not in (*PAUSE_MONTHS, "never"):
        return pause_page(store, visit, sub, error="Choose how long to pause.")
    if sub.pause_collection is not None:
        return pause_page(store, visit, sub, error="This plan is already paused.")
    resumes_at = None if choice == "never" else add_months(store.clock(), int(choice))
    changes = store.pause_subscription(sub, resumes_at=resumes_at)
    return await _complete(request, visit, changes, "Your plan is paused.")


async def resume(request: web.Request) -> web.Response:
    """Resume a paused plan."""
    store, visit, sub = _on_subscription(request, "home")
    await _fields(request, visit)
    if sub.pause_collection is None:
        return see_other(HOME)
    return await _complete(request, visit, store.resume_subscription(sub), "Your plan resumed.")


def _luhn(number: str) -> bool:
    total = 0
    for index, digit in enumerate(int(char) for char in reversed(number)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def _read_card(fields: dict[str, Any], now: float) -> tuple[str, str, int, int] | tuple[str, str]:
    """The card (brand, last4, month, year), or why not: (field, message)."""
    number = _text(fields, "number").replace(" ", "").replace("-", "")
    month, year, cvc = _text(fields, "exp_month"), _text(fields, "exp_year"), _text(fields, "cvc")
    if not (number.isdigit() and number.isascii() and 12 <= len(number) <= 19) or not _luhn(number):
        return "number", "Your card number is invalid."
    if not (month.isdigit() and 1 <= int(month) <= 12):
        return "exp_month", "Your card's expiration date is invalid."
    if not year.isdigit():
        return "exp_year", "Your card's expiration date is invalid."
    exp_month, exp_year = int(month), int(year)
    if exp_year < 100:
        exp_year += 2000
    today = time.gmtime(now)
    if (exp_year, exp_month) < (today.tm_year, today.tm_mon):
        return "exp_year", "Your card's expiration date is in the past."
    if not (cvc.isdigit() and 3 <= len(cvc) <= 4):
        return "cvc", "Your card's security code is invalid."
    if number in _DECLINES:
        return "number", _DECLINES[number]
    return _brand(number), number[-4:], exp_month, exp_year


async def card_form(request: web.Request) -> web.Response:
    """The new-card form."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "payment-method")
    return card_page(store, visit)


async def save_card(request: web.Request) -> web.Response:
    """Attach the card and make it the default."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "payment-method")
    fields = await _fields(request, visit)
    card = _read_card(fields, store.clock())
    if len(card) == 2:
        field, message = card
        typed = {name: _text(fields, name) for name in ("number", "exp_month", "exp_year")}
        return card_page(store, visit, error=message, field=field, typed=typed)
    brand, last4, exp_month, exp_year = card
    changes = store.attach_card(
        store.customers[visit.session.customer],
        brand=brand,
        last4=last4,
        exp_month=exp_month,
        exp_year=exp_year,
    )
    return await _complete(request, visit, changes, "Your payment method was updated.")


async def customer_form(request: web.Request) -> web.Response:
    """Name, email, phone and address, as the configuration allows."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "customer")
    return customer_page(store, visit)


async def save_customer(request: web.Request) -> web.Response:
    """Save the billing details (``customer.updated`` if anything changed)."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "customer")
    fields = await _fields(request, visit)
    allowed = features(store, visit)["customer_update"].get("allowed_updates") or ()
    typed = {name: _text(fields, name) for names in CUSTOMER_FIELDS.values() for name, _ in names}

    def refuse(message: str, field: str) -> web.Response:
        return customer_page(store, visit, error=message, field=field, typed=typed)

    update: dict[str, Any] = {}
    for group, names in CUSTOMER_FIELDS.items():
        if group not in allowed:
            continue
        values = {name: typed[name] for name, _ in names}
        long = next((name for name, value in values.items() if len(value) > 200), None)
        if long is not None:
            return refuse("Each field takes at most 200 characters.", long)
        if group == "address":
            update["address"] = values
        else:
            update[group] = values[group] or None
    email = update.get("email")
    if email is not None and ("@" not in email or "." not in email.rpartition("@")[2]):
        return refuse("Enter a valid email address.", "email")
    country = (update.get("address") or {}).get("country", "")
    if country and not (len(country) == 2 and country.isalpha() and country.isascii()):
        return refuse("Enter the country as a 2-letter code.", "country")
    if country:
        update["address"]["country"] = country.upper()
    customer = store.customers[visit.session.customer]
    changes = store.update_customer(customer, update)
    notice = "Your billing information was updated." if changes else "Nothing changed."
    return await _complete(request, visit, changes, notice)


async def invoices(request: web.Request) -> web.Response:
    """The invoice history."""
    store = request.app[EMULATOR].store
    return invoices_page(store, _enter(request, "invoices"))


async def invoice(request: web.Request) -> web.Response:
    """One invoice's hosted page (the customer's own invoices only)."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "invoices")
    found = store.invoices.get(request.match_info["invoice"])
    if found is None or found.customer != visit.session.customer:
        raise PageError(
            404,
            "Invoice not found",
            "There is no such invoice for your account.",
            return_url=visit.session.return_url,
        )
    return invoice_page(store, visit, found)


async def done(request: web.Request) -> web.Response:
    """The hosted confirmation shown after a flow (``after_completion: hosted_confirmation``)."""
    store = request.app[EMULATOR].store
    visit = _visit(request, finished_ok=True)
    if visit.confirmation is None:
        return see_other(HOME)
    return done_page(store, visit, visit.confirmation)


def routes() -> list[web.RouteDef]:
    """The portal's routes, under ``/p``."""
    sub = "{sub:[A-Za-z0-9_]+}"
    return [
        web.get("/p/session/{token}", open_session, allow_head=False),
        web.get(HOME, home, allow_head=False),
        web.get(f"{HOME}/done", done, allow_head=False),
        web.get(f"{HOME}/invoices", invoices, allow_head=False),
        web.get(f"{HOME}/invoices/{{invoice:in_[A-Za-z0-9]+}}", invoice, allow_head=False),
        web.get(f"{HOME}/cancel/{sub}", cancel_form, allow_head=False),
        web.post(f"{HOME}/cancel/{sub}", cancel),
        web.post(f"{HOME}/retention/{sub}", accept_retention),
        web.post(f"{HOME}/renew/{sub}", renew),
        web.get(f"{HOME}/update/{sub}", update_form, allow_head=False),
        web.post(f"{HOME}/update/{sub}", update),
        web.get(f"{HOME}/confirm/{sub}", confirm_form, allow_head=False),
        web.post(f"{HOME}/confirm/{sub}", confirm),
        web.get(f"{HOME}/pause/{sub}", pause_form, allow_head=False),
        web.post(f"{HOME}/pause/{sub}", pause),
        web.post(f"{HOME}/resume/{sub}", resume),
        web.get(f"{HOME}/payment-method", card_form, allow_head=False),
        web.post(f"{HOME}/payment-method", save_card),
        web.get(f"{HOME}/customer", customer_form, allow_head=False),
        web.post(f"{HOME}/customer", save_customer),
    ]
