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

from lattice_stripe.core.billing import (
    Customer,
    CustomerCreateParams,
    CustomerRetrieveParams,
    CustomerUpdateParams,
    Subscription,
    SubscriptionListParams,
    SubscriptionRetrieveParams,
    guard_customer_create,
    guard_customer_retrieve,
    guard_customer_update,
    guard_subscription_list,
    guard_subscription_retrieve,
)
from lattice_stripe.core.codec import (
    decode_configuration,
    decode_configuration_page,
    decode_session,
    encode_session_params,
    object_decoder,
    page_decoder,
)
from lattice_stripe.core.configuration import (
    ConfigurationCreateParams,
    ConfigurationListParams,
    ConfigurationRetrieveParams,
    ConfigurationUpdateParams,
    guard_configuration_create,
    guard_configuration_list,
    guard_configuration_retrieve,
    guard_configuration_update,
)
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.guard import guard
from lattice_stripe.core.params import SessionCreateParams
from lattice_stripe.core.session import Configuration, Page, Session
from lattice_stripe.core.shape import encode

__all__ = [
    "CONFIGURATION_CREATE",
    "CONFIGURATION_LIST",
    "CONFIGURATION_RETRIEVE",
    "CONFIGURATION_UPDATE",
    "CUSTOMER_CREATE",
    "CUSTOMER_RETRIEVE",
    "CUSTOMER_UPDATE",
    "SESSION_CREATE",
    "SUBSCRIPTION_LIST",
    "SUBSCRIPTION_RETRIEVE",
    "Decoder",
    "Guard",
    "Operation",
    "PathParam",
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

_CONFIGURATION = PathParam(name="configuration", prefix="bpc_", what="portal configuration")
_CONFIGURATIONS = "/v1/billing_portal/configurations"


def _encode_query(params: object) -> bytes:
    return encode(params, query=True)


CONFIGURATION_CREATE: Operation[ConfigurationCreateParams, Configuration] = Operation(
    name="billing_portal.configurations.create",
    method="POST",
    path=_CONFIGURATIONS,
    guard=guard_configuration_create,
    encode=encode,
    decode=decode_configuration,
)
CONFIGURATION_UPDATE: Operation[ConfigurationUpdateParams, Configuration] = Operation(
    name="billing_portal.configurations.update",
    method="POST",
    path=_CONFIGURATIONS + "/{configuration}",
    path_params=(_CONFIGURATION,),
    guard=guard_configuration_update,
    encode=encode,
    decode=decode_configuration,
)
CONFIGURATION_RETRIEVE: Operation[ConfigurationRetrieveParams, Configuration] = Operation(
    name="billing_portal.configurations.retrieve",
    method="GET",
    path=_CONFIGURATIONS + "/{configuration}",
    path_params=(_CONFIGURATION,),
    guard=guard_configuration_retrieve,
    encode=_encode_query,
    decode=decode_configuration,
)
CONFIGURATION_LIST: Operation[ConfigurationListParams, Page[Configuration]] = Operation(
    name="billing_portal.configurations.list",
    method="GET",
    path=_CONFIGURATIONS,
    guard=guard_configuration_list,
    encode=_encode_query,
    decode=decode_configuration_page,
    lists=True,
)

_CUSTOMER = PathParam(name="customer", prefix="cus_", what="customer")
_SUBSCRIPTION = PathParam(name="subscription", prefix="sub_", what="subscription")
_decode_customer = object_decoder(Customer, "customer")
_decode_subscription = object_decoder(Subscription, "subscription")

CUSTOMER_CREATE: Operation[CustomerCreateParams, Customer] = Operation(
    name="customers.create",
    method="POST",
    path="/v1/customers",
    guard=guard_customer_create,
    encode=encode,
    decode=_decode_customer,
)
CUSTOMER_UPDATE: Operation[CustomerUpdateParams, Customer] = Operation(
    name="customers.update",
    method="POST",
    path="/v1/customers/{customer}",
    path_params=(_CUSTOMER,),
    guard=guard_customer_update,
    encode=encode,
    decode=_decode_customer,
)
CUSTOMER_RETRIEVE: Operation[CustomerRetrieveParams, Customer] = Operation(
    name="customers.retrieve",
    method="GET",
    path="/v1/customers/{customer}",
    path_params=(_CUSTOMER,),
    guard=guard_customer_retrieve,
    encode=_encode_query,
    decode=_decode_customer,
)
SUBSCRIPTION_RETRIEVE: Operation[SubscriptionRetrieveParams, Subscription] = Operation(
    name="subscriptions.retrieve",
    method="GET",
    path="/v1/subscriptions/{subscription}",
    path_params=(_SUBSCRIPTION,),
    guard=guard_subscription_retrieve,
    encode=_encode_query,
    decode=_decode_subscription,
)
SUBSCRIPTION_LIST: Operation[SubscriptionListParams, Page[Subscription]] = Operation(
    name="subscriptions.list",
    method="GET",
    path="/v1/subscriptions",
    guard=guard_subscription_list,
    encode=_encode_query,
    decode=page_decoder(Subscription, "subscription"),
    lists=True,
)
