"""The runnable demo: ``lattice-stripe demo`` (or ``make demo``).

A Starlette app (:mod:`lattice_stripe.demo.app`) with a fake logged-in user,
a "Manage billing" button that opens the portal through
:class:`~lattice_stripe.AsyncClient`, and a webhook endpoint that keeps the
shown state current; :func:`lattice_stripe.demo.server.run_demo` runs it next
to the local Stripe emulator. Needs the ``lattice-stripe[emulator]`` extra.
"""
