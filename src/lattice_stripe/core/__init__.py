"""The pure core: values, rules, wire formats, errors, retry and redaction policies.

Nothing here does I/O or imports a transport or framework; the adapters and
clients build on it. Applications import from ``lattice_stripe`` (and
``lattice_stripe.adapters.*``, ``lattice_stripe.contrib.*``,
``lattice_stripe.testing``); the core's modules are listed below for the
parts of the library and for extension authors (a new transport implements
``core.ports``; a new endpoint is an ``core.operations.Operation``).
Importing this package imports none of them.
"""

__all__ = [
    "billing",
    "codec",
    "config",
    "configuration",
    "errors",
    "expand",
    "flow",
    "guard",
    "http",
    "observe",
    "operations",
    "params",
    "ports",
    "redaction",
    "retry",
    "session",
    "shape",
    "version",
    "webhooks",
    "wire",
]
