"""The operations core: any operation through the one flow; GET queries, lists and pages."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from lattice_stripe import (
    APIConnectionError,
    AsyncClient,
    Client,
    HttpRequest,
    HttpResponse,
    ResponseDecodeError,
    ValidationError,
)
from lattice_stripe.adapters.recording import RecordingTransport, stripe_error_response
from lattice_stripe.core.codec import decode_configuration_page, decode_form
from lattice_stripe.core.config import CallOptions, ClientConfig
from lattice_stripe.core.configuration import (
    CONFIGURATION_LIST,
    CONFIGURATION_RETRIEVE,
    CONFIGURATION_UPDATE,
)
from lattice_stripe.core.flow import Sleep, run
from lattice_stripe.core.operations import Operation, PathParam
from lattice_stripe.core.shape import encode, keys_of, structure
from lattice_stripe.testing import configuration_response

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"


def configuration(number: int, **fields: Any) -> dict[str, Any]:
    """A billing_portal.configuration as Stripe returns it, numbered."""
    return configuration_response(
        id=f"bpc_{number}",
        created=1700000000 + number,
        updated=1700000000 + number,
        is_default=number == 0,
        **fields,
    )


def ok(document: object) -> HttpResponse:
    return HttpResponse(
        status=200, headers={"request-id": "req_1"}, body=json.dumps(document).encode()
    )


def page(numbers: range, has_more: bool) -> HttpResponse:
    return ok(
        {
            "object": "list",
            "data": [configuration(number) for number in numbers],
            "has_more": has_more,
            "url": "/v1/billing_portal/configurations",
        }
    )


def start(operation: Operation[Any, Any], params: object, *path: object) -> Any:
    return run(
        operation,
        ClientConfig(api_key=API_KEY),
        params,
        CallOptions(),
        path_args=path,
        new_idempotency_key=lambda: "key-1",
        random=lambda: 0.5,
        monotonic=lambda: 0.0,
    )


def test_get_request_carries_no_idempotency_key_nor_body() -> None:
    """A GET sends its parameters as a query string, with no Idempotency-Key or Content-Type."""
    request = next(start(CONFIGURATION_RETRIEVE, {"expand": ["application"]}, "bpc_1"))
    assert isinstance(request, HttpRequest)
    assert request.method == "GET"
    assert request.url == (
        "https://api.stripe.com/v1/billing_portal/configurations/bpc_1?expand%5B%5D=application"
    )
    assert request.body == b""
    assert "Idempotency-Key" not in request.headers
    assert "Content-Type" not in request.headers


def test_post_update_is_keyed_and_form_encoded() -> None:
    """A POST update carries an Idempotency-Key and its form body; the ID goes in the path."""
    request = next(start(CONFIGURATION_UPDATE, {"name": "Main"}, "bpc_9"))
    assert request.url.endswith("/v1/billing_portal/configurations/bpc_9")
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.body == b"name=Main"


@pytest.mark.parametrize("bad", ["cus_1", "", "bpc_1/../x", 5, None])
def test_path_parameter_is_checked_before_anything_is_sent(bad: object) -> None:
    """A path ID of the wrong kind is a ValidationError naming the parameter; nothing is sent."""
    flow = start(CONFIGURATION_RETRIEVE, None, bad)
    with pytest.raises(ValidationError) as info:
        next(flow)
    assert info.value.path == "configuration"


def test_get_retries_server_errors_and_connection_failures_under_the_policy() -> None:
    """A GET is retried on a 5xx and a connection failure, then returns the decoded page."""
    flow = start(CONFIGURATION_LIST, None)
    first = next(flow)
    assert isinstance(flow.send(stripe_error_response(503)), Sleep)
    assert flow.send(None) == first
    assert isinstance(flow.throw(APIConnectionError("reset", should_retry=True)), Sleep)
    assert flow.send(None) == first
    with pytest.raises(StopIteration) as done:
        flow.send(page(range(2), has_more=False))
    assert [item.id for item in done.value.value.data] == ["bpc_0", "bpc_1"]


def test_get_refuses_an_idempotency_key() -> None:
    """An idempotency key on a GET is a ValidationError: Stripe ignores it, so it would mislead."""
    flow = run(
        CONFIGURATION_LIST,
        ClientConfig(api_key=API_KEY),
        None,
        CallOptions(idempotency_key="k"),
        new_idempotency_key=lambda: "unused",
        random=lambda: 0.5,
        monotonic=lambda: 0.0,
    )
    with pytest.raises(ValidationError) as info:
        next(flow)
    assert info.value.path == "idempotency_key"


@attrs.frozen(kw_only=True)
class _Range:
    gte: int | None = None
    lt: int | None = None


@attrs.frozen(kw_only=True)
class _ListParams:
    created: _Range | None = None
    expand: tuple[str, ...] | None = None
    limit: int | None = None


def test_query_encoding_nests_ranges_and_writes_expand_with_empty_brackets() -> None:
    """A query string nests hashes (created[gte]=) and lists plain values as expand[]=."""
    value = _ListParams(created=_Range(gte=5, lt=9), expand=("data.application", "x"), limit=3)
    query = encode(value, query=True).decode()
    assert query == (
        "created%5Bgte%5D=5&created%5Blt%5D=9&expand%5B%5D=data.application&expand%5B%5D=x&limit=3"
    )


def test_form_encoding_sends_an_empty_list_as_stripes_empty_value() -> None:
    """An empty list is sent as key= (Stripe clears the list), not dropped."""
    value = _ListParams(expand=())
    assert encode(value) == b"expand="
    assert decode_form(encode(value)) == {"expand": ""}


def test_a_new_field_needs_only_its_class() -> None:
    """Adding a field to a params class is enough: the key set, the checks and the wire follow."""

    @attrs.frozen(kw_only=True)
    class Grown:
        limit: int | None = None
        label: str | None = attrs.field(default=None, metadata={"max_length": 3})

    assert keys_of(Grown) == {"limit", "label"}
    checked: Any = structure(Grown, {"label": "abc", "limit": 2}, "", lambda v, p: str(v))
    assert encode(checked) == b"limit=2&label=abc"
    with pytest.raises(ValidationError) as info:
        structure(Grown, {"label": "abcd"}, "", lambda v, p: str(v))
    assert info.value.path == "label"
    with pytest.raises(ValidationError) as unknown:
        structure(Grown, {"lable": "a"}, "", lambda v, p: str(v))
    assert unknown.value.path == "lable"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"object": "list", "data": {}, "has_more": False, "url": "/"}, "'data'"),
        ({"object": "list", "data": [], "has_more": "no", "url": "/"}, "'has_more'"),
        ({"object": "list", "data": [], "has_more": False}, "'url'"),
        ({"object": "list", "data": [{"object": "x"}], "has_more": False, "url": "/"}, "data[0]"),
        ({"object": "customer"}, "'object'"),
    ],
)
def test_a_broken_page_is_a_response_decode_error(document: object, reason: str) -> None:
    """A malformed list body raises ResponseDecodeError saying what is wrong, never KeyError."""
    with pytest.raises(ResponseDecodeError) as info:
        decode_configuration_page(json.dumps(document).encode())
    assert reason in info.value.message


class _Pages:
    """A handler serving ``total`` configurations in pages of ``size``, newest first."""

    def __init__(self, total: int, size: int) -> None:
        self.total = total
        self.size = size
        self.seen: list[dict[str, Any]] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = decode_form(request.url.partition("?")[2])
        self.seen.append(query)
        start_at = 0
        if "starting_after" in query:
            start_at = int(query["starting_after"].removeprefix("bpc_")) + 1
        numbers = range(start_at, min(start_at + self.size, self.total))
        return page(numbers, has_more=numbers.stop < self.total)


def test_list_returns_a_typed_page() -> None:
    """list() returns a Page with data, has_more and url."""
    with Client(API_KEY, transport=RecordingTransport(_Pages(total=3, size=2))) as client:
        first = client.billing_portal.configurations.list({"limit": 2})
    assert [item.id for item in first.data] == ["bpc_0", "bpc_1"]
    assert first.has_more is True
    assert first.url == "/v1/billing_portal/configurations"


def test_auto_paging_iter_walks_pages_lazily_with_starting_after() -> None:
    """auto_paging_iter fetches the next page (starting_after the last ID) only when needed."""
    pages = _Pages(total=5, size=2)
    with Client(API_KEY, transport=RecordingTransport(pages)) as client:
        walk: Iterator[Any] = client.billing_portal.configurations.auto_paging_iter({"limit": 2})
        assert next(walk).id == "bpc_0"
        assert len(pages.seen) == 1
        rest = [item.id for item in walk]
    assert rest == ["bpc_1", "bpc_2", "bpc_3", "bpc_4"]
    assert [query.get("starting_after") for query in pages.seen] == [None, "bpc_1", "bpc_3"]


def test_auto_paging_iter_stops_at_max_pages() -> None:
    """max_pages bounds how many pages are fetched, however many Stripe says there are."""
    pages = _Pages(total=100, size=1)
    with Client(API_KEY, transport=RecordingTransport(pages)) as client:
        items = list(client.billing_portal.configurations.auto_paging_iter(max_pages=3))
    assert len(items) == 3
    assert len(pages.seen) == 3


def test_async_auto_paging_iter_walks_every_page() -> None:
    """async for over AsyncClient's auto_paging_iter yields every item across pages."""
    pages = _Pages(total=5, size=2)

    async def walk() -> list[str]:
        async with AsyncClient(API_KEY, transport=RecordingTransport(pages)) as client:
            configurations = client.billing_portal.configurations
            return [item.id async for item in configurations.auto_paging_iter({"limit": 2})]

    assert asyncio.run(walk()) == ["bpc_0", "bpc_1", "bpc_2", "bpc_3", "bpc_4"]
    assert len(pages.seen) == 3


def test_path_param_names_the_kind_of_id() -> None:
    """A PathParam failure names the parameter and the expected prefix."""
    param = PathParam(name="configuration", prefix="bpc_", what="portal configuration")
    with pytest.raises(ValidationError) as info:
        param.check("bps_1")
    assert "bpc_" in str(info.value)


SESSION_SAMPLES = {
    "customer": "cus_1",
    "customer_account": None,
    "return_url": "https://example.com/back",
    "configuration": "bpc_2",
    "locale": "fr",
    "on_behalf_of": "acct_3",
}


def test_every_plain_session_field_is_parsed_and_encoded_from_its_definition() -> None:
    """Each plain SessionCreateParams field is accepted from a mapping and sent under its name."""
    from lattice_stripe import SessionCreateParams, guard
    from lattice_stripe.core.codec import encode_session_params

    plain = [
        field.name
        for field in attrs.fields(SessionCreateParams)
        if field.name not in ("flow_data", "after_expiration", "expand")
    ]
    assert set(plain) == set(SESSION_SAMPLES), "a new field needs a sample value here"
    params = {name: value for name, value in SESSION_SAMPLES.items() if value is not None}
    wire = decode_form(encode_session_params(guard(params)))
    assert wire == params
    assert list(wire) == [name for name in plain if name in params]
