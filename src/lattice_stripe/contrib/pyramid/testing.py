"""For tests: ``config.include("lattice_stripe.contrib.pyramid.testing")``.

Like ``pyramid_mailer.testing``: it includes ``lattice_stripe.contrib.pyramid``
with a :class:`~lattice_stripe.adapters.recording.RecordingTransport` in place
of the network, and a test key if ``lattice_stripe.api_key`` is not set. It
works as well from the ``pyramid.includes`` setting, so a test can run the
application's own ``main``::

    settings = {"pyramid.includes": "lattice_stripe.contrib.pyramid.testing"}
    app = webtest.TestApp(main({}, **settings))
    app.post("/billing/portal")
    fake = recording_transport(app.app.registry)
    assert fake.last_request.params["customer"] == "cus_123"
"""

from pyramid.config import Configurator
from pyramid.registry import Registry

from lattice_stripe.contrib.pyramid import PREFIX, TRANSPORT_KEY
from lattice_stripe.testing import RecordingTransport

__all__ = ["TEST_API_KEY", "includeme", "recording_transport"]

TEST_API_KEY = "sk_test_LatticeStripeTesting"


def includeme(config: Configurator) -> None:
    """Include lattice_stripe.contrib.pyramid over a RecordingTransport."""
    config.get_settings().setdefault(PREFIX + "api_key", TEST_API_KEY)
    config.include("lattice_stripe.contrib.pyramid")
    config.set_stripe_transport(RecordingTransport())


def recording_transport(registry: Registry) -> RecordingTransport:
    """The RecordingTransport the client sends through, for assertions and queued errors."""
    transport = registry.get(TRANSPORT_KEY)
    if not isinstance(transport, RecordingTransport):
        raise RuntimeError(
            'no RecordingTransport: config.include("lattice_stripe.contrib.pyramid.testing")'
        )
    return transport
