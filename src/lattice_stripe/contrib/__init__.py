"""Framework integrations: :mod:`lattice_stripe.contrib.starlette`,
:mod:`lattice_stripe.contrib.pyramid`, :mod:`lattice_stripe.contrib.django` and
:mod:`lattice_stripe.contrib.flask`.

What they share lives in a private module; the names an application may use
(the trusted-host policy, the error codes of the return URL, the idempotency
key that creates a user's Stripe customer once) are here.
"""

from lattice_stripe.contrib._shared import (
    CUSTOMER_USER_METADATA_KEY,
    DEVELOPMENT_HOSTS,
    ERROR_PARAM,
    PORTAL_ERROR_MESSAGES,
    HostPolicy,
    UntrustedHostError,
    customer_idempotency_key,
)

__all__ = [
    "CUSTOMER_USER_METADATA_KEY",
    "DEVELOPMENT_HOSTS",
    "ERROR_PARAM",
    "PORTAL_ERROR_MESSAGES",
    "HostPolicy",
    "UntrustedHostError",
    "customer_idempotency_key",
]
