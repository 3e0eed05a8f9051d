"""Building a DjangoEventStore in the test process or in a contract's spawned worker process."""

from typing import TYPE_CHECKING, Any

import django
from django.apps import apps
from django.conf import settings

if TYPE_CHECKING:
    from lattice_stripe.contrib.django.store import DjangoEventStore


def django_store(database: str, **options: Any) -> "DjangoEventStore":
    """A store on the SQLite file ``database``; a fresh worker process sets Django up first."""
    if not apps.ready:
        settings.configure(
            INSTALLED_APPS=["lattice_stripe.contrib.django"],
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": database,
                    "OPTIONS": {"timeout": 20},
                }
            },
            USE_TZ=True,
        )
        django.setup()
    # Imported once Django is set up: the store's module defines a model.
    from lattice_stripe.contrib.django.store import DjangoEventStore

    return DjangoEventStore(**options)
