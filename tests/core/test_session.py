"""The Session value and its neighbours never print a portal URL or an API key."""

import copy
import json
import pickle
from typing import Any

import pytest

from lattice_stripe import AsyncClient, Client, HttpRequest, HttpResponse, Session
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.codec import decode_session
from lattice_stripe.core.config import CallOptions, ClientConfig
from stripe_api import STRIPE_API

FIXTURE = STRIPE_API / "fixture_session.json"
API_KEY = "sk_test_51HxSecretKeyMaterial0123456789"
LIVE_KEY = "rk_live_51HxRestrictedKeyMaterial987654"
PORTAL_URL = "https://billing.stripe.com/p/session/test_YWNjdF8xSGdTZWNyZXQ"


def session_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    document["url"] = PORTAL_URL
    document["flow"]["after_completion"]["redirect"]["return_url"] = "https://example.com/flow-only"
    return document


@pytest.fixture
def session() -> Session:
    """A decoded session with a realistic portal URL and a flow."""
    return decode_session(json.dumps(session_document()).encode())


def test_repr_and_str_leave_url_and_flow_out_entirely(session: Session) -> None:
    """url and flow are absent from repr/str: no value, no field name, no [FILTERED] marker."""
    for text in (repr(session), str(session), f"{session}", f"{session!r}"):
        assert PORTAL_URL not in text
        assert "url=" not in text.replace("return_url=", "")
        assert "flow" not in text
        assert "FILTERED" not in text
        assert "https://example.com/flow-only" not in text


def test_repr_shows_the_safe_fields(session: Session) -> None:
    """repr keeps what helps debugging: id, customer, livemode, return_url."""
    text = repr(session)
    assert "id='bps_1Pgc7HB7WZ01zgkWNs8s9Auh'" in text
    assert "customer='cus_QXg1o8vcGmoR32'" in text
    assert "livemode=True" in text
    assert "return_url='https://example.com/account'" in text


def test_url_is_readable_directly(session: Session) -> None:
    """The URL is there for the redirect: session.url returns it."""
    assert session.url == PORTAL_URL


def test_to_dict_includes_url_flow_and_extras() -> None:
    """to_dict() is the escape hatch: url, flow and unknown fields all come back."""
    document = session_document()
    document["added_later"] = {"nested": True}
    session = decode_session(json.dumps(document).encode())
    result = session.to_dict()
    assert result["url"] == PORTAL_URL
    assert result["flow"]["type"] == "subscription_update"
    assert result["flow"]["after_completion"]["redirect"] == {
        "return_url": "https://example.com/flow-only"
    }
    assert result["added_later"] == {"nested": True}
    assert json.loads(json.dumps(result))["url"] == PORTAL_URL


def test_extras_never_print() -> None:
    """A URL-bearing field Stripe adds later stays out of repr too."""
    document = session_document()
    document["url_v2"] = PORTAL_URL + "_v2"
    with_extra = decode_session(json.dumps(document).encode())
    assert PORTAL_URL not in repr(with_extra)
    assert with_extra.extra["url_v2"] == PORTAL_URL + "_v2"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_is_refused(session: Session, protocol: int) -> None:
    """A session refuses to be pickled with any protocol, explaining why."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(session, protocol=protocol)


def test_copying_is_refused_too(session: Session) -> None:
    """copy goes through the same reduce hook, so a session cannot be duplicated that way."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(session)


def test_session_is_frozen(session: Session) -> None:
    """A decoded session cannot be modified."""
    with pytest.raises(AttributeError):
        session.url = "https://evil.example/"  # type: ignore[misc]


def test_client_repr_never_contains_the_api_key() -> None:
    """Client and AsyncClient reprs name the base URL and transport, never the key."""
    fake = RecordingTransport()
    for client in (
        Client(API_KEY, transport=fake),
        AsyncClient(API_KEY, transport=fake),
        Client(LIVE_KEY, transport=fake),
    ):
        text = repr(client) + str(client)
        assert API_KEY not in text
        assert LIVE_KEY not in text
        assert "51Hx" not in text
        assert "RecordingTransport" in text


def test_config_and_options_repr_never_contain_the_api_key() -> None:
    """ClientConfig and CallOptions keep the key out of repr."""
    config = ClientConfig(api_key=API_KEY)
    options = CallOptions(api_key=LIVE_KEY, idempotency_key="k1")
    assert API_KEY not in repr(config)
    assert LIVE_KEY not in repr(options)
    assert "k1" in repr(options)


def test_http_request_repr_masks_authorization() -> None:
    """HttpRequest repr shows the auth scheme and key prefix only."""
    request = HttpRequest(
        method="POST",
        url="https://api.stripe.com/v1/billing_portal/sessions",
        headers={"Authorization": f"Bearer {API_KEY}", "Stripe-Version": "2026-10-28.endive"},
        body=b"customer=cus_1",
    )
    text = repr(request)
    assert API_KEY not in text
    assert "51Hx" not in text
    assert "'Authorization': 'Bearer sk_test_[redacted]'" in text
    assert "'Stripe-Version': '2026-10-28.endive'" in text


def test_http_request_repr_masks_any_header_case() -> None:
    """A lower-case authorization header is masked as well."""
    request = HttpRequest(method="POST", url="https://x.test/", headers={"authorization": LIVE_KEY})
    assert LIVE_KEY not in repr(request)


def test_http_response_repr_hides_the_body() -> None:
    """A response's repr gives the body length only: the body of a session holds its URL."""
    body = json.dumps(session_document()).encode()
    response = HttpResponse(status=200, headers={"Request-Id": "req_1"}, body=body)
    assert PORTAL_URL not in repr(response)
    assert f"<{len(body)} bytes>" in repr(response)
    assert response.request_id == "req_1"
