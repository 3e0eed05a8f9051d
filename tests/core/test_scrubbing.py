"""scrub() and RedactingFilter against secrets as apps really log them, and echoed by a server.

Access logs print a portal path without scheme or host, JSON logs escape the
slashes, query strings percent-encode a whole URL, environment dumps glue a
key to a variable name. Each form must be caught; plain text must survive.
"""

import json
import logging
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lattice_stripe import RedactingFilter
from lattice_stripe.core.errors import StripeError, error_from_response
from lattice_stripe.core.redaction import scrub

TOKEN = "test_YWNjdF8xTjRzY3J1YkF1ZGl0"
URL = f"https://billing.stripe.com/p/session/{TOKEN}"
KEY = "sk_live_51ScrubAuditKey0123456789abcdef"
KEY_TAIL = KEY[8:]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f'127.0.0.1 - - "GET /p/session/{TOKEN} HTTP/1.1" 302', id="access-log path"),
        pytest.param(json.dumps({"url": URL}).replace("/", "\\/"), id="json-escaped slashes"),
        pytest.param(json.dumps({"portal": URL}), id="json"),
        pytest.param(f"next={quote(URL, safe='')}&x=1", id="percent-encoded"),
        pytest.param(f"next={quote(quote(URL, safe=''), safe='')}", id="percent-encoded twice"),
        pytest.param(f"redirecting to billing.stripe.com/p/session/{TOKEN} now", id="scheme-less"),
        pytest.param(f"Location: {URL}", id="header"),
        pytest.param(f"http://127.0.0.1:12111/p/session/{TOKEN}", id="emulator"),
        pytest.param(f"<a href='{URL}'>portal</a>", id="html"),
        pytest.param(f"HTTPS://BILLING.STRIPE.COM/P/SESSION/{TOKEN}", id="upper-case"),
    ],
)
def test_scrub_removes_a_portal_url_in_every_form_apps_log(text: str) -> None:
    """The session token is gone from each form a portal URL takes in real logs."""
    assert TOKEN not in scrub(text)
    assert TOKEN.upper() not in scrub(text).upper()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"Authorization: Bearer%20{KEY}", id="percent-encoded bearer"),
        pytest.param(f"STRIPE_KEY_{KEY}", id="glued to a name"),
        pytest.param(f"env STRIPE_SECRET_KEY={KEY}", id="assignment"),
        pytest.param(f"key:{KEY}.", id="punctuation"),
        pytest.param(f"x{KEY.replace('sk_', 'rk_')}", id="restricted glued"),
        pytest.param("whsec_" + KEY_TAIL + " end", id="webhook secret"),
        pytest.param(f"api_key%3D{KEY}", id="percent-encoded assignment"),
    ],
)
def test_scrub_removes_a_key_wherever_it_is_glued(text: str) -> None:
    """A secret or restricted key, or a webhook secret, is masked whatever precedes it."""
    assert KEY_TAIL not in scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "billing_portal.session created for cus_123",
        "POST /v1/billing_portal/sessions -> 200",
        "pk_live_51Publishable is public",
        "the session ended",
        "https://example.com/account?session=1",
    ],
)
def test_scrub_leaves_ordinary_text_alone(text: str) -> None:
    """Object names, the sessions endpoint, publishable keys and plain words are kept."""
    assert scrub(text) == text


@given(
    before=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
    encoding=st.sampled_from(["plain", "json", "percent", "path", "schemeless"]),
)
def test_scrub_removes_portal_urls_whatever_surrounds_them(before: str, encoding: str) -> None:
    """Any text before a portal URL in any of its logged forms leaves no token behind."""
    form = {
        "plain": URL,
        "json": json.dumps(URL)[1:-1].replace("/", "\\/"),
        "percent": quote(URL, safe=""),
        "path": f"/p/session/{TOKEN}",
        "schemeless": URL.removeprefix("https://"),
    }[encoding]
    assert TOKEN not in scrub(before + form + " after")


@pytest.mark.parametrize("field", ["message", "param", "code", "type", "decline_code", "doc_url"])
def test_secrets_echoed_by_a_server_never_reach_str_or_logs(
    field: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A key or portal URL a server echoes in any error field is scrubbed from str() and logs."""
    echoed = f"{KEY} {URL}"
    body = json.dumps({"error": {"type": "invalid_request_error", field: echoed}}).encode()
    error = error_from_response(400, body, request_id=f"req_{KEY}")
    assert isinstance(error, StripeError)
    logging.getLogger("test").warning("failed: %s %r", error, error)
    for text in (str(error), repr(error), str(getattr(error, field)), str(error.request_id)):
        assert KEY_TAIL not in text
        assert TOKEN not in text
    for record in caplog.records:
        assert KEY_TAIL not in record.getMessage()


def test_the_redacting_filter_catches_the_new_forms() -> None:
    """RedactingFilter scrubs an access-log path and a glued key from a record's arguments."""
    record = logging.LogRecord(
        "app", logging.INFO, __file__, 1, "%s %s", (f"/p/session/{TOKEN}", f"K_{KEY}"), None
    )
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()
    assert KEY_TAIL not in record.getMessage()
