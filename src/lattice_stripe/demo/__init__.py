"""The runnable demo: ``lattice-stripe demo`` (or ``make demo``).

A Starlette app (:mod:`lattice_stripe.demo.app`) with a fake logged-in user,
a "Manage billing" button that opens the portal through
:class:`~lattice_stripe.AsyncClient`, and a webhook endpoint that keeps the
shown state current; :func:`lattice_stripe.demo.server.run_demo` runs it next
to the local Stripe emulator. Needs the ``lattice-stripe[emulator]`` extra.
"""

from lattice_stripe.core.errors import MissingDependencyError

try:
    # What the demo's modules import: fail here, once, with the extra named.
    import aiohttp  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as error:
    raise MissingDependencyError(error.name or "starlette", "emulator", __name__) from error
