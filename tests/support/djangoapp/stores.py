"""Building a DjangoEventStore in the test process or in a contract's spawned worker process."""

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import django
from django.apps import apps
from django.conf import settings

if TYPE_CHECKING:
    from lattice_stripe.contrib.django.store import DjangoEventStore


def _set_up(databases: Mapping[str, Mapping[str, Any]]) -> None:
    """In a fresh worker process: Django with just the app, on the test's databases."""
    if not apps.ready:
        settings.configure(
            INSTALLED_APPS=["lattice_stripe.contrib.django"],
            DATABASES={alias: dict(values) for alias, values in databases.items()},
            USE_TZ=True,
        )
        django.setup()


def django_store(database: str, **options: Any) -> "DjangoEventStore":
    """A store on the SQLite file ``database``; a fresh worker process sets Django up first."""
    _set_up(
        {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": database,
                "OPTIONS": {"timeout": 20},
            }
        }
    )
    # Imported once Django is set up: the store's module defines a model.
    from lattice_stripe.contrib.django.store import DjangoEventStore

    return DjangoEventStore(**options)


class RequestScoped:
    """A store whose every call from a worker thread ends as a request does in Django: the
    thread's connections closed. The contract's bare threads have no requests; left open,
    their PostgreSQL connections would outlive them. The main thread keeps its connection."""

    def __init__(self, store: "DjangoEventStore") -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            from django.db import connections

            try:
                return method(*args, **kwargs)
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connections.close_all()

        return call


def django_postgres_store(database: Mapping[str, Any], **options: Any) -> Any:
    """A store on the ``postgres`` alias, with ``database`` its settings; request-scoped."""
    _set_up({"default": database, "postgres": database})
    from lattice_stripe.contrib.django.store import DjangoEventStore

    return RequestScoped(DjangoEventStore(using="postgres", **options))
