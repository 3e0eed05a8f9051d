"""An API operation as data: what :func:`lattice_stripe.core.flow.run` needs to drive any call.

An :class:`Operation` names the HTTP method, the path template and its typed
path parameters, the guard that checks the parameters, the encoder (a form
body for POST, a query string for GET), the decoder of a success body, and
whether the request carries an ``Idempotency-Key`` (every POST) and returns a
page of a list. Adding an endpoint means adding one of these values (and its
params and response classes), never a new driver or a second copy of the
flow.
"""

import re
from collections.abc import Callable
from typing import Any, Generic, Literal, Protocol, TypeVar

import attrs

from lattice_stripe.core.codec import decode_session, encode_session_params
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.guard import guard
from lattice_stripe.core.params import SessionCreateParams
from lattice_stripe.core.session import Page, Session
from lattice_stripe.core.shape import encode

__all__ = [
    "SESSION_CREATE",
    "Decoder",
    "Guard",
    "Operation",
    "PathParam",
    "encode_query",
    "next_page_params",
]

P = TypeVar("P")
R = TypeVar("R")
P_co = TypeVar("P_co", covariant=True)
R_co = TypeVar("R_co", covariant=True)


class Guard(Protocol[P_co]):
    """Checks an operation's parameters (a mapping or the typed value); returns the typed value."""

    def __call__(self, params: Any, *, allow_http_localhost: bool) -> P_co: ...


class Decoder(Protocol[R_co]):
    """Turns a success body into the operation's response value, or raises ResponseDecodeError."""

    def __call__(
        self,
        body: bytes,
        *,
        status: int,
        request_id: str | None,
        idempotency_key: str | None,
    ) -> R_co: ...


_ID_CHARS = re.compile(r"[A-Za-z0-9_]+")


@attrs.frozen(kw_only=True)
class PathParam:
    """One ``{name}`` of a path template: a Stripe ID starting with ``prefix``, checked first."""

    name: str
    prefix: str
    what: str

    def check(self, value: object) -> str:
        """Return ``value`` if it is an ID of this kind, else raise ValidationError."""
        if (
            isinstance(value, str)
            and len(value) <= 5000
            and value.startswith(self.prefix)
            and _ID_CHARS.fullmatch(value) is not None
        ):
            return value
        raise ValidationError(
            self.name, f"expected the ID of a {self.what}, starting with '{self.prefix}'"
        )


@attrs.frozen(kw_only=True)
class Operation(Generic[P, R]):
    """One Stripe API operation, e.g. ``POST /v1/billing_portal/configurations/{configuration}``.

    ``keyed`` (every POST by default) sends an ``Idempotency-Key``, the same on
    every retry; a GET carries none and sends its parameters as a query string.
    ``lists`` marks an operation that answers with a :class:`Page`.
    """

    name: str
    method: Literal["GET", "POST"]
    path: str
    guard: Guard[P]
    encode: Callable[[P], bytes]
    decode: Decoder[R]
    path_params: tuple[PathParam, ...] = ()
    lists: bool = False
    keyed: bool = attrs.field(
        default=attrs.Factory(lambda self: self.method == "POST", takes_self=True)
    )

    def path_for(self, args: tuple[object, ...]) -> str:
        """The path with each ``{name}`` replaced by its checked argument."""
        if len(args) != len(self.path_params):
            raise TypeError(f"{self.name} takes {len(self.path_params)} path argument(s)")
        if not args:
            return self.path
        return self.path.format_map(
            {
                param.name: param.check(arg)
                for param, arg in zip(self.path_params, args, strict=True)
            }
        )


class _Paged(Protocol):
    @property
    def starting_after(self) -> str | None: ...
    @property
    def ending_before(self) -> str | None: ...


_PagedT = TypeVar("_PagedT", bound=_Paged)


def next_page_params(params: _PagedT, page: Page[Any]) -> _PagedT | None:
    """The parameters of the page after ``page`` (``starting_after`` its last ID), or ``None``.

    Walking backwards (``ending_before`` set) asks for the page before the
    first item instead, as Stripe's SDKs do.
    """
    if not page.has_more or not page.data:
        return None
    if params.ending_before is not None:
        return attrs.evolve(params, ending_before=page.data[0].id)  # type: ignore[misc]
    return attrs.evolve(params, starting_after=page.data[-1].id)  # type: ignore[misc]


SESSION_CREATE: Operation[SessionCreateParams, Session] = Operation(
    name="billing_portal.sessions.create",
    method="POST",
    path="/v1/billing_portal/sessions",
    guard=guard,
    encode=encode_session_params,
    decode=decode_session,
)


def encode_query(params: object) -> bytes:
    """The query string of a GET operation's params (``expand[]=``, ``created[gte]=``)."""
    return encode(params, query=True)
