"""Webhook signatures and events, pure: HMAC over the raw body bytes, then typed values.

Stripe signs each delivery with ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=...]``,
where each ``v1`` is HMAC-SHA256 of ``"{t}.{raw body}"`` under an endpoint's
``whsec_`` secret. :func:`verify_signature` checks it in constant time against
one or several secrets (rotation) within a tolerance on the injected clock;
:func:`construct_event` verifies and parses into an :class:`Event`.
Verify the raw bytes as received: a body re-encoded by a framework no longer
matches, and is rejected.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from lattice_stripe.core.errors import SignatureVerificationError
from lattice_stripe.core.ports import Clock

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_HEADER_LENGTH",
    "Event",
    "compute_signature",
    "construct_event",
    "generate_signature_header",
    "verify_signature",
]

DEFAULT_TOLERANCE = 300
MAX_HEADER_LENGTH = 8192


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` at ``timestamp`` under ``secret``."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def generate_signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, as Stripe would send it (for tests)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={compute_signature(payload, secret, at)}"


def _parse_header(header: str) -> tuple[int, list[str]]:
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureVerificationError("malformed_header", "Stripe-Signature header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureVerificationError(
                "malformed_header", "Stripe-Signature header has a part without '='"
            )
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise SignatureVerificationError(
                    "malformed_header", "Stripe-Signature header has a bad or repeated timestamp"
                )
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureVerificationError(
            "malformed_header", "Stripe-Signature header has no timestamp (t=...)"
        )
    if not signatures:
        raise SignatureVerificationError(
            "malformed_header", "Stripe-Signature header has no v1 signature"
        )
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
) -> int:
    """Check ``header`` against ``payload`` for any of ``secrets``; return the signed timestamp.

    Raises :class:`SignatureVerificationError` with ``reason`` ``missing_header``,
    ``malformed_header``, ``timestamp_out_of_tolerance`` (older, or further in
    the future, than ``tolerance`` seconds) or ``no_matching_signature``.
    """
    if not header:
        raise SignatureVerificationError("missing_header", "no Stripe-Signature header")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("verify_signature needs at least one webhook secret")
    timestamp, signatures = _parse_header(header)
    if abs(clock() - timestamp) > tolerance:
        raise SignatureVerificationError(
            "timestamp_out_of_tolerance",
            f"Stripe-Signature timestamp is more than {tolerance}s from now (replay or clock skew)",
        )
    expected = [compute_signature(payload, key, timestamp) for key in keys]
    matched = False
    for candidate in signatures:
        for signature in expected:
            # Compare every pair: the time taken does not depend on which one matches.
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), signature.encode())
    if not matched:
        raise SignatureVerificationError(
            "no_matching_signature",
            "no Stripe-Signature v1 signature matches the payload for the configured secret(s)",
        )
    return timestamp


@attrs.frozen(kw_only=True)
class Event:
    """A Stripe event: ``type`` names what happened, ``data_object`` is the object as it is now.

    ``previous_attributes`` holds the changed fields' old values (updates only).
    ``raw`` is the whole event JSON.
    """

    id: str
    type: str
    created: int
    livemode: bool
    api_version: str | None
    data_object: Mapping[str, Any] = attrs.field(repr=False)
    previous_attributes: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    raw: Mapping[str, Any] = attrs.field(repr=False, eq=False)

    @classmethod
    def from_json(cls, payload: bytes) -> "Event":
        """Parse an event body; a malformed one raises SignatureVerificationError."""
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SignatureVerificationError("malformed_event", "event body is not JSON") from None
        if not isinstance(document, dict) or document.get("object") != "event":
            raise SignatureVerificationError("malformed_event", "body is not a Stripe event object")
        data = document.get("data")
        fields = (document.get("id"), document.get("type"), document.get("created"))
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("object"), dict)
            or not isinstance(fields[0], str)
            or not isinstance(fields[1], str)
            or isinstance(fields[2], bool)
            or not isinstance(fields[2], int)
        ):
            raise SignatureVerificationError(
                "malformed_event", "event is missing id, type, created or data.object"
            )
        previous = data.get("previous_attributes")
        version = document.get("api_version")
        return cls(
            id=fields[0],
            type=fields[1],
            created=fields[2],
            livemode=document.get("livemode") is True,
            api_version=version if isinstance(version, str) else None,
            data_object=data["object"],
            previous_attributes=previous if isinstance(previous, dict) else None,
            raw=document,
        )


def construct_event(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
) -> Event:
    """Verify the signature of ``payload`` and parse it into an :class:`Event`."""
    verify_signature(payload, header, secrets, tolerance=tolerance, clock=clock)
    return Event.from_json(payload)
