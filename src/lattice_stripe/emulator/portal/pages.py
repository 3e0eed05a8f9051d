"""The portal's pages: HTML rendered from the store and the visit, never from a request.

Every value shown is escaped; the document skeleton is a
:class:`string.Template` and the stylesheet is ``portal.css`` beside this
module (inlined, since the pages' CSP allows no other origin). Handlers in
:mod:`lattice_stripe.emulator.portal.handlers` decide what to show; this
module only says how it looks.
"""

import time
from html import escape
from importlib import resources
from string import Template
from typing import Any, NoReturn
from urllib.parse import urlsplit

from aiohttp import web

from lattice_stripe.emulator.state import PortalVisit, Store, Subscription, SubscriptionItem

__all__ = [
    "CUSTOMER_FIELDS",
    "HOME",
    "MONTH",
    "PageError",
    "cancel_page",
    "confirm_page",
    "card_page",
    "customer_page",
    "date",
    "done_page",
    "error_page",
    "home_page",
    "pause_page",
    "redirect",
    "see_other",
    "update_page",
]

HOME = "/p/portal"
MONTH = 30 * 86_400

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
_CURRENCY = {"usd": "$", "eur": "€", "gbp": "£"}
_STYLE = resources.files(__package__).joinpath("portal.css").read_text(encoding="utf-8")
_DOCUMENT = Template(
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>$title</title><style>$style</style></head><body>"
    "<header>$header</header><main>$body</main>"
    "<footer>Test mode: the lattice-stripe emulator, not Stripe.</footer></body></html>"
)
CUSTOMER_FIELDS = {
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
    return _DOCUMENT.substitute(title=_e(title), style=_STYLE, header=header, body=body)


def _html(text: str, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=text, content_type="text/html", headers=_SECURITY_HEADERS
    )


def see_other(location: str) -> web.Response:
    """A 303 redirect (after a POST, the browser follows with a GET)."""
    return web.Response(status=303, headers={"Location": location, **_SECURITY_HEADERS})


def redirect(location: str) -> NoReturn:
    """Send the browser elsewhere (raised, so it ends any handler)."""
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


def date(timestamp: float) -> str:
    """A date as the portal writes it (``March 3, 2027``)."""
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
        until = f" until {date(resumes)}" if resumes else ""
        return f'<span class="status paused">Paused</span> <span class="muted">{until}</span>'
    if sub.cancel_at_period_end and sub.cancel_at is not None:
        return (
            '<span class="status canceling">Canceling</span> '
            f'<span class="muted">Cancels on {date(sub.cancel_at)}</span>'
        )
    if sub.status == "trialing" and sub.trial_end is not None:
        return (
            '<span class="status trialing">Trial</span> '
            f'<span class="muted">Trial ends {date(sub.trial_end)}</span>'
        )
    return (
        f'<span class="status">{_e(sub.status.replace("_", " ").title())}</span> '
        f'<span class="muted">Renews on {date(sub.current_period_end)}</span>'
    )


def home_page(store: Store, visit: PortalVisit) -> web.Response:
    """The portal homepage: subscriptions, payment method, billing details."""
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


def cancel_page(
    store: Store, visit: PortalVisit, sub: Subscription, *, error: str | None = None
) -> web.Response:
    """The cancellation form, with the retention offer when the flow has one."""
    feature = store.feature("subscription_cancel")
    default = "period_end" if feature.get("mode") == "at_period_end" else "now"
    choices = (
        ("period_end", f"At the end of the billing period, on {date(sub.current_period_end)}"),
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


def update_page(
    store: Store,
    visit: PortalVisit,
    sub: Subscription,
    item: SubscriptionItem,
    *,
    error: str | None = None,
) -> web.Response:
    """The plan switcher for the subscription's one item."""
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


def pause_page(
    store: Store, visit: PortalVisit, sub: Subscription, *, error: str | None = None
) -> web.Response:
    """How long to pause."""
    now = store.clock()
    choices = (
        ("1", f"For 1 month (resumes {date(now + MONTH)})"),
        ("3", f"For 3 months (resumes {date(now + 3 * MONTH)})"),
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


def card_page(store: Store, visit: PortalVisit, *, error: str | None = None) -> web.Response:
    """The new-card form."""
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


def customer_page(store: Store, visit: PortalVisit, *, error: str | None = None) -> web.Response:
    """Name, email, phone and address, as the configuration allows."""
    customer = store.customers[visit.session.customer]
    allowed = store.feature("customer_update").get("allowed_updates", ())
    inputs = []
    for group, names in CUSTOMER_FIELDS.items():
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


def done_page(store: Store, visit: PortalVisit, message: str) -> web.Response:
    """The hosted confirmation shown after a flow."""
    content = f'<section><h1>All done</h1><p id="confirmation">{_e(message)}</p></section>'
    return _page(store, visit, "All done", content)


def confirm_page(
    store: Store,
    visit: PortalVisit,
    sub: Subscription,
    item: SubscriptionItem,
    prepared: dict[str, Any],
) -> web.Response:
    """The review of a change the app prepared (``subscription_update_confirm``)."""
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
