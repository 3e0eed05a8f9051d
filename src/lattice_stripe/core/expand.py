"""Which fields of a portal session Stripe lets ``expand=[...]`` name.

The source is Stripe's OpenAPI description, ``x-expandableFields``, walked
from ``billing_portal.session`` through the schemas it references (the
excerpt ``session_object.json``: stripe/openapi ``openapi/spec3.json`` at
commit af5309cae53e5f666f9686dfed306d6d3b5fdc67, 2026-07-29.dahlia), plus
``flow.customer_update``, which ``portal_flows_flow`` gains in
2026-08-26.dahlia. No excerpt marks ``flow.subscription_pause`` expandable,
so it is not here.

Stripe expands at most four levels (``a.b.c.d``), so the two five-level
paths of that walk (``configuration.features.subscription_update.products.
adjustable_quantity`` and ``...schedule_at_period_end.conditions``) are left
out. Pure data: the client's guard and the emulator both read it, so they
cannot disagree.
"""

__all__ = ["MAX_EXPAND_DEPTH", "SESSION_EXPANDABLE"]

MAX_EXPAND_DEPTH = 4
"""The deepest expansion Stripe accepts, in dot-separated levels."""

SESSION_EXPANDABLE: frozenset[str] = frozenset(
    {
        "configuration",
        "configuration.application",
        "configuration.business_profile",
        "configuration.features",
        "configuration.features.customer_update",
        "configuration.features.invoice_history",
        "configuration.features.payment_method_update",
        "configuration.features.subscription_cancel",
        "configuration.features.subscription_cancel.cancellation_reason",
        "configuration.features.subscription_update",
        "configuration.features.subscription_update.products",
        "configuration.features.subscription_update.schedule_at_period_end",
        "configuration.login_page",
        "flow",
        "flow.after_completion",
        "flow.after_completion.hosted_confirmation",
        "flow.after_completion.redirect",
        "flow.customer_update",
        "flow.subscription_cancel",
        "flow.subscription_cancel.retention",
        "flow.subscription_cancel.retention.coupon_offer",
        "flow.subscription_update",
        "flow.subscription_update_confirm",
        "flow.subscription_update_confirm.discounts",
        "flow.subscription_update_confirm.items",
    }
)
"""Every ``expand`` path a ``POST /v1/billing_portal/sessions`` may name."""
