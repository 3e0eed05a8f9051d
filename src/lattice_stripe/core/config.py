"""The library's defaults, named once: every client, shim and settings parser reads them here.

Times are in seconds. ``timeout`` bounds each wait for the server (connect
aside), ``deadline`` the whole call: every attempt, the pool wait, connect,
send, headers and body, and the sleeps between retries.
"""

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
]

API_VERSION = "2026-10-28.endive"
"""The Stripe API version the library's values are written for, sent as ``Stripe-Version``."""

DEFAULT_BASE_URL = "https://api.stripe.com"

DEFAULT_TIMEOUT = 80.0
"""Idle timeout: the longest wait for the next bytes of a response (Stripe's SDKs use 80 s)."""

DEFAULT_CONNECT_TIMEOUT = 30.0
"""The longest wait for a TCP (and TLS) connection to be set up."""

DEFAULT_DEADLINE = 90.0
"""The longest a whole call may take, retries and their sleeps included.

A server that trickles its answer a byte at a time never trips an idle
timeout; the deadline ends the call anyway.
"""

DEFAULT_MAX_RETRIES = 2

DEFAULT_MAX_PAGES = 100
"""The most pages ``auto_paging_iter`` fetches before it stops (10,000 objects at limit 100)."""

DEFAULT_MAX_RESPONSE_BYTES = 1 << 20
"""A response body larger than this is refused (a portal session is about 1 KB)."""

DEFAULT_POOL_SIZE = 64
"""Idle keep-alive connections kept per host: enough for a threaded server's workers to share
one client without discarding connections."""
