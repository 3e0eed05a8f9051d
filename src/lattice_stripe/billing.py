"""``client.customers`` and ``client.subscriptions``, and the billing state an app re-reads.

Each method names an :class:`~lattice_stripe.core.operations.Operation` and
hands it to the client's flow, exactly as ``client.billing_portal.configurations``
does: the guard checks the parameters before anything is sent, the flow
retries, the codec decodes into the values of :mod:`lattice_stripe.core.billing`.

:func:`billing_state` (and :func:`abilling_state`) reads every subscription of
a customer and returns a :class:`~lattice_stripe.core.billing.BillingState`:
what the portal's return route and a webhook handler should trust, rather than
the order in which events arrived.
"""

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

from lattice_stripe.client import AsyncClient, Client, _options
from lattice_stripe.core.billing import (
    CUSTOMER_CREATE,
    CUSTOMER_RETRIEVE,
    CUSTOMER_UPDATE,
    SUBSCRIPTION_LIST,
    SUBSCRIPTION_RETRIEVE,
    BillingState,
    Customer,
    CustomerCreateParams,
    CustomerUpdateParams,
    Subscription,
    SubscriptionListParams,
    SubscriptionListStatus,
    guard_subscription_list,
    summarize,
)
from lattice_stripe.core.config import DEFAULT_MAX_PAGES, CallOptions
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.operations import Operation, PathParam, next_page_params
from lattice_stripe.core.session import Page

__all__ = [
    "AsyncCustomers",
    "AsyncSubscriptions",
    "Customers",
    "Subscriptions",
    "abilling_state",
    "billing_state",
]

R = TypeVar("R")
CustomerParams = CustomerCreateParams | Mapping[str, object]
ListParams = SubscriptionListParams | Mapping[str, object] | None


def _first_page(
    params: object, max_pages: int, filters: Mapping[str, object]
) -> SubscriptionListParams:
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise ValidationError("max_pages", "expected a positive integer")
    return _list_params(params, filters)


def _list_params(params: object, filters: Mapping[str, object]) -> SubscriptionListParams:
    """The list's params from a mapping or value, and the keyword filters, checked."""
    given = {name: value for name, value in filters.items() if value is not None}
    if not given:
        return guard_subscription_list(params)
    if params is not None:
        raise ValidationError(
            "params", "pass the filters either as params or as keywords, not both"
        )
    return guard_subscription_list(given)


class Customers:
    """``client.customers``: create, retrieve and update Stripe customers.

    Every method takes the per-call options of ``Sessions.create`` as keywords
    (``idempotency_key=`` makes a create safe to repeat: see
    :func:`lattice_stripe.contrib.customer_idempotency_key`).
    """

    def __init__(self, client: "Client") -> None:
        self._client = client

    def _call(
        self, operation: "Operation[Any, R]", params: object, call: CallOptions, *path: str
    ) -> R:
        return self._client._run(self._client._flow(operation, params, call, path))

    def create(self, params: CustomerParams | None = None, **options: Any) -> Customer:
        """Create a customer. Invalid input raises ValidationError and sends nothing."""
        return self._call(CUSTOMER_CREATE, params, _options(options))

    def retrieve(self, customer: str, params: object = None, **options: Any) -> Customer:
        """Fetch the customer ``customer`` (a ``cus_`` ID)."""
        return self._call(CUSTOMER_RETRIEVE, params, _options(options), customer)

    def update(
        self, customer: str, params: CustomerUpdateParams | Mapping[str, object], **options: Any
    ) -> Customer:
        """Change the customer ``customer``; only the fields given are sent."""
        return self._call(CUSTOMER_UPDATE, params, _options(options), customer)


class AsyncCustomers:
    """``async_client.customers``: :class:`Customers`, awaited."""

    def __init__(self, client: "AsyncClient") -> None:
        self._client = client

    async def _call(
        self, operation: "Operation[Any, R]", params: object, call: CallOptions, *path: str
    ) -> R:
        return await self._client._run(self._client._flow(operation, params, call, path))

    async def create(self, params: CustomerParams | None = None, **options: Any) -> Customer:
        """Create a customer; see :meth:`Customers.create`."""
        return await self._call(CUSTOMER_CREATE, params, _options(options))

    async def retrieve(self, customer: str, params: object = None, **options: Any) -> Customer:
        """Fetch the customer ``customer``; see :meth:`Customers.retrieve`."""
        return await self._call(CUSTOMER_RETRIEVE, params, _options(options), customer)

    async def update(
        self, customer: str, params: CustomerUpdateParams | Mapping[str, object], **options: Any
    ) -> Customer:
        """Change the customer ``customer``; see :meth:`Customers.update`."""
        return await self._call(CUSTOMER_UPDATE, params, _options(options), customer)


class Subscriptions:
    """``client.subscriptions``: retrieve one, list them (filters as params or keywords)."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    def _call(
        self, operation: "Operation[Any, R]", params: object, call: CallOptions, *path: str
    ) -> R:
        return self._client._run(self._client._flow(operation, params, call, path))

    def retrieve(self, subscription: str, params: object = None, **options: Any) -> Subscription:
        """Fetch the subscription ``subscription`` (a ``sub_`` ID)."""
        return self._call(SUBSCRIPTION_RETRIEVE, params, _options(options), subscription)

    def list(
        self,
        params: ListParams = None,
        *,
        customer: str | None = None,
        status: SubscriptionListStatus | None = None,
        price: str | None = None,
        limit: int | None = None,
        **options: Any,
    ) -> Page[Subscription]:
        """One page of subscriptions, newest first (by default every status but ``canceled``)."""
        filters = {"customer": customer, "status": status, "price": price, "limit": limit}
        checked = _list_params(params, filters)
        return self._call(SUBSCRIPTION_LIST, checked, _options(options))

    def auto_paging_iter(
        self,
        params: ListParams = None,
        *,
        customer: str | None = None,
        status: SubscriptionListStatus | None = None,
        price: str | None = None,
        limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        **options: Any,
    ) -> Iterator[Subscription]:
        """Every matching subscription, fetching the next page only when needed.

        Stops after ``max_pages`` pages.
        """
        filters = {"customer": customer, "status": status, "price": price, "limit": limit}
        first = _first_page(params, max_pages, filters)
        return self._pages(first, max_pages, _options(options))

    def _pages(self, checked: Any, max_pages: int, call: CallOptions) -> Iterator[Subscription]:
        for _ in range(max_pages):
            if checked is None:
                return
            page = self._call(SUBSCRIPTION_LIST, checked, call)
            yield from page.data
            checked = next_page_params(checked, page)


class AsyncSubscriptions:
    """``async_client.subscriptions``: :class:`Subscriptions`, awaited (``async for`` to page)."""

    def __init__(self, client: "AsyncClient") -> None:
        self._client = client

    async def _call(
        self, operation: "Operation[Any, R]", params: object, call: CallOptions, *path: str
    ) -> R:
        return await self._client._run(self._client._flow(operation, params, call, path))

    async def retrieve(
        self, subscription: str, params: object = None, **options: Any
    ) -> Subscription:
        """Fetch the subscription ``subscription``; see :meth:`Subscriptions.retrieve`."""
        return await self._call(SUBSCRIPTION_RETRIEVE, params, _options(options), subscription)

    async def list(
        self,
        params: ListParams = None,
        *,
        customer: str | None = None,
        status: SubscriptionListStatus | None = None,
        price: str | None = None,
        limit: int | None = None,
        **options: Any,
    ) -> Page[Subscription]:
        """One page of subscriptions; see :meth:`Subscriptions.list`."""
        filters = {"customer": customer, "status": status, "price": price, "limit": limit}
        checked = _list_params(params, filters)
        return await self._call(SUBSCRIPTION_LIST, checked, _options(options))

    def auto_paging_iter(
        self,
        params: ListParams = None,
        *,
        customer: str | None = None,
        status: SubscriptionListStatus | None = None,
        price: str | None = None,
        limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        **options: Any,
    ) -> AsyncIterator[Subscription]:
        """Every matching subscription, for ``async for``; as ``Subscriptions.auto_paging_iter``."""
        filters = {"customer": customer, "status": status, "price": price, "limit": limit}
        first = _first_page(params, max_pages, filters)
        return self._pages(first, max_pages, _options(options))

    async def _pages(
        self, checked: Any, max_pages: int, call: CallOptions
    ) -> AsyncIterator[Subscription]:
        for _ in range(max_pages):
            if checked is None:
                return
            page = await self._call(SUBSCRIPTION_LIST, checked, call)
            for subscription in page.data:
                yield subscription
            checked = next_page_params(checked, page)


_CUSTOMER = PathParam(name="customer_id", prefix="cus_", what="customer")


def billing_state(client: "Client", customer_id: str, **options: Any) -> BillingState:
    """Read every subscription of ``customer_id`` (all statuses, all pages) from Stripe.

    Call it on the portal's return route (the redirect is not authentication)
    and from webhook handlers, so that the stored state is Stripe's, whatever
    order the events arrived in. Takes the per-call options as keywords.
    """
    customer = _CUSTOMER.check(customer_id)
    found = client.subscriptions.auto_paging_iter(
        customer=customer, status="all", limit=100, **options
    )
    return summarize(customer, found)


async def abilling_state(client: "AsyncClient", customer_id: str, **options: Any) -> BillingState:
    """:func:`billing_state` for the :class:`~lattice_stripe.AsyncClient`, awaited."""
    customer = _CUSTOMER.check(customer_id)
    found = client.subscriptions.auto_paging_iter(
        customer=customer, status="all", limit=100, **options
    )
    return summarize(customer, [subscription async for subscription in found])
