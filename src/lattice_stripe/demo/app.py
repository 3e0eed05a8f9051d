"""The demo app: a Starlette site whose (fake) logged-in user manages billing in the portal.

What a real integration does, in four routes:

- ``GET /``: the account page, showing the subscription state this app knows;
- ``POST /billing/portal``: create a portal session with
  :class:`~lattice_stripe.AsyncClient` and answer ``303 See Other`` to ``session.url``;
- ``GET /billing/return``: where the portal sends the customer back;
- ``POST /webhooks/stripe``: verify the signature with
  :func:`~lattice_stripe.core.webhooks.construct_event` and update the state.

The state shown comes from webhooks, never from the return redirect (which
carries nothing and proves nothing).
"""

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
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.client import AsyncClient
from lattice_stripe.core.codec import decode_form
from lattice_stripe.core.errors import SignatureVerificationError, StripeError, ValidationError
from lattice_stripe.core.webhooks import Event, construct_event

__all__ = ["DemoSettings", "DemoState", "create_app"]

_FLOWS = ("subscription_cancel", "subscription_update", "payment_method_update")
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

    customer: dict[str, Any] = attrs.Factory(dict)
    subscriptions: dict[str, dict[str, Any]] = attrs.Factory(dict)
    payment_methods: dict[str, dict[str, Any]] = attrs.Factory(dict)
    events: list[Event] = attrs.Factory(list)

    def apply(self, event: Event, customer_id: str) -> None:
        """Fold one verified event into the state."""
        obj = dict(event.data_object)
        if event.type.startswith("customer.subscription."):
            if obj.get("customer") == customer_id:
                self.subscriptions[obj["id"]] = obj
        elif event.type in ("customer.updated", "customer.created"):
            if obj.get("id") == customer_id:
                self.customer = obj
        elif event.type == "payment_method.attached" and obj.get("customer") == customer_id:
            self.payment_methods[obj["id"]] = obj
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


async def _load(http: aiohttp.ClientSession, settings: DemoSettings) -> DemoState:
    """The starting state, read once at start-up; webhooks keep it current afterwards."""
    state = DemoState()
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
    return state


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _date(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
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


def _billing(state: DemoState) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(sub['id'])}</code></td><td>{_plan(sub)}</td>"
        f'<td id="status-{_e(sub["id"])}">{_e(_status(sub))}</td></tr>'
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
        f"<section><h2>Subscriptions</h2><table><tr><th>ID</th><th>Plan</th><th>Status</th></tr>"
        f'{rows}</table><p>Payment method: <span id="payment-method">{method}</span></p>'
        f'<p class="muted">Email on file: {_e(state.customer.get("email") or "")}</p></section>'
        '<section><h2>Webhooks received</h2><ul id="events">'
        f"{events or '<li class=muted>none yet</li>'}</ul></section>"
    )


def _live_subscription(state: DemoState) -> str | None:
    """The user's subscription the deep links act on: the oldest one not canceled."""
    live = [sub for sub in state.subscriptions.values() if sub["status"] != "canceled"]
    return min(live, key=lambda sub: sub["created"])["id"] if live else None


def create_app(settings: DemoSettings) -> Starlette:
    """The demo application, talking to the Stripe API at ``settings.stripe_url``."""
    csrf_token = secrets.token_urlsafe(24)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            client = AsyncClient(
                settings.api_key,
                transport=AiohttpTransport(http),
                base_url=settings.stripe_url,
                allow_http_localhost=True,
            )
            async with client:
                yield {"client": client, "state": await _load(http, settings)}

    def forms(state: DemoState) -> str:
        hidden = f'<input type="hidden" name="csrf_token" value="{_e(csrf_token)}">'
        live = _live_subscription(state) is not None
        deep_links = "".join(
            f'<form method="post" action="/billing/portal">{hidden}'
            f'<input type="hidden" name="flow" value="{flow}">'
            f'<button class="secondary" id="flow-{flow}">{label}</button></form>'
            for flow, label in zip(
                _FLOWS, ("Cancel subscription", "Change plan", "Update card"), strict=True
            )
            if live or flow == "payment_method_update"
        )
        return (
            f'<section><form method="post" action="/billing/portal">{hidden}'
            '<button id="manage-billing">Manage billing</button></form>'
            f'<p class="muted">Or go straight to one task:</p>{deep_links}</section>'
        )

    async def account(request: Request) -> Response:
        state: DemoState = request.state.state
        name = state.customer.get("name") or settings.customer_id
        return _page(
            "Your account",
            f"<h1>Hello, {_e(name)}</h1>{forms(state)}{_billing(state)}",
        )

    async def open_portal(request: Request) -> Response:
        try:
            fields = decode_form(await request.body())
        except ValueError:
            fields = {}
        token = fields.get("csrf_token")
        if not isinstance(token, str) or not hmac.compare_digest(token, csrf_token):
            return _page(
                "Forbidden", '<p class="error">Reload the page and try again.</p>', status=403
            )
        return_url = str(request.url_for("billing_return"))
        params: dict[str, Any] = {"customer": settings.customer_id, "return_url": return_url}
        flow = fields.get("flow")
        state: DemoState = request.state.state
        subscription = _live_subscription(state)
        if flow in _FLOWS:
            params["flow_data"] = {
                "type": flow,
                "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
            }
            if flow != "payment_method_update":
                params["flow_data"][flow] = {"subscription": subscription}
        client: AsyncClient = request.state.client
        try:
            session = await client.billing_portal.sessions.create(params)
        except (StripeError, ValidationError) as error:
            return _page(
                "Could not open the portal",
                f'<p class="error">Could not open the billing portal: {_e(error)}</p>'
                '<p><a href="/">Back to your account</a></p>',
                status=502 if isinstance(error, StripeError) else 400,
            )
        return RedirectResponse(session.url, status_code=303)

    async def billing_return(request: Request) -> Response:
        state: DemoState = request.state.state
        return _page(
            "Welcome back",
            '<div class="banner" id="welcome-back">Welcome back from the billing portal. '
            "The state below is what our webhook endpoint has heard from Stripe.</div>"
            f'{_billing(state)}<p><a id="account-link" href="/">Back to your account</a></p>',
        )

    async def stripe_webhook(request: Request) -> Response:
        payload = await request.body()
        try:
            event = construct_event(
                payload, request.headers.get("stripe-signature"), settings.webhook_secret
            )
        except SignatureVerificationError as error:
            return JSONResponse({"error": error.reason}, status_code=400)
        state: DemoState = request.state.state
        state.apply(event, settings.customer_id)
        return JSONResponse({"received": True})

    return Starlette(
        routes=[
            Route("/", account, name="account"),
            Route("/billing/portal", open_portal, methods=["POST"], name="billing_portal"),
            Route("/billing/return", billing_return, name="billing_return"),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"], name="stripe_webhook"),
        ],
        lifespan=lifespan,
    )
