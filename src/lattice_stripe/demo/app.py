"""The demo app: a Starlette site whose (fake) logged-in user manages billing in the portal.

It is built on :mod:`lattice_stripe.contrib.starlette`, as a real integration is:

- :func:`~lattice_stripe.contrib.starlette.stripe_lifespan` owns the one
  :class:`~lattice_stripe.AsyncClient`; the app's own lifespan, run inside it,
  reads the starting state from the Stripe API;
- ``GET /``: the account page, showing the subscription state this app knows;
- ``POST /billing/portal``: "Manage billing" and the deep links; checks the
  form's CSRF token, then :func:`~lattice_stripe.contrib.starlette.redirect_to_portal`
  answers ``303 See Other`` to a new session of the logged-in customer;
- ``GET /billing/return``: where the portal sends the customer back, and where a
  failed redirect lands with a user-safe message
  (:func:`~lattice_stripe.contrib.starlette.portal_error`); it re-reads the
  customer's subscriptions from Stripe (:func:`~lattice_stripe.abilling_state`)
  and shows them beside what the webhooks reported;
- ``POST /billing/subscribe``: subscribe again, after a cancellation
  (``POST /v1/subscriptions`` on the emulator);
- ``POST /demo/reset``: the emulator back to its seed, and this app's view with it;
- ``POST /webhooks/stripe``: :func:`~lattice_stripe.contrib.starlette.webhook_endpoint`,
  with one handler per event type that updates the state.

The state shown comes from webhooks, never from the return redirect (which
carries nothing and proves nothing).
"""

import asyncio
import contextlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from html import escape
from typing import Any

import aiohttp
import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from lattice_stripe.billing import abilling_state
from lattice_stripe.contrib.starlette import (
    get_client,
    portal_error,
    redirect_to_portal,
    stripe_lifespan,
    webhook_endpoint,
)
from lattice_stripe.core.billing import BillingState
from lattice_stripe.core.codec import decode_form
from lattice_stripe.core.errors import APIConnectionError, StripeError
from lattice_stripe.core.webhooks import Event, WebhookHandler

__all__ = ["DemoSettings", "DemoState", "create_app"]

# Every deep link the library supports, and the button that opens it.
_FLOWS = {
    "subscription_cancel": "Cancel subscription",
    "retention": "Cancel, with an offer to stay",
    "subscription_update": "Change plan",
    "subscription_update_confirm": "Upgrade to Pro yearly (prepared)",
    "subscription_pause": "Pause payments",
    "payment_method_update": "Update card",
    "customer_update": "Update billing details",
}
_NEEDS_SUBSCRIPTION = frozenset(_FLOWS) - {"payment_method_update", "customer_update"}
_RETENTION_COUPON = "SAVE25"
_UPGRADE_PRICE = "price_pro_yearly"
_SUBSCRIBE_PRICE = "price_pro_monthly"
_WEBHOOK_POLLS = 500
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#fafafa;
color:#222;line-height:1.5}
header{background:#1f2937;color:#fff;padding:12px 32px;display:flex;justify-content:space-between}
main{max-width:760px;margin:28px auto;padding:0 16px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 24px;
margin-bottom:18px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:6px 8px;
border-bottom:1px solid #f0f0f0}
button{background:#2563eb;color:#fff;border:0;border-radius:6px;padding:8px 14px;font-size:14px;
cursor:pointer}
button.secondary{background:#fff;color:#1f2937;border:1px solid #d1d5db}
form{display:inline-block;margin:4px 6px 4px 0}
@media (max-width:560px){header{padding:12px 16px}main{margin:16px auto}
section{padding:12px 14px}form,form button{display:block;width:100%}td,th{padding:4px}}
.muted{color:#6b7280;font-size:14px}
.banner{background:#ecfdf5;border:1px solid #a7f3d0;padding:12px 16px;border-radius:6px;
margin-bottom:18px}
.error{background:#fef2f2;border:1px solid #fecaca;padding:12px 16px;border-radius:6px}
"""


@attrs.frozen(kw_only=True)
class DemoSettings:
    """Where Stripe is (the emulator), the keys, and who the logged-in user is."""

    stripe_url: str
    api_key: str = attrs.field(repr=False)
    webhook_secret: str = attrs.field(repr=False)
    customer_id: str


@attrs.define
class DemoState:
    """What this app knows about its user's billing, kept current by webhooks."""

    customer_id: str
    customer: dict[str, Any] = attrs.Factory(dict)
    subscriptions: dict[str, dict[str, Any]] = attrs.Factory(dict)
    payment_methods: dict[str, dict[str, Any]] = attrs.Factory(dict)
    events: list[Event] = attrs.Factory(list)

    def webhook_handlers(self) -> Mapping[str, WebhookHandler]:
        """The handler of each event type this app follows."""
        return {
            "customer.subscription.created": self.subscription_changed,
            "customer.subscription.updated": self.subscription_changed,
            "customer.subscription.deleted": self.subscription_changed,
            "customer.subscription.paused": self.subscription_changed,
            "customer.subscription.resumed": self.subscription_changed,
            "customer.updated": self.customer_updated,
            "payment_method.attached": self.payment_method_attached,
        }

    # The handlers are coroutine functions so that they run on the event loop, where
    # the pages are rendered, rather than in the thread pool beside it.
    async def subscription_changed(self, event: Event) -> None:
        """Keep the user's subscription as the event shows it."""
        subscription = event.subscription
        if subscription.customer == self.customer_id:
            self.subscriptions[subscription.id] = dict(event.data_object)
        self._heard(event)

    async def customer_updated(self, event: Event) -> None:
        """Keep the user's customer record (email, default card) as the event shows it."""
        customer = event.customer
        if customer.id == self.customer_id:
            self.customer = dict(event.data_object)
        self._heard(event)

    async def payment_method_attached(self, event: Event) -> None:
        """Remember a card attached to the user, to show once it is the default."""
        method = event.payment_method
        if method.customer == self.customer_id:
            self.payment_methods[method.id] = dict(event.data_object)
        self._heard(event)

    def _heard(self, event: Event) -> None:
        self.events.insert(0, event)
        del self.events[10:]


async def _get(http: aiohttp.ClientSession, settings: DemoSettings, path: str) -> Any:
    async with http.get(
        settings.stripe_url + path,
        headers={"Authorization": f"Bearer {settings.api_key}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        response.raise_for_status()
        return await response.json()


async def _post(
    http: aiohttp.ClientSession, settings: DemoSettings, path: str, fields: Mapping[str, str]
) -> Any:
    async with http.post(
        settings.stripe_url + path,
        data=dict(fields),
        headers={"Authorization": f"Bearer {settings.api_key}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        response.raise_for_status()
        return await response.json()


async def _load(http: aiohttp.ClientSession, settings: DemoSettings, state: DemoState) -> None:
    """Read the starting state into ``state`` once, at start-up; webhooks keep it current."""
    state.customer = await _get(http, settings, f"/v1/customers/{settings.customer_id}")
    listing = await _get(
        http, settings, f"/v1/subscriptions?customer={settings.customer_id}&status=all"
    )
    state.subscriptions = {sub["id"]: sub for sub in listing["data"]}
    default = state.customer["invoice_settings"]["default_payment_method"]
    if default:
        state.payment_methods[default] = await _get(
            http, settings, f"/v1/payment_methods/{default}"
        )


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _date(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        "<header><strong>Lattice Demo</strong><span>Signed in (fake login)</span></header>"
        f"<main>{body}</main></body></html>",
        status_code=status,
        headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )


def _plan(sub: Mapping[str, Any]) -> str:
    parts = []
    for item in sub["items"]["data"]:
        price = item["price"]
        amount = price["unit_amount"] * item["quantity"] / 100
        name = price.get("nickname") or price["id"]
        seats = f" &times; {item['quantity']}" if item["quantity"] != 1 else ""
        parts.append(
            f"{_e(name)}{seats}: {amount:,.2f} {_e(price['currency'].upper())}"
            f" / {_e(price['recurring']['interval'])}"
        )
    return "<br>".join(parts)


def _status(sub: Mapping[str, Any]) -> str:
    status = sub["status"]
    if sub.get("cancel_at_period_end") and sub.get("cancel_at"):
        return f"{status} (cancels {_date(sub['cancel_at'])})"
    return str(status)


def _details(sub: Mapping[str, Any]) -> str:
    """Renewal, pause and discounts, as the last webhook reported them."""
    parts = []
    items = sub["items"]["data"]
    if sub["status"] != "canceled" and not sub.get("cancel_at_period_end") and items:
        parts.append(f"renews {_date(items[0]['current_period_end'])}")
    pause = sub.get("pause_collection")
    if pause:
        resumes = pause.get("resumes_at")
        parts.append(f"payments paused until {_date(resumes)}" if resumes else "payments paused")
    if sub.get("discounts"):
        parts.append("discounts: " + ", ".join(str(discount) for discount in sub["discounts"]))
    return "; ".join(parts)


def _billing(state: DemoState) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(sub['id'])}</code></td><td>{_plan(sub)}</td>"
        f'<td id="status-{_e(sub["id"])}">{_e(_status(sub))}</td>'
        f'<td id="details-{_e(sub["id"])}">{_e(_details(sub))}</td></tr>'
        for sub in sorted(state.subscriptions.values(), key=lambda sub: sub["created"])
    )
    default = (state.customer.get("invoice_settings") or {}).get("default_payment_method")
    card = (state.payment_methods.get(default or "") or {}).get("card")
    method = f"{_e(card['brand'].title())} ending {_e(card['last4'])}" if card else "none on file"
    events = "".join(
        f"<li><code>{_e(event.type)}</code> {_e(event.data_object.get('id', ''))}</li>"
        for event in state.events
    )
    return (
        f"<section><h2>Subscriptions</h2><table><tr><th>ID</th><th>Plan</th><th>Status</th><th>Details</th></tr>"
        f'{rows}</table><p>Payment method: <span id="payment-method">{method}</span></p>'
        f'<p class="muted">Email on file: {_e(state.customer.get("email") or "")}</p></section>'
        '<section><h2>Webhooks received</h2><ul id="events">'
        f"{events or '<li class=muted>none yet</li>'}</ul></section>"
    )


def _verified(state: BillingState, heard: DemoState) -> str:
    """Stripe's state, re-read on the return route, each row marked if the webhooks agree."""
    rows = "".join(
        f'<tr id="verified-{_e(sub.id)}"><td><code>{_e(sub.id)}</code></td>'
        f"<td>{_e(sub.price or '')} &times; {_e(sub.quantity or 0)}</td>"
        f"<td>{_e(sub.status)}{' (cancels at period end)' if sub.cancel_at_period_end else ''}"
        f"{' (paused)' if sub.pause_collection else ''}</td>"
        f"<td>{_e(_agrees(sub.id, sub.status, heard))}</td></tr>"
        for sub in state.subscriptions
    )
    return (
        '<section id="verified"><h2>Re-read from Stripe just now</h2>'
        "<table><tr><th>ID</th><th>Price</th><th>Status</th><th>Webhooks</th></tr>"
        f"{rows or '<tr><td colspan=4 class=muted>no subscriptions</td></tr>'}</table></section>"
    )


def _agrees(sub_id: str, status: str, heard: DemoState) -> str:
    known = heard.subscriptions.get(sub_id)
    if known is None:
        return "not heard yet"
    return "agree" if known.get("status") == status else f"still say {known.get('status')}"


def _live_subscription(state: DemoState) -> dict[str, Any] | None:
    """The user's subscription the deep links act on: the oldest one not canceled."""
    live = [sub for sub in state.subscriptions.values() if sub["status"] != "canceled"]
    return min(live, key=lambda sub: sub["created"]) if live else None


def _flow_data(flow: str, sub: Mapping[str, Any] | None, return_url: str) -> dict[str, Any]:
    """The ``flow_data`` of a deep-link button (``retention`` is a cancel with an offer)."""
    kind = "subscription_cancel" if flow == "retention" else flow
    flow_data: dict[str, Any] = {
        "type": kind,
        "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
    }
    if sub is None:
        return flow_data
    detail: dict[str, Any] = {"subscription": sub["id"]}
    if flow == "retention":
        detail["retention"] = {
            "type": "coupon_offer",
            "coupon_offer": {"coupon": _RETENTION_COUPON},
        }
    if flow == "subscription_update_confirm":
        item = sub["items"]["data"][0]
        price = _UPGRADE_PRICE if item["price"]["id"] != _UPGRADE_PRICE else _SUBSCRIBE_PRICE
        detail["items"] = [{"id": item["id"], "price": price, "quantity": item["quantity"]}]
    if kind != "customer_update" and kind != "payment_method_update":
        flow_data[kind] = detail
    return flow_data


def create_app(settings: DemoSettings) -> Starlette:
    """The demo application, talking to the Stripe API at ``settings.stripe_url``."""
    csrf_token = secrets.token_urlsafe(24)
    # One state for the pages and the webhook handlers, which are bound before start-up.
    state = DemoState(customer_id=settings.customer_id)

    @contextlib.asynccontextmanager
    async def load_state(app: Starlette) -> AsyncIterator[None]:
        # The client only creates portal sessions: the rest of the API is read directly.
        async with aiohttp.ClientSession() as http:
            await _load(http, settings, state)
        yield

    def forms() -> str:
        hidden = f'<input type="hidden" name="csrf_token" value="{_e(csrf_token)}">'
        live = _live_subscription(state) is not None
        deep_links = "".join(
            f'<form method="post" action="/billing/portal">{hidden}'
            f'<input type="hidden" name="flow" value="{flow}">'
            f'<button class="secondary" id="flow-{flow}">{label}</button></form>'
            for flow, label in _FLOWS.items()
            if live or flow not in _NEEDS_SUBSCRIPTION
        )
        subscribe = (
            ""
            if live
            else f'<form method="post" action="/billing/subscribe">{hidden}'
            '<button id="subscribe-again">Subscribe again (Pro monthly)</button></form>'
        )
        return (
            f'<section><form method="post" action="/billing/portal">{hidden}'
            '<button id="manage-billing">Manage billing</button></form>'
            f"{subscribe}"
            f'<p class="muted">Or go straight to one task:</p>{deep_links}</section>'
            f'<section><form method="post" action="/demo/reset">{hidden}'
            '<button class="secondary" id="reset-demo">Reset demo</button></form>'
            '<span class="muted">Puts the emulator back to its seed, and this page with it.'
            "</span></section>"
        )

    async def checked(request: Request) -> dict[str, Any] | None:
        """The form's fields if its CSRF token is this app's, else None."""
        try:
            fields = decode_form(await request.body())
        except ValueError:
            fields = {}
        token = fields.get("csrf_token")
        # Bytes: compare_digest refuses non-ASCII str, and a forged token may hold any text.
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), csrf_token.encode()
        ):
            return None
        return fields

    def forbidden() -> Response:
        return _page("Forbidden", '<p class="error">Reload the page and try again.</p>', status=403)

    async def subscribe(request: Request) -> Response:
        if await checked(request) is None:
            return forbidden()
        async with aiohttp.ClientSession() as http:
            created = await _post(
                http,
                settings,
                "/v1/subscriptions",
                {
                    "customer": settings.customer_id,
                    "items[0][price]": _SUBSCRIBE_PRICE,
                    "items[0][quantity]": "1",
                },
            )
        # The state comes from the webhook (customer.subscription.created): wait for it
        # briefly, as the portal does, so that the page shown next already has the news.
        for _ in range(_WEBHOOK_POLLS):
            if created["id"] in state.subscriptions:
                break
            await asyncio.sleep(0.01)
        return RedirectResponse("/", status_code=303)

    async def reset(request: Request) -> Response:
        if await checked(request) is None:
            return forbidden()
        async with aiohttp.ClientSession() as http:
            await _post(http, settings, "/_emulator/reset", {})
            fresh = DemoState(customer_id=settings.customer_id)
            await _load(http, settings, fresh)
        state.customer, state.subscriptions = fresh.customer, fresh.subscriptions
        state.payment_methods, state.events = fresh.payment_methods, []
        return RedirectResponse("/", status_code=303)

    async def account(request: Request) -> Response:
        name = state.customer.get("name") or settings.customer_id
        return _page("Your account", f"<h1>Hello, {_e(name)}</h1>{forms()}{_billing(state)}")

    async def open_portal(request: Request) -> Response:
        fields = await checked(request)
        if fields is None:
            return forbidden()
        flow = fields.get("flow")
        params: dict[str, Any] = {}
        if isinstance(flow, str) and flow in _FLOWS:
            subscription = _live_subscription(state)
            if subscription is None and flow in _NEEDS_SUBSCRIPTION:
                return _page(
                    "Could not open the portal",
                    '<p class="error">Could not open the billing portal: '
                    "you have no active subscription.</p>"
                    '<p><a href="/">Back to your account</a></p>',
                    status=400,
                )
            return_url = str(request.url_for("billing_return"))
            params["flow_data"] = _flow_data(flow, subscription, return_url)
        # The customer is the signed-in user's; a form field naming one could name anyone's.
        return await redirect_to_portal(
            request, customer=settings.customer_id, return_route="billing_return", **params
        )

    async def billing_return(request: Request) -> Response:
        error = portal_error(request)
        notice = (
            f'<div class="error" id="portal-error">{_e(error)}</div>'
            if error
            else '<div class="banner" id="welcome-back">Welcome back from the billing portal. '
            "The redirect proves nothing, so this page re-reads your subscriptions from "
            "Stripe, beside what our webhook endpoint has heard.</div>"
        )
        try:
            verified = _verified(
                await abilling_state(get_client(request), settings.customer_id), state
            )
        except (StripeError, APIConnectionError):
            verified = '<p class="error" id="verified">Stripe could not be read just now.</p>'
        return _page(
            "Welcome back",
            f"{notice}{verified}{_billing(state)}"
            '<p><a id="account-link" href="/">Back to your account</a></p>',
        )

    return Starlette(
        routes=[
            Route("/", account, name="account"),
            Route("/billing/portal", open_portal, methods=["POST"], name="billing_portal"),
            Route("/billing/return", billing_return, name="billing_return"),
            Route("/billing/subscribe", subscribe, methods=["POST"], name="subscribe"),
            Route("/demo/reset", reset, methods=["POST"], name="reset_demo"),
            Route(
                "/webhooks/stripe",
                webhook_endpoint(settings.webhook_secret, state.webhook_handlers()),
                methods=["POST"],
                name="stripe_webhook",
            ),
        ],
        lifespan=stripe_lifespan(
            settings.api_key,
            base_url=settings.stripe_url,
            allow_http_localhost=True,
            inner=load_state,
        ),
    )
