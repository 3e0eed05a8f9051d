"""The redaction policy: ``from lattice_stripe.redaction import RedactingFilter``."""

from lattice_stripe.core.redaction import PORTAL_URL_PLACEHOLDER, RedactingFilter, mask_key, scrub

__all__ = ["PORTAL_URL_PLACEHOLDER", "RedactingFilter", "mask_key", "scrub"]
