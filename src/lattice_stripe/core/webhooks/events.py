"""Stripe events as typed values: ``event.subscription``, ``.customer``, ``.payment_method``.

The portal's events read as the same values the API returns (``core.billing``):
``event.subscription`` (``customer.subscription.updated``, ``.deleted``,
``.paused``, ...), ``event.payment_method`` (``payment_method.attached``) and
``event.customer`` (``customer.updated``); ``event.typed_object`` is whichever
applies, or ``None`` for any other object, which stays available, untouched,
as ``event.data_object``. Unknown event types and unknown fields are never
errors; a known field of the wrong type is an :class:`EventDecodeError`.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from lattice_stripe.core.billing import Customer, PaymentMethod, Subscription
from lattice_stripe.core.codec import read_object
from lattice_stripe.core.errors import EventDecodeError, SignatureVerificationError
from lattice_stripe.core.ports import Clock
from lattice_stripe.core.webhooks.signatures import DEFAULT_TOLERANCE, verify_signature

__all__ = ["Event", "TypedObject", "construct_event"]

T = TypeVar("T")

TypedObject = Subscription | PaymentMethod | Customer


def _raw() -> Any:
    return attrs.field(repr=False, eq=False)


_TYPED_OBJECTS: Mapping[str, type[TypedObject]] = {
    "subscription": Subscription,
    "payment_method": PaymentMethod,
    "customer": Customer,
}


_EVENT_KEYS = frozenset(
    {"id", "object", "type", "created", "livemode", "api_version", "account", "data"}
)


@attrs.frozen(kw_only=True)
class Event:
    """A Stripe event: ``type`` names what happened, ``data_object`` is the object as it is now.

    ``previous_attributes`` holds the changed fields' old values (updates only);
    ``account`` is the connected account for Connect events; ``raw`` is the
    whole event JSON and ``extra`` its top-level keys this class does not model
    (``request``, ``pending_webhooks``, ...), as every value of the library keeps
    them. The typed views (``subscription``, ``payment_method``, ``customer``,
    ``typed_object``) are read from ``data_object`` on each access: keep the
    result rather than asking twice. A typed view of an object whose known
    fields have the wrong type raises :class:`EventDecodeError` (a
    ``ValueError``) naming the field, as does asking for a view the event has not.
    """

    id: str
    type: str
    created: int
    livemode: bool
    api_version: str | None
    account: str | None = None
    data_object: Mapping[str, Any] = attrs.field(repr=False)
    previous_attributes: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    raw: Mapping[str, Any] = _raw()
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

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
        account = document.get("account")
        return cls(
            id=fields[0],
            type=fields[1],
            created=fields[2],
            livemode=document.get("livemode") is True,
            api_version=version if isinstance(version, str) else None,
            account=account if isinstance(account, str) else None,
            data_object=data["object"],
            previous_attributes=previous if isinstance(previous, dict) else None,
            raw=document,
            extra={key: value for key, value in document.items() if key not in _EVENT_KEYS},
        )

    @property
    def object_type(self) -> str | None:
        """The kind of ``data_object`` (``"subscription"``, ``"invoice"``, ...)."""
        kind = self.data_object.get("object")
        return kind if isinstance(kind, str) else None

    @property
    def typed_object(self) -> TypedObject | None:
        """``data_object`` as a :class:`Subscription`, :class:`PaymentMethod` or
        :class:`Customer`; ``None`` for any other kind of object."""
        name = self.object_type or ""
        kind = _TYPED_OBJECTS.get(name)
        return None if kind is None else read_object(kind, self.data_object, name)

    @property
    def subscription(self) -> Subscription:
        """The :class:`Subscription` of a ``customer.subscription.*`` event."""
        return _expect(self, Subscription)

    @property
    def payment_method(self) -> PaymentMethod:
        """The :class:`PaymentMethod` of a ``payment_method.*`` event."""
        return _expect(self, PaymentMethod)

    @property
    def customer(self) -> Customer:
        """The :class:`Customer` of a ``customer.*`` event such as ``customer.updated``
        (else EventDecodeError)."""
        return _expect(self, Customer)


def _expect(event: Event, kind: type[T]) -> T:
    value = event.typed_object
    if not isinstance(value, kind):
        raise EventDecodeError(
            f"event {event.id} ({event.type}) carries a {event.object_type!r} object, "
            f"not a {kind.__name__}"
        )
    return value


def construct_event(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock,
) -> Event:
    """Verify the signature of ``payload`` and parse it into an :class:`Event`.

    An authentic body that is not a Stripe event raises
    :class:`SignatureVerificationError` with reason ``malformed_event``.
    """
    verify_signature(payload, header, secrets, tolerance=tolerance, clock=clock)
    return Event.from_json(payload)
