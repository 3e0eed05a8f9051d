"""``client.billing_portal.configurations`` (sync and async): portal configurations as code.

Loaded on the first configuration call, so an application that only opens
the portal builds none of the configuration values at start-up.
"""

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

import attrs

from lattice_stripe.client import AsyncClient, Client, _options
from lattice_stripe.core.config import DEFAULT_MAX_PAGES, CallOptions
from lattice_stripe.core.configuration import (
    CONFIGURATION_CREATE,
    CONFIGURATION_LIST,
    CONFIGURATION_RETRIEVE,
    CONFIGURATION_UPDATE,
    ENSURE_METADATA_KEY,
    Change,
    ConfigurationCreateParams,
    ConfigurationListParams,
    ConfigurationUpdateParams,
    guard_configuration_create,
    guard_configuration_list,
    plan_update,
    with_ensure_key,
)
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.operations import Operation, next_page_params
from lattice_stripe.core.session import Configuration, Page

__all__ = ["AsyncConfigurations", "Configurations", "Ensured"]

R = TypeVar("R")
_LOOKUP = ConfigurationListParams(limit=100)


@attrs.frozen(kw_only=True)
class Ensured:
    """What ``configurations.ensure`` found or made, and every change it sent (or would send).

    ``configuration`` is ``None`` only for a dry run that would create one.
    """

    configuration: Configuration | None
    changes: tuple[Change, ...]
    created: bool

    @property
    def in_sync(self) -> bool:
        """True when nothing was (or would be) created or changed."""
        return not self.created and not self.changes


class Configurations:
    """``client.billing_portal.configurations``: create, retrieve, update, list, ensure.

    Every method takes the per-call options of :meth:`Sessions.create` as keywords.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(
        self, operation: "Operation[Any, R]", params: object, call: CallOptions, *path: str
    ) -> R:
        return self._client._run(self._client._flow(operation, params, call, path))

    def create(
        self, params: ConfigurationCreateParams | Mapping[str, object], **options: Any
    ) -> Configuration:
        """Create a portal configuration. Invalid input raises ValidationError and sends nothing."""
        return self._call(CONFIGURATION_CREATE, params, _options(options))

    def retrieve(self, configuration: str, params: object = None, **options: Any) -> Configuration:
        """Fetch the configuration ``configuration`` (a ``bpc_`` ID)."""
        return self._call(CONFIGURATION_RETRIEVE, params, _options(options), configuration)

    def update(
        self,
        configuration: str,
        params: ConfigurationUpdateParams | Mapping[str, object],
        **options: Any,
    ) -> Configuration:
        """Change the configuration ``configuration``; only the fields given are sent."""
        return self._call(CONFIGURATION_UPDATE, params, _options(options), configuration)

    def list(
        self, params: ConfigurationListParams | Mapping[str, object] | None = None, **options: Any
    ) -> Page[Configuration]:
        """One page of configurations (``limit`` 1 to 100, newest first)."""
        return self._call(CONFIGURATION_LIST, params, _options(options))

    def auto_paging_iter(
        self,
        params: ConfigurationListParams | Mapping[str, object] | None = None,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        **options: Any,
    ) -> Iterator[Configuration]:
        """Every configuration, fetching the next page (``starting_after``) only when needed.

        Stops after ``max_pages`` pages.
        """
        return self._pages(_first_page(params, max_pages), max_pages, _options(options))

    def _pages(
        self, checked: ConfigurationListParams | None, max_pages: int, call: CallOptions
    ) -> Iterator[Configuration]:
        for _ in range(max_pages):
            if checked is None:
                return
            page = self._call(CONFIGURATION_LIST, checked, call)
            yield from page.data
            checked = next_page_params(checked, page)

    def ensure(
        self,
        params: ConfigurationCreateParams | Mapping[str, object],
        *,
        key: str,
        dry_run: bool = False,
        **options: Any,
    ) -> Ensured:
        """Make the configuration marked ``key`` match ``params``: create it or update what differs.

        The configuration is found by ``metadata["lattice_stripe_key"]``. In
        sync, nothing is sent beyond the lookup. ``dry_run`` only reports the
        changes.
        """
        call = _options(options)
        desired = _desired(params, key, self._client._config.allow_http_localhost)
        current = _owned(self._pages(_LOOKUP, DEFAULT_MAX_PAGES, call), key)
        if current is None:
            made = None if dry_run else self._call(CONFIGURATION_CREATE, desired, call)
            return Ensured(configuration=made, changes=_creation(desired), created=True)
        update, changes = plan_update(desired, current)
        if update is None or dry_run:
            return Ensured(configuration=current, changes=changes, created=False)
        updated = self._call(CONFIGURATION_UPDATE, update, call, current.id)
        return Ensured(configuration=updated, changes=changes, created=False)


class AsyncConfigurations:
    """``async_client.billing_portal.configurations``: :class:`Configurations`, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(
        self, operation: "Operation[Any, R]", params: object, call: CallOptions, *path: str
    ) -> R:
        return await self._client._run(self._client._flow(operation, params, call, path))

    async def create(
        self, params: ConfigurationCreateParams | Mapping[str, object], **options: Any
    ) -> Configuration:
        """Create a portal configuration; see :meth:`Configurations.create`."""
        return await self._call(CONFIGURATION_CREATE, params, _options(options))

    async def retrieve(
        self, configuration: str, params: object = None, **options: Any
    ) -> Configuration:
        """Fetch the configuration ``configuration``; see :meth:`Configurations.retrieve`."""
        return await self._call(CONFIGURATION_RETRIEVE, params, _options(options), configuration)

    async def update(
        self,
        configuration: str,
        params: ConfigurationUpdateParams | Mapping[str, object],
        **options: Any,
    ) -> Configuration:
        """Change the configuration ``configuration``; see :meth:`Configurations.update`."""
        return await self._call(CONFIGURATION_UPDATE, params, _options(options), configuration)

    async def list(
        self, params: ConfigurationListParams | Mapping[str, object] | None = None, **options: Any
    ) -> Page[Configuration]:
        """One page of configurations; see :meth:`Configurations.list`."""
        return await self._call(CONFIGURATION_LIST, params, _options(options))

    def auto_paging_iter(
        self,
        params: ConfigurationListParams | Mapping[str, object] | None = None,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        **options: Any,
    ) -> AsyncIterator[Configuration]:
        """Every configuration, for ``async for``; see :meth:`Configurations.auto_paging_iter`."""
        return self._pages(_first_page(params, max_pages), max_pages, _options(options))

    async def _pages(
        self, checked: ConfigurationListParams | None, max_pages: int, call: CallOptions
    ) -> AsyncIterator[Configuration]:
        for _ in range(max_pages):
            if checked is None:
                return
            page = await self._call(CONFIGURATION_LIST, checked, call)
            for configuration in page.data:
                yield configuration
            checked = next_page_params(checked, page)

    async def ensure(
        self,
        params: ConfigurationCreateParams | Mapping[str, object],
        *,
        key: str,
        dry_run: bool = False,
        **options: Any,
    ) -> Ensured:
        """Make the configuration marked ``key`` match ``params``; see ``Configurations.ensure``."""
        call = _options(options)
        desired = _desired(params, key, self._client._config.allow_http_localhost)
        found = [item async for item in self._pages(_LOOKUP, DEFAULT_MAX_PAGES, call)]
        current = _owned(iter(found), key)
        if current is None:
            made: Configuration | None = None
            if not dry_run:
                made = await self._call(CONFIGURATION_CREATE, desired, call)
            return Ensured(configuration=made, changes=_creation(desired), created=True)
        update, changes = plan_update(desired, current)
        if update is None or dry_run:
            return Ensured(configuration=current, changes=changes, created=False)
        updated = await self._call(CONFIGURATION_UPDATE, update, call, current.id)
        return Ensured(configuration=updated, changes=changes, created=False)


def _first_page(params: object, max_pages: int) -> ConfigurationListParams:
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise ValidationError("max_pages", "expected a positive integer")
    return guard_configuration_list(params)


def _desired(params: object, key: str, allow_http_localhost: bool) -> ConfigurationCreateParams:
    checked = guard_configuration_create(params, allow_http_localhost=allow_http_localhost)
    return with_ensure_key(checked, key)


def _marked(configuration: Configuration, key: str) -> bool:
    return (configuration.metadata or {}).get(ENSURE_METADATA_KEY) == key


def _owned(configurations: Iterator[Configuration], key: str) -> Configuration | None:
    """The configuration marked ``key``: the active one if any, else the newest inactive one."""
    found = None
    for configuration in configurations:
        if _marked(configuration, key):
            if configuration.active:
                return configuration
            found = found or configuration
    return found


def _creation(desired: ConfigurationCreateParams) -> tuple[Change, ...]:
    return (Change(path="", current=None, desired=desired),)
