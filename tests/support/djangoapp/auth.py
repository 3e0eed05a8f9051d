"""The test project's login: Django's users, each carrying its Stripe customer ID as a custom
user model or profile would."""

from typing import Any

from django.contrib.auth.backends import ModelBackend

CUSTOMERS = {"jo": "cus_123"}


class StripeCustomerBackend(ModelBackend):
    """Django's model backend; the user it loads has ``stripe_customer_id`` (or ``None``)."""

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        if user is not None:
            user.stripe_customer_id = CUSTOMERS.get(user.get_username())  # type: ignore[attr-defined]
        return user
