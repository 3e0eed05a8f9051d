"""A local, stateful Stripe stand-in: the portal API, a hosted portal, signed webhooks.

From a shell (the ``lattice-stripe[emulator]`` extra)::

    lattice-stripe emulator --port 12111 --webhook-url http://127.0.0.1:8000/webhooks/stripe

From code, inside a running event loop::

    async with serve(Emulator(webhook_url=...)) as running:
        client = AsyncClient(DEFAULT_API_KEY, base_url=running.url, allow_http_localhost=True)

or from synchronous code, with :func:`serve_in_thread`. The state (customers,
subscriptions, prices, payment methods, the portal configuration) comes from
the packaged ``seed.json`` or a file of the same shape (:func:`load_seed`).
"""

from lattice_stripe.core.errors import MissingDependencyError

try:
    import aiohttp  # noqa: F401  (every emulator module needs it: fail here, with the extra named)
except ImportError as error:
    raise MissingDependencyError(error.name or "aiohttp", "emulator", __name__) from error

from lattice_stripe.emulator._app import (
    PortInUseError,
    RunningEmulator,
    create_app,
    serve,
    serve_in_thread,
)
from lattice_stripe.emulator._engine import DEFAULT_API_KEY, DEFAULT_WEBHOOK_SECRET, Emulator
from lattice_stripe.emulator._state import Seed, SeedError, load_seed

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "Emulator",
    "PortInUseError",
    "RunningEmulator",
    "Seed",
    "SeedError",
    "create_app",
    "load_seed",
    "serve",
    "serve_in_thread",
]
