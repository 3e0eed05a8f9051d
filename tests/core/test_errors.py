"""Stripe error responses map onto the error tree, scrubbed, with every attribute kept."""

import json
import pickle

import pytest

from lattice_stripe import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CardError,
    Client,
    IdempotencyError,
    InvalidRequestError,
    LatticeStripeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    SignatureVerificationError,
    StripeError,
    ValidationError,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.errors import error_from_response
from lattice_stripe.core.http import HttpResponse

PORTAL_URL = "https://billing.stripe.com/p/session/live_YWNjdF8xU2VjcmV0UGF0aA"


def stripe_body(**error: object) -> bytes:
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "code", "expected"),
    [
        (400, "invalid_request_error", "parameter_missing", InvalidRequestError),
        (401, "invalid_request_error", None, AuthenticationError),
        (402, "card_error", "card_declined", CardError),
        (403, "invalid_request_error", "secret_key_required", PermissionDeniedError),
        (404, "invalid_request_error", "resource_missing", InvalidRequestError),
        (409, "invalid_request_error", "lock_timeout", RateLimitError),
        (409, "invalid_request_error", "resource_already_exists", InvalidRequestError),
        (429, "invalid_request_error", "rate_limit", RateLimitError),
        (500, "api_error", None, APIError),
        (502, "api_error", None, APIError),
        (503, None, None, APIError),
        (400, "idempotency_error", None, IdempotencyError),
        (409, "idempotency_error", "idempotency_key_in_use", IdempotencyError),
        (400, "card_error", "incorrect_number", CardError),
        (418, "invalid_request_error", None, APIError),
    ],
)
def test_status_and_type_pick_the_error_class(
    status: int, error_type: str | None, code: str | None, expected: type[StripeError]
) -> None:
    """Each status (and the idempotency/card error types) maps to its class in the tree."""
    fields: dict[str, object] = {"message": "Something went wrong."}
    if error_type is not None:
        fields["type"] = error_type
    if code is not None:
        fields["code"] = code
    error = error_from_response(status, stripe_body(**fields), request_id="req_1")
    assert type(error) is expected
    assert error.status == status
    assert error.type == error_type
    assert error.code == code


def test_attributes_mirror_stripe_error_json() -> None:
    """message, param, doc_url, decline_code, request_id and idempotency key are all kept."""
    error = error_from_response(
        402,
        stripe_body(
            type="card_error",
            code="card_declined",
            decline_code="insufficient_funds",
            param="payment_method",
            message="Your card has insufficient funds.",
            doc_url="https://docs.stripe.com/error-codes/card-declined",
        ),
        request_id="req_Q1w2E3",
        idempotency_key="idem-7",
    )
    assert isinstance(error, CardError)
    assert error.message == "Your card has insufficient funds."
    assert error.param == "payment_method"
    assert error.decline_code == "insufficient_funds"
    assert error.doc_url == "https://docs.stripe.com/error-codes/card-declined"
    assert error.request_id == "req_Q1w2E3"
    assert error.idempotency_key == "idem-7"
    assert str(error) == (
        "Your card has insufficient funds. (status=402, type=card_error, code=card_declined, "
        "param=payment_method, request_id=req_Q1w2E3)"
    )


def test_missing_message_gets_a_default() -> None:
    """An error object without a message still says which HTTP status came back."""
    error = error_from_response(500, stripe_body(type="api_error"), request_id=None)
    assert error.message == "Stripe returned HTTP 500"


def test_non_string_fields_are_ignored() -> None:
    """Odd field types in the error JSON become None instead of breaking the mapping."""
    error = error_from_response(
        400, stripe_body(type=5, code=["x"], message={"m": 1}, param=None), request_id=None
    )
    assert type(error) is InvalidRequestError
    assert error.type is None
    assert error.code is None
    assert error.message == "Stripe returned HTTP 400"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"",
        b"null",
        b"[1, 2]",
        b'{"error": "rate limited"}',
        b'{"message": "no error key"}',
        b"\xff\xfe\xfd",
        b"[" * 100_000,
    ],
)
def test_non_stripe_error_bodies_become_response_decode_errors(body: bytes) -> None:
    """A proxy page or invalid/pathological JSON is a ResponseDecodeError with status and prefix."""
    error = error_from_response(502, body, request_id="req_9", idempotency_key="idem-1")
    assert isinstance(error, ResponseDecodeError)
    assert isinstance(error, APIError)
    assert error.status == 502
    assert error.request_id == "req_9"
    assert error.idempotency_key == "idem-1"
    assert error.body_prefix == body[:200].decode("utf-8", "replace")
    assert "HTTP 502" in str(error)


def test_messages_are_scrubbed_of_keys_and_portal_urls() -> None:
    """A message echoing an API key or a portal URL is scrubbed before anyone sees it."""
    error = error_from_response(
        401,
        stripe_body(
            type="invalid_request_error",
            message=f"Invalid API Key provided: sk_live_4eC39HqLyjWDarjtT1zdp7dc; see {PORTAL_URL}",
        ),
        request_id="req_1",
    )
    for text in (error.message, str(error), repr(error), *map(str, error.args)):
        assert "4eC39HqLyjWDarjtT1zdp7dc" not in text
        assert PORTAL_URL not in text
        assert "YWNjdF8x" not in text
    assert "sk_live_[redacted]" in error.message
    assert "[portal-session-url]" in error.message


def test_response_decode_error_prefix_is_scrubbed() -> None:
    """The body prefix of a malformed error response is scrubbed too."""
    body = f"oops rk_test_abcdefghijkl {PORTAL_URL}".encode()
    error = error_from_response(500, body, request_id=None)
    assert isinstance(error, ResponseDecodeError)
    assert "abcdefghijkl" not in error.body_prefix
    assert "YWNjdF8x" not in str(error)


def test_connection_error_message_is_scrubbed() -> None:
    """APIConnectionError scrubs its message: an adapter may echo a URL or header."""
    error = APIConnectionError(f"reset while sending Bearer sk_test_abc123XYZ to {PORTAL_URL}")
    assert "abc123XYZ" not in str(error)
    assert PORTAL_URL not in str(error)


def test_request_id_comes_from_the_request_id_header() -> None:
    """Through a client, the error's request_id is the response's Request-Id header."""
    fake = RecordingTransport()
    fake.queue(
        HttpResponse(
            status=404,
            headers={"Request-Id": "req_FromHeader42", "Content-Type": "application/json"},
            body=stripe_body(
                type="invalid_request_error",
                code="resource_missing",
                param="customer",
                message="No such customer: 'cus_gone'",
            ),
        )
    )
    client = Client("sk_test_123", transport=fake, idempotency_key_factory=lambda: "idem-42")
    with pytest.raises(InvalidRequestError) as info:
        client.billing_portal.sessions.create({"customer": "cus_gone"})
    assert info.value.request_id == "req_FromHeader42"
    assert info.value.idempotency_key == "idem-42"
    assert info.value.param == "customer"


def test_the_tree() -> None:
    """Every error descends from LatticeStripeError; ValidationError is also a ValueError."""
    assert issubclass(ValidationError, LatticeStripeError)
    assert issubclass(ValidationError, ValueError)
    for cls in (
        InvalidRequestError,
        AuthenticationError,
        CardError,
        PermissionDeniedError,
        RateLimitError,
        IdempotencyError,
        APIError,
    ):
        assert issubclass(cls, StripeError)
    assert issubclass(ResponseDecodeError, APIError)
    assert issubclass(StripeError, LatticeStripeError)
    assert issubclass(APIConnectionError, LatticeStripeError)
    assert issubclass(SignatureVerificationError, LatticeStripeError)
    assert not issubclass(APIConnectionError, StripeError)


def test_stripe_errors_survive_pickling() -> None:
    """A StripeError crosses a process boundary with its class, message and attributes."""
    error = error_from_response(
        409,
        stripe_body(type="invalid_request_error", code="lock_timeout", message="Locked."),
        request_id="req_2",
        idempotency_key="idem-2",
    )
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is RateLimitError
    assert clone.__dict__ == error.__dict__
    assert str(clone) == str(error)
    assert clone.args == error.args


def test_response_decode_errors_survive_pickling() -> None:
    """ResponseDecodeError keeps its body prefix through pickle."""
    error = error_from_response(502, b"<html>Bad Gateway</html>", request_id="req_3")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is ResponseDecodeError
    assert clone.body_prefix == "<html>Bad Gateway</html>"
    assert str(clone) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("flow_data.type", "unknown flow type"),
        APIConnectionError("connection refused", should_retry=False),
        SignatureVerificationError("no_matching_signature", "No signature matches."),
    ],
    ids=["validation", "connection", "signature"],
)
def test_other_errors_survive_pickling(error: LatticeStripeError) -> None:
    """Validation, connection and signature errors round-trip with their attributes."""
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.__dict__ == error.__dict__


def test_validation_error_message_is_path_and_reason() -> None:
    """str(ValidationError) is 'path: reason'."""
    error = ValidationError("customer", "required")
    assert str(error) == "customer: required"
    assert (error.path, error.reason) == ("customer", "required")
