"""Webhook signatures: HMAC-SHA256 over the raw body bytes, checked in constant time.

Stripe signs each delivery with ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=...]``,
where each ``v1`` is HMAC-SHA256 of ``"{t}.{raw body}"`` under an endpoint's
``whsec_`` secret. :func:`verify_signature` checks it against one or several
secrets (rotation) within a tolerance on the injected clock. Verify the raw
bytes as received: a body re-encoded by a framework no longer matches.
"""

import hashlib
import hmac
from collections.abc import Iterable

from lattice_stripe.core.errors import SignatureVerificationError
from lattice_stripe.core.ports import Clock

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_HEADER_LENGTH",
    "compute_signature",
    "generate_signature_header",
    "verify_signature",
]

DEFAULT_TOLERANCE = 300
MAX_HEADER_LENGTH = 8192
# Ten digits last until the year 2286; a longer ``t`` is an attack on int().
_MAX_TIMESTAMP_DIGITS = 12


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` at ``timestamp`` under ``secret``."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def generate_signature_header(payload: bytes, secret: str, *, timestamp: int) -> str:
    """A ``Stripe-Signature`` header value for ``payload`` signed at ``timestamp``, as Stripe
    would send it (for tests; :func:`lattice_stripe.generate_signature_header` signs now)."""
    return f"t={timestamp},v1={compute_signature(payload, secret, timestamp)}"


def _malformed(detail: str) -> SignatureVerificationError:
    return SignatureVerificationError("malformed_header", f"Stripe-Signature header {detail}")


def _parse_header(header: str) -> tuple[int, list[str]]:
    if len(header) > MAX_HEADER_LENGTH:
        raise _malformed(f"is longer than {MAX_HEADER_LENGTH} characters")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise _malformed("has a part without '='")
        if key == "t":
            if (
                timestamp is not None
                or not value.isascii()
                or not value.isdigit()
                or len(value) > _MAX_TIMESTAMP_DIGITS
            ):
                raise _malformed("has a bad or repeated timestamp")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise _malformed("has no timestamp (t=...)")
    if not signatures:
        raise _malformed("has no v1 signature")
    return timestamp, signatures


def secret_list(secrets: str | Iterable[str]) -> list[str]:
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("at least one webhook signing secret (whsec_...) is needed")
    if any(not isinstance(key, str) or not key.strip() for key in keys):
        # An empty key is a key anyone can sign with.
        raise ValueError("a webhook signing secret is empty; expected whsec_...")
    return keys


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock,
) -> int:
    """Check ``header`` against ``payload`` for any of ``secrets``; return the signed timestamp.

    ``payload`` must be the body bytes exactly as received. Several secrets are
    tried at once, so a secret can be rolled without dropping deliveries.
    Raises :class:`SignatureVerificationError` with ``reason`` ``missing_header``,
    ``malformed_header``, ``no_matching_signature``, or, for an authentic
    delivery signed more than ``tolerance`` seconds before (a replay) or after
    (clock skew) now, ``timestamp_out_of_tolerance``. A bad ``secrets`` value
    (none, or an empty one) is a configuration error: ``ValueError``.
    """
    if not isinstance(payload, bytes):
        raise TypeError("verify the raw request body bytes, not a decoded or re-encoded body")
    keys = secret_list(secrets)
    if not header:
        raise SignatureVerificationError("missing_header", "no Stripe-Signature header")
    timestamp, signatures = _parse_header(header)
    expected = [compute_signature(payload, key, timestamp).encode() for key in keys]
    matched = False
    for candidate in signatures:
        presented = candidate.encode("ascii", "replace")
        for signature in expected:
            # Compare every pair: the time taken does not depend on which one matches.
            matched |= hmac.compare_digest(presented, signature)
    if not matched:
        raise SignatureVerificationError(
            "no_matching_signature",
            "no Stripe-Signature v1 signature matches the payload for the configured secret(s)",
        )
    if abs(clock() - timestamp) > tolerance:
        raise SignatureVerificationError(
            "timestamp_out_of_tolerance",
            f"Stripe-Signature timestamp is more than {tolerance}s from now (replay or clock skew)",
        )
    return timestamp
