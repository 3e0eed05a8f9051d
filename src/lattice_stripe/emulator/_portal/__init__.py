"""The hosted portal: server-rendered HTML forms behind a session's single-use URL.

:mod:`.handlers` holds the routes and what each request does;
:mod:`.pages` renders the pages (``portal.css`` is their stylesheet).
"""

from lattice_stripe.emulator._portal.handlers import COOKIE, routes
from lattice_stripe.emulator._portal.pages import PageError, error_page

__all__ = ["COOKIE", "PageError", "error_page", "routes"]
