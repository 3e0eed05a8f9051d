"""Test helpers for applications that use lattice-stripe, and the pytest plugin.

With lattice-stripe installed, pytest finds four fixtures (the plugin is
registered under the ``pytest11`` entry point, nothing to configure):

- ``stripe_recorder``: a fresh :class:`StripeRecorder` per test, a fake
  Stripe with ``assert_portal_session_created(...)``, ``last_params``,
  ``queue_error(...)``, and ready ``client()`` / ``async_client()``;
- ``stripe_emulator``: the local Stripe emulator, started once per test
  session on a free loopback port (an :class:`EmulatorServer`: ``base_url``,
  ``api_key``, ``webhook_secret``, ``webhooks()``, ``reset()``); needs
  ``lattice-stripe[emulator]``;
- ``fresh_stripe_emulator``: the same emulator, reset to its seed before
  the test, for tests that must not see what earlier ones changed;
- ``serve_app``: runs an ASGI app (Starlette, FastAPI) on a loopback port,
  ``url = serve_app(app)``, so that the emulator's webhooks reach it.

Outside pytest, build a :class:`StripeRecorder` yourself or run
``with emulator_server() as stripe: ...`` and ``with serve_asgi(app) as url:
...``. :class:`RecordingTransport` (the fake both ports accept) is here too:
the framework integrations' test helpers take it from this package.
:func:`session_response` / :func:`session_body` (and
:func:`configuration_response` / :func:`configuration_body`) give Stripe's
JSON for a portal session (configuration), every field, any overridden, for
hand-made fakes.
Importing this package imports neither aiohttp nor any framework.
"""

from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.testing.emulator import EmulatorServer, SentWebhook, emulator_server
from lattice_stripe.testing.recorder import ANY, TEST_API_KEY, PortalSessionCall, StripeRecorder
from lattice_stripe.testing.responses import (
    TEST_PORTAL_URL,
    configuration_body,
    configuration_response,
    session_body,
    session_response,
)
from lattice_stripe.testing.uvicorn import serve_asgi

__all__ = [
    "ANY",
    "TEST_API_KEY",
    "TEST_PORTAL_URL",
    "EmulatorServer",
    "PortalSessionCall",
    "RecordingTransport",
    "SentWebhook",
    "StripeRecorder",
    "configuration_body",
    "configuration_response",
    "emulator_server",
    "serve_asgi",
    "session_body",
    "session_response",
]
