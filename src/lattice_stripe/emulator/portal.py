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
from html import escape
from typing import Any, NoReturn
from urllib.parse import urlsplit

from aiohttp import web

from lattice_stripe.core.codec import decode_form
from lattice_stripe.emulator.engine import EMULATOR
from lattice_stripe.emulator.state import (
    Change,
    PortalVisit,
    Store,
    Subscription,
    SubscriptionItem,
)

__all__ = ["COOKIE", "PageError", "error_page", "routes"]

COOKIE = "lattice_portal"
HOME = "/p/portal"

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
    ),
    # The session URL is a credential: never send it on as a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_PAGES = {
    "subscription_cancel": "cancel",
    "subscription_update": "update",
    "subscription_update_confirm": "confirm",
    "subscription_pause": "pause",
    "payment_method_update": "payment-method",
    "customer_update": "customer",
}
_CURRENCY = {"usd": "$", "eur": "€", "gbp": "£"}
_MONTH = 30 * 86_400
_DECLINES = {
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
    "4000000000000069": "Your card has expired.",
    "4000000000000127": "Your card's security code is incorrect.",
}
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f6f8fa;color:#1a1f36;line-height:1.45}
header{background:#fff;border-bottom:1px solid #e3e8ee;padding:14px 32px;display:flex;
justify-content:space-between;align-items:center;gap:16px}
header strong{font-size:15px}
.badge{background:#ffde92;color:#5d4200;font-size:12px;padding:2px 8px;border-radius:4px;
font-weight:600;margin-left:8px}
main{max-width:720px;margin:28px auto;padding:0 16px}
section{background:#fff;border:1px solid #e3e8ee;border-radius:8px;padding:18px 24px;
margin-bottom:18px}
h1{font-size:22px;margin:0 0 18px}
h2{font-size:15px;margin:0 0 10px;color:#3c4257;text-transform:uppercase;letter-spacing:.04em}
.notice{background:#e3f9e5;border:1px solid #8bd6a1;padding:12px 16px;border-radius:6px;
margin-bottom:18px}
.error{background:#fde8e8;border:1px solid #f5a3a3;padding:12px 16px;border-radius:6px;
margin-bottom:18px}
.row{display:flex;justify-content:space-between;align-items:center;gap:12px;flex-wrap:wrap}
.actions{display:flex;gap:8px;flex-wrap:wrap;margin-top:10px}
.actions form{margin:0}
button,.button{background:#635bff;color:#fff;border:0;border-radius:6px;padding:8px 14px;
font-size:14px;cursor:pointer;text-decoration:none;display:inline-block}
.secondary{background:#fff;color:#3c4257;border:1px solid #d5dbe1}
.danger{background:#df1b41}
label{display:block;margin:12px 0 4px;font-weight:500}
label.choice{font-weight:400;display:flex;gap:8px;align-items:center}
input,select{padding:8px;border:1px solid #d5dbe1;border-radius:6px;font-size:14px;
width:100%;box-sizing:border-box}
input[type=radio]{width:auto}
.muted{color:#697386;font-size:14px}
.status{font-size:12px;font-weight:600;padding:2px 8px;border-radius:10px;background:#d7f7c2;
color:#05690d}
.status.paused,.status.canceling{background:#fcedb9;color:#a04100}
.status.trialing{background:#cff5f6;color:#0055bc}
footer{text-align:center;color:#8792a2;font-size:12px;margin:28px}
"""


class PageError(Exception):
    """A portal request that ends on an error page (never the portal)."""

    def __init__(
        self, status: int, title: str, message: str, *, return_url: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.return_url = return_url


# -- rendering -------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _document(title: str, header: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header>{header}</header><main>{body}</main>"
        "<footer>Test mode: the lattice-stripe emulator, not Stripe.</footer></body></html>"
    )


def _html(text: str, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=text, content_type="text/html", headers=_SECURITY_HEADERS
    )


def see_other(location: str) -> web.Response:
    """A 303 redirect (after a POST, the browser follows with a GET)."""
    return web.Response(status=303, headers={"Location": location, **_SECURITY_HEADERS})


def _redirect(location: str) -> NoReturn:
    raise web.HTTPSeeOther(location, headers=_SECURITY_HEADERS)


def _return_link(return_url: str | None) -> str:
    if not return_url:
        return ""
    host = urlsplit(return_url).netloc
    return (
        f'<a id="return-link" class="button secondary" href="{_e(return_url)}">'
        f"&larr; Return to {_e(host)}</a>"
    )


def error_page(
    status: int, title: str, message: str, *, return_url: str | None = None
) -> web.Response:
    """A plain error page: what happened and how to get back."""
    body = (
        f'<section><h1 id="error-title">{_e(title)}</h1><p id="error-message">{_e(message)}</p>'
        f"{_return_link(return_url)}</section>"
    )
    header = '<strong>Billing portal</strong><span class="badge">TEST MODE</span>'
    return _html(_document(title, f"<div>{header}</div>", body), status=status)


def _page(
    store: Store, visit: PortalVisit, title: str, content: str, *, status: int = 200
) -> web.Response:
    customer = store.customers[visit.session.customer]
    profile = store.configuration.get("business_profile") or {}
    headline = profile.get("headline") or "Billing portal"
    header = (
        f'<div><strong>{_e(headline)}</strong><span class="badge">TEST MODE</span></div>'
        f'<div class="muted">{_e(customer.name or "")} {_e(customer.email or "")}</div>'
    )
    notice = ""
    if visit.notice:
        notice = f'<div class="notice" id="notice">{_e(visit.notice)}</div>'
        visit.notice = None
    back = _return_link(visit.session.return_url)
    return _html(
        _document(title, header, f"{notice}{content}<p>{back}</p>"),
        status=status,
    )


def _form_page(
    store: Store, visit: PortalVisit, title: str, content: str, *, error: str | None = None
) -> web.Response:
    """A page headed ``title``; after a refused submission, the reason first and status 400."""
    box = "" if error is None else f'<div class="error" id="form-error">{_e(error)}</div>'
    return _page(
        store, visit, title, f"<h1>{_e(title)}</h1>{box}{content}", status=400 if error else 200
    )


def _csrf(visit: PortalVisit) -> str:
    return f'<input type="hidden" name="csrf_token" value="{_e(visit.csrf_token)}">'


def _money(amount: int, currency: str) -> str:
    symbol = _CURRENCY.get(currency, currency.upper() + " ")
    return f"{symbol}{amount / 100:,.2f}"


def _date(timestamp: float) -> str:
    moment = time.gmtime(timestamp)
    return f"{time.strftime('%B', moment)} {moment.tm_mday}, {moment.tm_year}"


def _price_label(store: Store, price_id: str, quantity: int = 1) -> str:
    price = store.prices[price_id]
    product = store.products[price.product].name
    amount = _money(price.unit_amount * quantity, price.currency)
    seats = f" &times; {quantity}" if quantity != 1 else ""
    return f"{_e(product)}{seats}: {_e(amount)} per {_e(price.interval)}"


def _plan_label(store: Store, sub: Subscription) -> str:
    return "".join(_price_label(store, item.price, item.quantity) for item in sub.items)


def _status(store: Store, sub: Subscription) -> str:
    if sub.status == "paused":
        resumes = (sub.pause_collection or {}).get("resumes_at")
        until = f" until {_date(resumes)}" if resumes else ""
        return f'<span class="status paused">Paused</span> <span class="muted">{until}</span>'
    if sub.cancel_at_period_end and sub.cancel_at is not None:
        return (
            '<span class="status canceling">Canceling</span> '
            f'<span class="muted">Cancels on {_date(sub.cancel_at)}</span>'
        )
    if sub.status == "trialing" and sub.trial_end is not None:
        return (
            '<span class="status trialing">Trial</span> '
            f'<span class="muted">Trial ends {_date(sub.trial_end)}</span>'
        )
    return (
        f'<span class="status">{_e(sub.status.replace("_", " ").title())}</span> '
        f'<span class="muted">Renews on {_date(sub.current_period_end)}</span>'
    )


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
            _redirect(target)
    return visit


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
    return fields


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _complete(
    request: web.Request, visit: PortalVisit, changes: Iterable[Change], notice: str
) -> web.Response:
    """Publish the changes, then do what the flow's ``after_completion`` says."""
    emulator = request.app[EMULATOR]
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
    emulator.store.visits[visit.id] = visit
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


async def home(request: web.Request) -> web.Response:
    """The portal homepage: subscriptions, payment method, billing details."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "home")
    customer = store.customers[visit.session.customer]
    features = store.configuration["features"]
    cards = []
    for sub in store.subscriptions_of(customer.id):
        if not sub.is_live:
            continue
        lines = "".join(
            f"<div>{_price_label(store, item.price, item.quantity)}</div>" for item in sub.items
        )
        discounts = ", ".join(
            store.coupons[coupon].name or coupon
            for coupon in sub.discounts
            if coupon in store.coupons
        )
        if discounts:
            lines += f'<div class="muted">Discount: {_e(discounts)}</div>'
        actions = []
        if (
            features["subscription_update"]["enabled"]
            and len(sub.items) == 1
            and sub.status in ("active", "trialing")
        ):
            actions.append(
                f'<a class="button secondary" id="update-{_e(sub.id)}" '
                f'href="{HOME}/update/{_e(sub.id)}">Update plan</a>'
            )
        if sub.cancel_at_period_end:
            actions.append(
                f'<form method="post" action="{HOME}/renew/{_e(sub.id)}">{_csrf(visit)}'
                f'<button id="renew-{_e(sub.id)}">Renew plan</button></form>'
            )
        elif sub.status == "paused":
            actions.append(
                f'<form method="post" action="{HOME}/resume/{_e(sub.id)}">{_csrf(visit)}'
                f'<button id="resume-{_e(sub.id)}">Resume plan</button></form>'
            )
        else:
            actions.append(
                f'<a class="button secondary" id="pause-{_e(sub.id)}" '
                f'href="{HOME}/pause/{_e(sub.id)}">Pause plan</a>'
            )
        if features["subscription_cancel"]["enabled"] and not sub.cancel_at_period_end:
            actions.append(
                f'<a class="button secondary" id="cancel-{_e(sub.id)}" '
                f'href="{HOME}/cancel/{_e(sub.id)}">Cancel plan</a>'
            )
        cards.append(
            f'<div class="subscription" id="subscription-{_e(sub.id)}">'
            f'<div class="row">{lines and f"<div>{lines}</div>"}'
            f"<div>{_status(store, sub)}</div></div>"
            f'<div class="actions">{"".join(actions)}</div></div>'
        )
    content = (
        "<section><h2>Current plan</h2>"
        + ("<hr>".join(cards) or '<p class="muted" id="no-subscriptions">No active plans.</p>')
        + "</section>"
    )
    if features["payment_method_update"]["enabled"]:
        method = store.payment_methods.get(customer.default_payment_method or "")
        shown = (
            f"{_e(method.brand.title())} &bull;&bull;&bull;&bull; {_e(method.last4)}"
            f' <span class="muted">Expires {method.exp_month:02d}/{method.exp_year}</span>'
            if method
            else '<span class="muted">No payment method on file.</span>'
        )
        content += (
            f'<section><h2>Payment method</h2><div id="payment-method">{shown}</div>'
            f'<div class="actions"><a class="button secondary" id="update-payment-method" '
            f'href="{HOME}/payment-method">{"Update" if method else "Add"} payment method'
            "</a></div></section>"
        )
    if features["customer_update"]["enabled"]:
        address = customer.address or {}
        where = ", ".join(
            value
            for key in ("line1", "line2", "city", "postal_code", "state", "country")
            if (value := address.get(key))
        )
        details = "".join(
            f"<div>{_e(value)}</div>"
            for value in (customer.name, customer.email, customer.phone, where)
            if value
        )
        content += (
            f'<section><h2>Billing information</h2><div id="billing-details">{details}</div>'
            f'<div class="actions"><a class="button secondary" id="update-customer" '
            f'href="{HOME}/customer">Update information</a></div></section>'
        )
    return _page(store, visit, "Billing portal", content)


def _cancel_page(
    store: Store, visit: PortalVisit, sub: Subscription, *, error: str | None = None
) -> web.Response:
    feature = store.feature("subscription_cancel")
    default = "period_end" if feature.get("mode") == "at_period_end" else "now"
    choices = (
        ("period_end", f"At the end of the billing period, on {_date(sub.current_period_end)}"),
        ("now", "Immediately"),
    )
    radios = "".join(
        f'<label class="choice"><input type="radio" name="when" id="when-{value}" '
        f'value="{value}"{" checked" if value == default else ""}>{_e(label)}</label>'
        for value, label in choices
    )
    reasons = ""
    reason_feature = feature.get("cancellation_reason") or {}
    if reason_feature.get("enabled"):
        options = "".join(
            f'<option value="{_e(option)}">{_e(option.replace("_", " ").capitalize())}</option>'
            for option in reason_feature.get("options", ())
        )
        reasons = (
            '<label for="reason">Why are you canceling? (optional)</label>'
            f'<select name="reason" id="reason"><option value="">Prefer not to say</option>'
            f"{options}</select>"
        )
    offer = ""
    retention = ((visit.flow or {}).get("subscription_cancel") or {}).get("retention")
    if retention is not None:
        coupon = store.coupons[retention["coupon_offer"]["coupon"]]
        offer = (
            f'<section id="retention-offer"><h2>Before you go</h2>'
            f"<p>Stay and get <strong>{_e(coupon.name or coupon.id)}</strong>.</p>"
            f'<form method="post" action="{HOME}/retention/{_e(sub.id)}">{_csrf(visit)}'
            '<button id="accept-offer">Accept offer</button></form></section>'
        )
    content = (
        f"{offer}<section><p>{_plan_label(store, sub)}</p>"
        f'<form method="post" action="{HOME}/cancel/{_e(sub.id)}">{_csrf(visit)}'
        f"<label>When should the plan end?</label>{radios}{reasons}"
        '<div class="actions"><button class="danger" id="confirm-cancel">Cancel plan</button>'
        f"</div></form></section>"
    )
    return _form_page(store, visit, "Cancel your plan", content, error=error)


async def cancel_form(request: web.Request) -> web.Response:
    """The cancellation form."""
    return _cancel_page(*_on_subscription(request, "cancel"))


async def cancel(request: web.Request) -> web.Response:
    """Cancel now or at the end of the period."""
    store, visit, sub = _on_subscription(request, "cancel")
    fields = await _fields(request, visit)
    when, reason = _text(fields, "when"), _text(fields, "reason")
    reason_feature = store.feature("subscription_cancel").get("cancellation_reason") or {}
    reasons = reason_feature.get("options", ()) if reason_feature.get("enabled") else ()
    if when not in ("now", "period_end"):
        return _cancel_page(store, visit, sub, error="Choose when the plan should end.")
    if reason and reason not in reasons:
        return _cancel_page(store, visit, sub, error="Choose a reason from the list.")
    changes = store.cancel_subscription(sub, immediately=when == "now", feedback=reason or None)
    notice = (
        "Your plan was canceled."
        if when == "now"
        else f"Your plan will be canceled on {_date(sub.current_period_end)}."
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


def _update_page(
    store: Store, visit: PortalVisit, sub: Subscription, *, error: str | None = None
) -> web.Response:
    item = _single_item(store, visit, sub)
    offered = store.offered_prices()
    radios = "".join(
        f'<label class="choice"><input type="radio" name="price" id="price-{_e(price)}" '
        f'value="{_e(price)}"{" checked" if price == item.price else ""}>'
        f"{_price_label(store, price)}</label>"
        for price in offered
    )
    limits = store.quantity_limits(item.price)
    quantity = ""
    if limits is not None:
        low, high = limits
        maximum = "" if high is None else f' max="{_e(high)}"'
        quantity = (
            '<label for="quantity">Quantity</label>'
            f'<input type="number" name="quantity" id="quantity" value="{item.quantity}" '
            f'min="{_e(low)}"{maximum}>'
        )
    content = (
        f"<section><p>Current: {_price_label(store, item.price, item.quantity)}</p>"
        f'<form method="post" action="{HOME}/update/{_e(sub.id)}">{_csrf(visit)}'
        f"<label>Choose a plan</label>{radios}{quantity}"
        '<div class="actions"><button id="confirm-update">Update plan</button></div>'
        "</form></section>"
    )
    return _form_page(store, visit, "Update your plan", content, error=error)


async def update_form(request: web.Request) -> web.Response:
    """Choose another price or quantity."""
    return _update_page(*_on_subscription(request, "update"))


async def update(request: web.Request) -> web.Response:
    """Switch the price and/or quantity of the subscription's item."""
    store, visit, sub = _on_subscription(request, "update")
    item = _single_item(store, visit, sub)
    fields = await _fields(request, visit)
    price = _text(fields, "price") or item.price
    if price not in store.offered_prices():
        return _update_page(store, visit, sub, error="Choose one of the plans offered.")
    raw_quantity = _text(fields, "quantity")
    limits = store.quantity_limits(price)
    if not raw_quantity or limits is None:
        quantity = item.quantity
    elif not raw_quantity.isdigit():
        return _update_page(store, visit, sub, error="Enter the quantity as a whole number.")
    else:
        quantity = int(raw_quantity)
        low, high = limits
        if quantity < low or (high is not None and quantity > high):
            top = f" and {high}" if high is not None else " or more"
            return _update_page(store, visit, sub, error=f"Choose a quantity between {low}{top}.")
    if price == item.price and quantity == item.quantity:
        return _update_page(store, visit, sub, error="Choose a different plan or quantity.")
    changes = store.change_item(sub, item.id, price=price, quantity=quantity)
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
    change = prepared["items"][0]
    new_price = change["price"] or item.price
    discounts = ", ".join(
        _e(entry["coupon"] or entry["promotion_code"]) for entry in prepared["discounts"] or ()
    )
    content = (
        "<section>"
        f"<p>Current: {_price_label(store, item.price, item.quantity)}</p>"
        f'<p id="new-plan">New: {_price_label(store, new_price, change["quantity"])}</p>'
        + (f'<p class="muted">Discounts: {discounts}</p>' if discounts else "")
        + f'<form method="post" action="{HOME}/confirm/{_e(sub.id)}">{_csrf(visit)}'
        '<div class="actions"><button id="confirm-update">Confirm</button></div>'
        "</form></section>"
    )
    return _form_page(store, visit, "Confirm your new plan", content)


async def confirm(request: web.Request) -> web.Response:
    """Apply the prepared change."""
    store, visit, sub = _on_subscription(request, "confirm")
    prepared = _prepared(visit, sub.id)
    item = _single_item(store, visit, sub)
    await _fields(request, visit)
    change = prepared["items"][0]
    coupons = tuple(
        entry["coupon"] or store.promotion_codes[entry["promotion_code"]].coupon
        for entry in prepared["discounts"] or ()
    )
    changes = store.change_item(
        sub, item.id, price=change["price"], quantity=change["quantity"], discounts=coupons
    )
    return await _complete(request, visit, changes, "Your plan was updated.")


def _pause_page(
    store: Store, visit: PortalVisit, sub: Subscription, *, error: str | None = None
) -> web.Response:
    now = store.clock()
    choices = (
        ("1", f"For 1 month (resumes {_date(now + _MONTH)})"),
        ("3", f"For 3 months (resumes {_date(now + 3 * _MONTH)})"),
        ("never", "Until I resume it"),
    )
    radios = "".join(
        f'<label class="choice"><input type="radio" name="resume" id="resume-{value}" '
        f'value="{value}"{" checked" if value == "1" else ""}>{_e(label)}</label>'
        for value, label in choices
    )
    content = (
        "<section>"
        f"<p>{_plan_label(store, sub)}</p>"
        "<p class=muted>You will not be charged while the plan is paused.</p>"
        f'<form method="post" action="{HOME}/pause/{_e(sub.id)}">{_csrf(visit)}{radios}'
        '<div class="actions"><button id="confirm-pause">Pause plan</button></div>'
        "</form></section>"
    )
    return _form_page(store, visit, "Pause your plan", content, error=error)


async def pause_form(request: web.Request) -> web.Response:
    """Choose how long to pause."""
    store, visit, sub = _on_subscription(request, "pause")
    return _pause_page(store, visit, sub)


async def pause(request: web.Request) -> web.Response:
    """Pause collection, for some months or until resumed."""
    store, visit, sub = _on_subscription(request, "pause")
    fields = await _fields(request, visit)
    choice = _text(fields, "resume")
    if choice not in ("1", "3", "never"):
        return _pause_page(store, visit, sub, error="Choose how long to pause.")
    if sub.status == "paused":
        return _pause_page(store, visit, sub, error="This plan is already paused.")
    resumes_at = None if choice == "never" else int(store.clock()) + int(choice) * _MONTH
    changes = store.pause_subscription(sub, resumes_at=resumes_at)
    return await _complete(request, visit, changes, "Your plan is paused.")


async def resume(request: web.Request) -> web.Response:
    """Resume a paused plan."""
    store, visit, sub = _on_subscription(request, "home")
    await _fields(request, visit)
    if sub.status != "paused":
        return see_other(HOME)
    return await _complete(request, visit, store.resume_subscription(sub), "Your plan resumed.")


def _card_page(store: Store, visit: PortalVisit, *, error: str | None = None) -> web.Response:
    content = (
        "<section>"
        '<p class="muted">Test mode: use 4242 4242 4242 4242, a future date and any CVC; '
        "4000 0000 0000 0002 is declined.</p>"
        f'<form method="post" action="{HOME}/payment-method">{_csrf(visit)}'
        '<label for="card-number">Card number</label>'
        '<input name="number" id="card-number" inputmode="numeric" autocomplete="cc-number">'
        '<div class="row"><div><label for="exp-month">Expiry month</label>'
        '<input name="exp_month" id="exp-month" inputmode="numeric" placeholder="MM"></div>'
        '<div><label for="exp-year">Expiry year</label>'
        '<input name="exp_year" id="exp-year" inputmode="numeric" placeholder="YYYY"></div>'
        '<div><label for="cvc">CVC</label>'
        '<input name="cvc" id="cvc" inputmode="numeric" autocomplete="cc-csc"></div></div>'
        '<div class="actions"><button id="save-card">Save card</button></div></form></section>'
    )
    return _form_page(store, visit, "Update payment method", content, error=error)


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


def _read_card(fields: dict[str, Any], now: float) -> tuple[str, str, int, int] | str:
    number = _text(fields, "number").replace(" ", "").replace("-", "")
    month, year, cvc = _text(fields, "exp_month"), _text(fields, "exp_year"), _text(fields, "cvc")
    if not (number.isdigit() and number.isascii() and 12 <= len(number) <= 19) or not _luhn(number):
        return "Your card number is invalid."
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12):
        return "Your card's expiration date is invalid."
    exp_month, exp_year = int(month), int(year)
    if exp_year < 100:
        exp_year += 2000
    today = time.gmtime(now)
    if (exp_year, exp_month) < (today.tm_year, today.tm_mon):
        return "Your card's expiration date is in the past."
    if not (cvc.isdigit() and 3 <= len(cvc) <= 4):
        return "Your card's security code is invalid."
    if number in _DECLINES:
        return _DECLINES[number]
    return _brand(number), number[-4:], exp_month, exp_year


async def card_form(request: web.Request) -> web.Response:
    """The new-card form."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "payment-method")
    return _card_page(store, visit)


async def save_card(request: web.Request) -> web.Response:
    """Attach the card and make it the default."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "payment-method")
    fields = await _fields(request, visit)
    card = _read_card(fields, store.clock())
    if isinstance(card, str):
        return _card_page(store, visit, error=card)
    brand, last4, exp_month, exp_year = card
    changes = store.attach_card(
        store.customers[visit.session.customer],
        brand=brand,
        last4=last4,
        exp_month=exp_month,
        exp_year=exp_year,
    )
    return await _complete(request, visit, changes, "Your payment method was updated.")


_CUSTOMER_FIELDS = {
    "name": (("name", "Name"),),
    "email": (("email", "Email"),),
    "phone": (("phone", "Phone"),),
    "address": (
        ("line1", "Address line 1"),
        ("line2", "Address line 2"),
        ("city", "City"),
        ("postal_code", "Postal code"),
        ("state", "State or region"),
        ("country", "Country (2-letter code)"),
    ),
}


def _customer_page(store: Store, visit: PortalVisit, *, error: str | None = None) -> web.Response:
    customer = store.customers[visit.session.customer]
    allowed = store.feature("customer_update").get("allowed_updates", ())
    inputs = []
    for group, names in _CUSTOMER_FIELDS.items():
        if group not in allowed:
            continue
        for name, label in names:
            value = (
                (customer.address or {}).get(name)
                if group == "address"
                else getattr(customer, name)
            )
            inputs.append(
                f'<label for="field-{name}">{_e(label)}</label>'
                f'<input name="{name}" id="field-{name}" value="{_e(value or "")}">'
            )
    content = (
        "<section>"
        f'<form method="post" action="{HOME}/customer">{_csrf(visit)}{"".join(inputs)}'
        '<div class="actions"><button id="save-customer">Save</button></div></form></section>'
    )
    return _form_page(store, visit, "Update billing information", content, error=error)


async def customer_form(request: web.Request) -> web.Response:
    """Name, email, phone and address, as the configuration allows."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "customer")
    return _customer_page(store, visit)


async def save_customer(request: web.Request) -> web.Response:
    """Save the billing details (``customer.updated`` if anything changed)."""
    store = request.app[EMULATOR].store
    visit = _enter(request, "customer")
    fields = await _fields(request, visit)
    allowed = store.feature("customer_update").get("allowed_updates", ())
    update: dict[str, Any] = {}
    for group, names in _CUSTOMER_FIELDS.items():
        if group not in allowed:
            continue
        values = {name: _text(fields, name) for name, _ in names}
        if any(len(value) > 200 for value in values.values()):
            return _customer_page(store, visit, error="Each field takes at most 200 characters.")
        if group == "address":
            update["address"] = values
        else:
            update[group] = values[group] or None
    email = update.get("email")
    if email is not None and ("@" not in email or "." not in email.rpartition("@")[2]):
        return _customer_page(store, visit, error="Enter a valid email address.")
    country = (update.get("address") or {}).get("country", "")
    if country and not (len(country) == 2 and country.isalpha() and country.isascii()):
        return _customer_page(store, visit, error="Enter the country as a 2-letter code.")
    if country:
        update["address"]["country"] = country.upper()
    customer = store.customers[visit.session.customer]
    changes = store.update_customer(customer, update)
    notice = "Your billing information was updated." if changes else "Nothing changed."
    return await _complete(request, visit, changes, notice)


async def done(request: web.Request) -> web.Response:
    """The hosted confirmation shown after a flow (``after_completion: hosted_confirmation``)."""
    store = request.app[EMULATOR].store
    visit = _visit(request, finished_ok=True)
    if visit.confirmation is None:
        return see_other(HOME)
    content = (
        f'<section><h1>All done</h1><p id="confirmation">{_e(visit.confirmation)}</p></section>'
    )
    return _page(store, visit, "All done", content)


def routes() -> list[web.RouteDef]:
    """The portal's routes, under ``/p``."""
    sub = "{sub:[A-Za-z0-9_]+}"
    return [
        web.get("/p/session/{token}", open_session, allow_head=False),
        web.get(HOME, home, allow_head=False),
        web.get(f"{HOME}/done", done, allow_head=False),
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
