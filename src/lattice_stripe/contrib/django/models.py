"""The event store's table: one row per webhook event ID being handled or handled."""

# The field annotations are for the type checker: Django's fields are not generic at run time.
from __future__ import annotations

from typing import TypeAlias

from django.db import models

__all__ = ["WebhookEvent"]

_Time: TypeAlias = "models.FloatField[float | None, float | None]"


class WebhookEvent(models.Model):
    """A Stripe event ID, claimed by a worker until ``lease_until`` or handled at ``completed_at``.

    Times are Unix seconds from the store's clock. A released claim is deleted.
    """

    event_id: models.CharField[str, str] = models.CharField(max_length=255, primary_key=True)
    lease_until: _Time = models.FloatField(null=True)
    completed_at: _Time = models.FloatField(null=True, db_index=True)

    class Meta:
        app_label = "lattice_stripe"
        db_table = "lattice_stripe_webhook_event"

    def __str__(self) -> str:
        state = "handled" if self.completed_at is not None else "claimed"
        return f"{self.event_id} ({state})"
