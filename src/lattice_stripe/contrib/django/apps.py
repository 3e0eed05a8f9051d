"""The app config: add ``"lattice_stripe.contrib.django"`` to ``INSTALLED_APPS``."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks

from lattice_stripe.contrib.django.conf import SETTING, read_settings

__all__ = ["LatticeStripeConfig", "check_settings"]


def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    """``manage.py check``: every problem of ``settings.LATTICE_STRIPE``, with ID and hint."""
    if app_configs is not None and not any(
        config.label == "lattice_stripe" for config in app_configs
    ):
        return []
    _, problems = read_settings(getattr(settings, SETTING, None), debug=bool(settings.DEBUG))
    found: list[Any] = [
        (checks.Error if problem.error else checks.Warning)(
            problem.message, hint=problem.hint or None, id=problem.id
        )
        for problem in problems
    ]
    if not apps.is_installed("django.contrib.messages"):
        found.append(
            checks.Warning(
                "django.contrib.messages is not installed: a failed portal redirect "
                "cannot tell the customer why",
                hint="add it to INSTALLED_APPS and MIDDLEWARE, or show portal_error(request)",
                id="lattice_stripe.W003",
            )
        )
    return found


class LatticeStripeConfig(AppConfig):
    """The Stripe Customer Portal: the event store's model and the settings checks."""

    name = "lattice_stripe.contrib.django"
    label = "lattice_stripe"
    verbose_name = "Stripe Customer Portal"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        checks.register(check_settings)
