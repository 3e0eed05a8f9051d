"""The portal's pages: HTML rendered from the store and the visit, never from a request.

Every value shown is escaped; the document skeleton is a
:class:`string.Template` and the stylesheet is ``portal.css`` beside this
module (inlined, since the pages' CSP allows no other origin). Handlers in
:mod:`lattice_stripe.emulator._portal.handlers` decide what to show; this
module only says how it looks.
"""

import time
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from string import Template
from typing import Any, NoReturn
from urllib.parse import urlsplit

from aiohttp import web

from lattice_stripe.emulator._state import (
    ChangePreview,
    Invoice,
    PortalVisit,
    Store,
    Subscription,
    SubscriptionItem,
    add_months,
)

__all__ = [
    "CUSTOMER_FIELDS",
    "HOME",
    "PAUSE_MONTHS",
    "PageError",
    "cancel_page",
    "confirm_page",
    "card_page",
    "customer_page",
    "date",
    "discount_label",
    "done_page",
    "error_page",
    "features",
    "home_page",
    "invoice_page",
    "invoices_page",
    "pause_page",
    "pause_offered",
    "redirect",
    "see_other",
    "update_offered",
    "update_page",
]

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


def features(store: Store, visit: PortalVisit) -> dict[str, Any]:
    """The ``features`` of the configuration the visit's session renders."""
    found: dict[str, Any] = store.configuration_for(visit.session)["features"]
    return found


def pause_offered(store: Store, visit: PortalVisit) -> bool:
    """Pausing is offered unless the configuration has ``subscription_pause`` disabled."""
    return bool((features(store, visit).get("subscription_pause") or {}).get("enabled", True))


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
    """A plain error page: what happened and how to get back to the site."""
    back = _return_link(return_url) or (
        '<p class="muted" id="return-hint">Close this page and go back to the site you came '
        "from to open the billing portal again.</p>"
    )
    body = (
        f'<section><h1 id="error-title">{_e(title)}</h1><p id="error-message">{_e(message)}</p>'
        f"{back}</section>"
    )
    header = '<strong>Billing portal</strong><span class="badge">TEST MODE</span>'
    return _html(_document(title, f"<div>{header}</div>", body), status=status)


def _page(
    store: Store,
    visit: PortalVisit,
    title: str,
    content: str,
    *,
    status: int = 200,
    home_link: bool = True,
) -> web.Response:
    customer = store.customers[visit.session.customer]
    profile = store.configuration_for(visit.session).get("business_profile") or {}
    headline = profile.get("headline") or "Billing portal"
    policies = " ".join(
        f'<a id="{element}" href="{_e(profile[key])}">{label}</a>'
        for key, element, label in (
            ("privacy_policy_url", "privacy-policy", "Privacy policy"),
            ("terms_of_service_url", "terms-of-service", "Terms of service"),
        )
        if profile.get(key)
    )
    header = (
        f'<div><strong>{_e(headline)}</strong><span class="badge">TEST MODE</span></div>'
        f'<div class="muted">{_e(customer.name or "")} {_e(customer.email or "")}</div>'
    )
    notice = ""
    if visit.notice:
        notice = f'<div class="notice" id="notice">{_e(visit.notice)}</div>'
        visit.notice = None
    links = _return_link(visit.session.return_url)
    if home_link and visit.flow is None:
        # A deep-linked session never sees the homepage: its way out is the site.
        links = (
            f'<a id="portal-home" class="button secondary" href="{HOME}">'
            f"&larr; Back to the portal</a> {links}"
        )
    return _html(
        _document(
            title,
            header,
            f"{notice}{content}<p class=actions>{links}</p>"
            + (f'<nav class="policies muted">{policies}</nav>' if policies else ""),
        ),
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
    # The version makes a form rendered before a change stale (Back, then submit again).
    return (
        f'<input type="hidden" name="csrf_token" value="{_e(visit.csrf_token)}">'
        f'<input type="hidden" name="version" value="{visit.version}">'
    )


def _invalid(field: str | None, name: str) -> str:
    """The attributes that mark ``name`` as the field a refused form was refused for."""
    return ' class="invalid" aria-invalid="true"' if field == name else ""


def discount_label(store: Store, coupon_id: str, amount: int, currency: str) -> str:
    """A discount by name and by what it takes off ``amount`` (``25% off: -$7.25``)."""
    coupon = store.coupons.get(coupon_id)
    name = (coupon.name if coupon else None) or coupon_id
    saved = amount - store.discounted(amount, (coupon_id,))
    return f"{_e(name)} (&minus;{_e(_money(saved, currency))})"


def _preview(store: Store, preview: ChangePreview, *, element: str = "preview") -> str:
    def money(amount: int) -> str:
        return _e(_money(amount, preview.currency))

    if preview.resets_anchor:
        credit = (
            f" ({money(preview.next_amount)} for the new plan, less {money(-preview.proration)} "
            "for the unused time on your current plan)"
            if preview.proration
            else ""
        )
        detail = (
            f"Amount due today: <strong>{money(preview.due_today)}</strong>{credit}. "
            f"The new billing period starts today; it renews on {_e(date(preview.next_date))} "
            f"for {money(preview.next_amount)}."
        )
    else:
        prorated = (
            f", including {money(preview.proration)} of prorations for the rest of this period"
            if preview.proration
            else ""
        )
        detail = (
            f"Amount due today: <strong>{money(preview.due_today)}</strong>. "
            f"Next invoice on {_e(date(preview.next_date))}: {money(preview.next_amount)}"
            f"{prorated}."
        )
    return f'<span class="muted proration" id="{_e(element)}">{detail}</span>'


def _money(amount: int, currency: str) -> str:
    symbol = _CURRENCY.get(currency, currency.upper() + " ")
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount) / 100:,.2f}"


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
    if sub.pause_collection is not None:
        resumes = sub.pause_collection.get("resumes_at")
        until = f"Payments resume on {date(resumes)}" if resumes else "Until you resume it"
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


def _discounts(store: Store, sub: Subscription) -> str:
    gross = sum(store.prices[item.price].unit_amount * item.quantity for item in sub.items)
    currency = store.prices[sub.items[0].price].currency
    labels = [discount_label(store, coupon, gross, currency) for coupon in sub.discounts]
    return ", ".join(labels)


def update_offered(store: Store, visit: PortalVisit) -> bool:
    """The configuration lets a customer change a plan: enabled, with something to change."""
    update = features(store, visit)["subscription_update"]
    return bool(update["enabled"] and update.get("default_allowed_updates"))


def _actions(store: Store, visit: PortalVisit, sub: Subscription) -> str:
    enabled = features(store, visit)
    sub_id = _e(sub.id)
    actions = []
    if (
        update_offered(store, visit)
        and len(sub.items) == 1
        and sub.status in ("active", "trialing")
    ):
        actions.append(
            f'<a class="button secondary" id="update-{sub_id}" '
            f'href="{HOME}/update/{sub_id}">Update plan</a>'
        )
    if sub.cancel_at_period_end:
        actions.append(
            f'<form method="post" action="{HOME}/renew/{sub_id}">{_csrf(visit)}'
            f'<button id="renew-{sub_id}">Renew plan</button></form>'
        )
    elif sub.pause_collection is not None:
        actions.append(
            f'<form method="post" action="{HOME}/resume/{sub_id}">{_csrf(visit)}'
            f'<button id="resume-{sub_id}">Resume plan</button></form>'
        )
    elif pause_offered(store, visit):
        actions.append(
            f'<a class="button secondary" id="pause-{sub_id}" '
            f'href="{HOME}/pause/{sub_id}">Pause plan</a>'
        )
    if enabled["subscription_cancel"]["enabled"] and not sub.cancel_at_period_end:
        actions.append(
            f'<a class="button secondary" id="cancel-{sub_id}" '
            f'href="{HOME}/cancel/{sub_id}">Cancel plan</a>'
        )
    return "".join(actions)


def _invoice_rows(store: Store, customer_id: str, limit: int | None = None) -> str:
    invoices = store.invoices_of(customer_id)[:limit]
    rows = "".join(
        f'<tr id="invoice-{_e(invoice.id)}"><td>{_e(date(invoice.created))}</td>'
        f"<td>{_e(_money(invoice.amount_paid, invoice.currency))}</td>"
        f'<td><span class="status">{_e(invoice.status.title())}</span></td>'
        f'<td><a href="{HOME}/invoices/{_e(invoice.id)}">{_e(invoice.number)}</a></td></tr>'
        for invoice in invoices
    )
    if not rows:
        return '<p class="muted" id="no-invoices">No invoices yet.</p>'
    return (
        '<table class="invoices"><thead><tr><th>Date</th><th>Amount</th><th>Status</th>'
        f"<th>Invoice</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def home_page(store: Store, visit: PortalVisit) -> web.Response:
    """The portal homepage: plans, payment method, billing details, invoice history."""
    customer = store.customers[visit.session.customer]
    enabled = features(store, visit)
    cards = []
    for sub in store.subscriptions_of(customer.id):
        if not sub.is_live:
            continue
        lines = "".join(
            f"<div>{_price_label(store, item.price, item.quantity)}</div>" for item in sub.items
        )
        discounts = _discounts(store, sub)
        if discounts:
            lines += f'<div class="muted" id="discounts-{_e(sub.id)}">Discount: {discounts}</div>'
        cards.append(
            f'<div class="subscription" id="subscription-{_e(sub.id)}">'
            f'<div class="row">{lines and f"<div>{lines}</div>"}'
            f"<div>{_status(store, sub)}</div></div>"
            f'<div class="actions">{_actions(store, visit, sub)}</div></div>'
        )
    content = (
        "<section><h2>Current plan</h2>"
        + ("<hr>".join(cards) or '<p class="muted" id="no-subscriptions">No active plans.</p>')
        + "</section>"
    )
    if enabled["payment_method_update"]["enabled"]:
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
    if enabled["customer_update"]["enabled"]:
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
    if (enabled.get("invoice_history") or {}).get("enabled"):
        content += (
            f'<section id="invoice-history"><h2>Invoice history</h2>'
            f"{_invoice_rows(store, customer.id, limit=5)}"
            f'<div class="actions"><a class="button secondary" id="all-invoices" '
            f'href="{HOME}/invoices">All invoices</a></div></section>'
        )
    return _page(store, visit, "Billing portal", content, home_link=False)


def invoices_page(store: Store, visit: PortalVisit) -> web.Response:
    """Every invoice of the customer, newest first."""
    rows = _invoice_rows(store, visit.session.customer)
    content = f'<h1>Invoice history</h1><section id="invoice-list">{rows}</section>'
    return _page(store, visit, "Invoice history", content)


def invoice_page(store: Store, visit: PortalVisit, invoice: Invoice) -> web.Response:
    """The hosted invoice page: what was billed, for which period, and that it is paid."""
    customer = store.customers[invoice.customer]
    content = (
        f'<h1>Invoice {_e(invoice.number)}</h1><section id="invoice">'
        f'<div class="row"><div><strong>{_e(_money(invoice.amount_paid, invoice.currency))}'
        f'</strong> <span class="status">{_e(invoice.status.title())}</span></div>'
        f'<div class="muted">Paid on {_e(date(invoice.created))}</div></div>'
        f"<p>{_e(invoice.description)}: {_e(date(invoice.period_start))} &ndash; "
        f"{_e(date(invoice.period_end))}</p>"
        f'<p class="muted">Billed to {_e(customer.name or customer.id)}'
        f"{' (' + _e(customer.email) + ')' if customer.email else ''}</p>"
        f'<div class="actions"><a class="button secondary" id="invoice-history-link" '
        f'href="{HOME}/invoices">All invoices</a></div></section>'
    )
    return _page(store, visit, f"Invoice {invoice.number}", content)


def cancel_page(
    store: Store,
    visit: PortalVisit,
    sub: Subscription,
    *,
    error: str | None = None,
    field: str | None = None,
    typed: Mapping[str, str] | None = None,
) -> web.Response:
    """The cancellation form, with the retention offer when the flow has one."""
    typed = typed or {}
    feature = features(store, visit)["subscription_cancel"]
    # The configuration's mode decides when the plan ends, as in Stripe's portal.
    if feature.get("mode") == "immediately":
        when = "Your plan will be canceled immediately."
        if feature.get("proration_behavior") == "create_prorations":
            credit = _money(store.unused_credit(sub), store.prices[sub.items[0].price].currency)
            when += f" The unused time, {credit}, is credited to your account balance."
    else:
        when = (
            "Your plan will be canceled, but it stays available until the end of your billing "
            f"period on {date(sub.current_period_end)}."
        )
    reasons = ""
    reason_feature = feature.get("cancellation_reason") or {}
    if reason_feature.get("enabled"):
        picked = typed.get("reason", "")
        options = "".join(
            f'<option value="{_e(option)}"{" selected" if option == picked else ""}>'
            f"{_e(option.replace('_', ' ').capitalize())}</option>"
            for option in reason_feature.get("options", ())
        )
        reasons = (
            '<label for="reason">Why are you canceling? (optional)</label>'
            f'<select name="reason" id="reason"{_invalid(field, "reason")}>'
            f'<option value="">Prefer not to say</option>{options}</select>'
        )
    offer = ""
    retention = ((visit.flow or {}).get("subscription_cancel") or {}).get("retention")
    if retention is not None:
        coupon = store.coupons[retention["coupon_offer"]["coupon"]]
        amount = store.period_amount(sub, coupons=())
        currency = store.prices[sub.items[0].price].currency
        offer = (
            f'<section id="retention-offer"><h2>Before you go</h2>'
            f"<p>Stay and get <strong>{discount_label(store, coupon.id, amount, currency)}"
            "</strong> on your plan.</p>"
            f'<form method="post" action="{HOME}/retention/{_e(sub.id)}">{_csrf(visit)}'
            '<button id="accept-offer">Accept offer</button></form></section>'
        )
    content = (
        f"{offer}<section><p>{_plan_label(store, sub)}</p>"
        f'<form method="post" action="{HOME}/cancel/{_e(sub.id)}">{_csrf(visit)}'
        f'<p id="cancel-when">{_e(when)}</p>{reasons}'
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
    field: str | None = None,
    typed: Mapping[str, str] | None = None,
) -> web.Response:
    """The plan switcher for the subscription's one item, as the configuration allows.

    Only the configured prices are offered, and only when ``price`` is among
    ``default_allowed_updates``; quantity only with ``quantity`` allowed and the
    product's ``adjustable_quantity`` enabled; a promotion code field only with
    ``promotion_code`` allowed.
    """
    typed = typed or {}
    configuration = store.configuration_for(visit.session)
    allowed = features(store, visit)["subscription_update"].get("default_allowed_updates") or ()
    chosen = typed.get("price", item.price)
    options = []
    if "price" in allowed:
        for price in store.offered_prices(configuration):
            preview = ""
            if price != item.price:
                preview = "<br>" + _preview(
                    store,
                    store.preview_change(
                        sub, item, price=price, quantity=item.quantity, configuration=configuration
                    ),
                    element=f"preview-{price}",
                )
            options.append(
                f'<label class="choice"><input type="radio" name="price" id="price-{_e(price)}" '
                f'value="{_e(price)}"{" checked" if price == chosen else ""}'
                f"{_invalid(field, 'price')}><span>{_price_label(store, price)}{preview}"
                "</span></label>"
            )
    plans = f"<label>Choose a plan</label>{''.join(options)}" if options else ""
    limits = store.quantity_limits(item.price, configuration) if "quantity" in allowed else None
    quantity = ""
    if limits is not None:
        low, high = limits
        maximum = "" if high is None else f' max="{_e(high)}"'
        quantity = (
            '<label for="quantity">Quantity</label>'
            f'<input type="number" name="quantity" id="quantity" '
            f'value="{_e(typed.get("quantity", item.quantity))}" '
            f'min="{_e(low)}"{maximum}{_invalid(field, "quantity")}>'
        )
    code = ""
    if "promotion_code" in allowed:
        code = (
            '<label for="promotion-code">Promotion code (optional)</label>'
            f'<input name="promotion_code" id="promotion-code" '
            f'value="{_e(typed.get("promotion_code", ""))}"{_invalid(field, "promotion_code")}>'
        )
    content = (
        f"<section><p>Current: {_price_label(store, item.price, item.quantity)}</p>"
        f'<form method="post" action="{HOME}/update/{_e(sub.id)}">{_csrf(visit)}'
        f"{plans}{quantity}{code}"
        '<div class="actions"><button id="confirm-update">Update plan</button></div>'
        "</form></section>"
    )
    return _form_page(store, visit, "Update your plan", content, error=error)


PAUSE_MONTHS = ("1", "3")


def pause_page(
    store: Store,
    visit: PortalVisit,
    sub: Subscription,
    *,
    error: str | None = None,
    typed: Mapping[str, str] | None = None,
) -> web.Response:
    """How long to pause, in calendar months (or until resumed)."""
    now = store.clock()
    chosen = (typed or {}).get("resume", "1")
    choices = [
        (
            months,
            f"For {months} month{'s' if months != '1' else ''} "
            f"(payments resume {date(add_months(now, int(months)))})",
        )
        for months in PAUSE_MONTHS
    ]
    choices.append(("never", "Until I resume it"))
    radios = "".join(
        f'<label class="choice"><input type="radio" name="resume" id="resume-{value}" '
        f'value="{value}"{" checked" if value == chosen else ""}>{_e(label)}</label>'
        for value, label in choices
    )
    content = (
        "<section>"
        f"<p>{_plan_label(store, sub)}</p>"
        "<p class=muted>While payments are paused, invoices are voided: you are not charged. "
        "The plan stays yours.</p>"
        f'<form method="post" action="{HOME}/pause/{_e(sub.id)}">{_csrf(visit)}{radios}'
        '<div class="actions"><button id="confirm-pause">Pause plan</button></div>'
        "</form></section>"
    )
    return _form_page(store, visit, "Pause your plan", content, error=error)


_CARD_INPUTS = (
    ("number", "card-number", "Card number", ' autocomplete="cc-number"'),
    ("exp_month", "exp-month", "Expiry month", ' placeholder="MM"'),
    ("exp_year", "exp-year", "Expiry year", ' placeholder="YYYY"'),
    ("cvc", "cvc", "CVC", ' autocomplete="cc-csc"'),
)


def card_page(
    store: Store,
    visit: PortalVisit,
    *,
    error: str | None = None,
    field: str | None = None,
    typed: Mapping[str, str] | None = None,
) -> web.Response:
    """The new-card form; after a refusal, what was typed is kept (never the CVC)."""
    typed = typed or {}
    inputs = []
    for name, element, label, extra in _CARD_INPUTS:
        value = "" if name == "cvc" else typed.get(name, "")
        inputs.append(
            f'<div><label for="{element}">{label}</label>'
            f'<input name="{name}" id="{element}" inputmode="numeric" value="{_e(value)}"'
            f"{extra}{_invalid(field, name)}></div>"
        )
    content = (
        "<section>"
        '<p class="muted">Test mode: use 4242 4242 4242 4242, a future date and any CVC; '
        "4000 0000 0000 0002 is declined.</p>"
        f'<form method="post" action="{HOME}/payment-method">{_csrf(visit)}'
        f'{inputs[0]}<div class="row">{"".join(inputs[1:])}</div>'
        '<div class="actions"><button id="save-card">Save card</button></div></form></section>'
    )
    return _form_page(store, visit, "Update payment method", content, error=error)


def customer_page(
    store: Store,
    visit: PortalVisit,
    *,
    error: str | None = None,
    field: str | None = None,
    typed: Mapping[str, str] | None = None,
) -> web.Response:
    """Name, email, phone and address, as the configuration allows."""
    customer = store.customers[visit.session.customer]
    allowed = features(store, visit)["customer_update"].get("allowed_updates") or ()
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
            if typed is not None:
                value = typed.get(name, "")
            inputs.append(
                f'<label for="field-{name}">{_e(label)}</label>'
                f'<input name="{name}" id="field-{name}" value="{_e(value or "")}"'
                f"{_invalid(field, name)}>"
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
    coupons: Sequence[str],
) -> web.Response:
    """The review of a change the app prepared: the new plan, its discounts, what is due."""
    change = prepared["items"][0]
    new_price = change["price"] or item.price
    price = store.prices[new_price]
    gross = price.unit_amount * change["quantity"]
    discounts = ", ".join(
        discount_label(store, coupon, gross, price.currency) for coupon in coupons
    )
    preview = store.preview_change(
        sub,
        item,
        price=new_price,
        quantity=change["quantity"],
        configuration=store.configuration_for(visit.session),
        coupons=coupons,
    )
    content = (
        "<section>"
        f"<p>Current: {_price_label(store, item.price, item.quantity)}</p>"
        f'<p id="new-plan">New: {_price_label(store, new_price, change["quantity"])}</p>'
        + (
            f'<p class="muted" id="confirm-discounts">Discounts: {discounts}</p>'
            if discounts
            else ""
        )
        + f"<p>{_preview(store, preview)}</p>"
        + f'<form method="post" action="{HOME}/confirm/{_e(sub.id)}">{_csrf(visit)}'
        '<div class="actions"><button id="confirm-update">Confirm</button></div>'
        "</form></section>"
    )
    return _form_page(store, visit, "Confirm your new plan", content)
