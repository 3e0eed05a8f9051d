"""Django: the Stripe Customer Portal and its webhooks (the ``lattice-stripe[django]`` extra).

Add ``"lattice_stripe.contrib.django"`` to ``INSTALLED_APPS``, the
``LATTICE_STRIPE`` setting (see :mod:`lattice_stripe.contrib.django.conf`), and
``path("billing/", include("lattice_stripe.contrib.django.urls"))``; run
``manage.py migrate`` for the event store's table and ``manage.py check`` for
the settings. Then:

- :mod:`~lattice_stripe.contrib.django.views`: ``portal`` / ``PortalView`` (and
  their async twins), ``redirect_to_portal`` for your own views, ``webhook``;
- :mod:`~lattice_stripe.contrib.django.signals`: ``@webhook_handler(...)`` and
  ``event_signal(type)``;
- :mod:`~lattice_stripe.contrib.django.store`: ``DjangoEventStore``;
- :mod:`~lattice_stripe.contrib.django.testing`: ``override_stripe`` and the
  fixtures for pytest-django and ``TestCase``.

Importing this package loads no models: it is safe in ``INSTALLED_APPS``.
"""

__all__: list[str] = []
