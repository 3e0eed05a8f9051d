"""The ``lattice-stripe`` command and the demo app, over real HTTP without a browser."""

import asyncio
import contextlib
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from emulator_support import API_KEY, Browser, api, browser, read_until
from lattice_stripe.__main__ import main
from lattice_stripe.demo.server import run_demo
from lattice_stripe.webhooks import generate_signature_header

_URL = re.compile(r"Demo running: (http://127\.0\.0\.1:\d+)/")
_EMULATOR = re.compile(r"Emulator: (http://127\.0\.0\.1:\d+)")


@attrs.frozen
class Demo:
    """A running demo: the app's URL and the emulator's."""

    url: str
    emulator_url: str


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    """``run_demo`` on free ports in this event loop, stopped after the test."""
    stop = asyncio.Event()
    out = io.StringIO()
    task = asyncio.ensure_future(run_demo(stop=stop, out=out, port=0, emulator_port=0))
    for _ in range(500):
        if _URL.search(out.getvalue()) or task.done():
            break
        await asyncio.sleep(0.01)
    url, emulator = _URL.search(out.getvalue()), _EMULATOR.search(out.getvalue())
    assert url is not None, out.getvalue()
    assert emulator is not None, out.getvalue()
    try:
        yield Demo(url=url.group(1), emulator_url=emulator.group(1))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def manage_billing(client: Browser, demo: Demo, flow: str | None = None) -> str:
    """Press a portal button on the account page; return where the app redirected."""
    account = await client.get(demo.url + "/")
    assert account.status == 200
    fields = {"csrf_token": account.csrf}
    if flow is not None:
        fields["flow"] = flow
    redirected = await client.post(demo.url + "/billing/portal", fields)
    assert redirected.status == 303, redirected.text
    assert redirected.location is not None
    return redirected.location


async def test_demo_manage_billing_round_trip(demo: Demo) -> None:
    """Manage billing opens the portal; a change there reaches the app's page by webhook."""
    async with browser(demo.emulator_url) as client:
        portal = await manage_billing(client, demo)
        assert portal.startswith(demo.emulator_url + "/p/session/")
        assert (await client.get(portal)).location == "/p/portal"
        home = await client.get("/p/portal")
        assert demo.url + "/billing/return" in home.text
        await client.submit("/p/portal/cancel/sub_demo", {})
        back = await client.get(demo.url + "/billing/return")
    assert back.status == 200
    assert 'id="status-sub_demo">canceled<' in back.text
    assert "customer.subscription.deleted" in back.text


async def test_demo_return_page_re_reads_the_state_from_stripe(demo: Demo) -> None:
    """The return page shows Stripe's state, re-read, beside what the webhooks reported."""
    async with browser(demo.emulator_url) as client:
        portal = await manage_billing(client, demo)
        await client.get(portal)
        # The demo's configuration cancels immediately: the re-read state says so.
        await client.submit("/p/portal/cancel/sub_demo", {})
        back = await client.get(demo.url + "/billing/return")
    verified = re.search(r'<tr id="verified-sub_demo">(.*?)</tr>', back.text)
    assert verified is not None
    assert "price_pro_monthly &times; 1" in verified.group(1)
    assert "<td>canceled</td>" in verified.group(1)
    assert "<td>agree</td>" in verified.group(1)


async def test_demo_deep_link_redirects_back_to_the_app(demo: Demo) -> None:
    """The 'Cancel subscription' deep link ends on the app's return page, state updated."""
    async with browser(demo.emulator_url) as client:
        portal = await manage_billing(client, demo, flow="subscription_cancel")
        assert (await client.get(portal)).location == "/p/portal/cancel/sub_demo"
        done = await client.submit("/p/portal/cancel/sub_demo", {"when": "now"})
        assert done.location == demo.url + "/billing/return"
        back = await client.get(done.location)
    assert 'id="status-sub_demo">canceled<' in back.text


@pytest.mark.parametrize(
    ("flow", "landing"),
    [
        ("subscription_cancel", "/p/portal/cancel/sub_demo"),
        ("retention", "/p/portal/cancel/sub_demo"),
        ("subscription_update", "/p/portal/update/sub_demo"),
        ("subscription_update_confirm", "/p/portal/confirm/sub_demo"),
        ("subscription_pause", "/p/portal/pause/sub_demo"),
        ("payment_method_update", "/p/portal/payment-method"),
        ("customer_update", "/p/portal/customer"),
    ],
)
async def test_demo_has_a_button_for_every_deep_link(demo: Demo, flow: str, landing: str) -> None:
    """Each deep-link button opens the portal on its flow's page."""
    async with browser(demo.emulator_url) as client:
        account = await client.get(demo.url + "/")
        assert f'id="flow-{flow}"' in account.text
        portal = await manage_billing(client, demo, flow=flow)
        assert (await client.get(portal)).location == landing
        page = await client.get(landing)
    assert page.status == 200
    if flow == "retention":
        assert 'id="retention-offer"' in page.text
    if flow == "subscription_update_confirm":
        assert "Pro" in page.text
        assert "Amount due today" in page.text


async def test_demo_shows_pause_discounts_and_renewal_as_the_webhooks_said(demo: Demo) -> None:
    """After a pause and an accepted offer, the shop shows both, and the renewal date."""
    async with browser(demo.emulator_url) as client:
        account = await client.get(demo.url + "/")
        assert re.search(r'id="details-sub_demo">renews \d{4}-\d\d-\d\d<', account.text)
        await client.get(await manage_billing(client, demo, flow="retention"))
        offer = await client.get("/p/portal/cancel/sub_demo")
        await client.post("/p/portal/retention/sub_demo", offer.form)
        await client.get(await manage_billing(client, demo, flow="subscription_pause"))
        await client.submit("/p/portal/pause/sub_demo", {"resume": "1"})
        account = await client.get(demo.url + "/")
    details = re.search(r'id="details-sub_demo">([^<]*)<', account.text)
    assert details is not None
    assert "payments paused until" in details.group(1)
    assert "discounts: SAVE25" in details.group(1)


async def test_demo_subscribes_again_and_resets(demo: Demo) -> None:
    """After canceling, 'Subscribe again' adds a plan (by webhook); 'Reset demo' restores all."""
    async with browser(demo.emulator_url) as client:
        await client.get(await manage_billing(client, demo, flow="subscription_cancel"))
        await client.submit("/p/portal/cancel/sub_demo", {"when": "now"})
        account = await client.get(demo.url + "/")
        assert 'id="subscribe-again"' in account.text
        assert 'id="flow-subscription_pause"' not in account.text
        subscribed = await client.post(
            demo.url + "/billing/subscribe", {"csrf_token": account.csrf}
        )
        assert (subscribed.status, subscribed.location) == (303, "/")
        account = await client.get(demo.url + "/")
        assert "customer.subscription.created" in account.text
        assert 'id="subscribe-again"' not in account.text
        assert len(re.findall(r'id="status-sub_\w+">active<', account.text)) == 1
        reset = await client.post(demo.url + "/demo/reset", {"csrf_token": account.csrf})
        assert reset.status == 303
        account = await client.get(demo.url + "/")
    assert 'id="status-sub_demo">active<' in account.text
    assert account.text.count('id="status-') == 1
    assert "none yet" in account.text


async def test_demo_card_update_shows_the_new_card(demo: Demo) -> None:
    """The 'Update card' deep link changes the card the account page shows."""
    async with browser(demo.emulator_url) as client:
        portal = await manage_billing(client, demo, flow="payment_method_update")
        await client.get(portal)
        await client.submit(
            "/p/portal/payment-method",
            {"number": "5555555555554444", "exp_month": "1", "exp_year": "2041", "cvc": "999"},
        )
        account = await client.get(demo.url + "/")
    assert "Mastercard ending 4444" in account.text


async def test_demo_refuses_forms_and_webhooks_it_cannot_trust(demo: Demo) -> None:
    """No CSRF token: 403; an unsigned or wrongly signed webhook: 400, state untouched."""
    async with aiohttp.ClientSession() as http:
        async with http.post(demo.url + "/billing/portal", data={"flow": ""}) as response:
            assert response.status == 403
        body = b'{"object": "event"}'
        for signature in (None, generate_signature_header(body, "whsec_other")):
            headers = {} if signature is None else {"Stripe-Signature": signature}
            async with http.post(
                demo.url + "/webhooks/stripe", data=body, headers=headers
            ) as response:
                assert response.status == 400
        async with http.get(demo.url + "/") as response:
            assert "none yet" in await response.text()


async def test_demo_refuses_a_non_ascii_csrf_token_with_a_403(demo: Demo) -> None:
    """A forged CSRF token with non-ASCII text is refused like any other, not a server error."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(demo.url + "/billing/portal", data={"csrf_token": "\u00e9t\u00e9"}) as response,
    ):
        assert response.status == 403
        assert "Reload the page" in await response.text()


async def test_demo_shows_refused_sessions_as_an_error_page(demo: Demo) -> None:
    """A deep link that cannot be built (the plan is gone) ends on an error page, not a crash."""
    async with browser(demo.emulator_url) as client:
        portal = await manage_billing(client, demo, flow="subscription_cancel")
        await client.get(portal)
        await client.submit("/p/portal/cancel/sub_demo", {"when": "now"})
        account = await client.get(demo.url + "/")
        assert 'id="flow-subscription_cancel"' not in account.text
        forged = await client.post(
            demo.url + "/billing/portal",
            {"csrf_token": account.csrf, "flow": "subscription_update"},
        )
    assert forged.status == 400
    assert "Could not open the billing portal" in forged.text


def test_cli_reports_a_bad_seed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing seed file is a clear error and exit status 1, for both commands."""
    missing = str(tmp_path / "nope.json")
    assert main(["emulator", "--port", "0", "--seed", missing]) == 1
    assert main(["demo", "--port", "0", "--emulator-port", "0", "--seed", missing]) == 1
    assert capsys.readouterr().err.count("cannot read the seed file") == 2


def test_cli_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    """A busy port is one line naming the port and whose it is, suggesting port 0."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert main(["emulator", "--port", port]) == 1
        assert main(["demo", "--port", port, "--emulator-port", "0"]) == 1
        assert main(["demo", "--port", "0", "--emulator-port", port]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"lattice-stripe emulator: port {port} is in use, so the emulator cannot listen on it: "
        "stop what holds it, or pass --port 0 for any free port",
        f"lattice-stripe demo: port {port} is in use, so the demo shop cannot listen on it: "
        "stop what holds it, or pass --port 0 for any free port",
        f"lattice-stripe demo: port {port} is in use, so the emulator cannot listen on it: "
        "stop what holds it, or pass --emulator-port 0 for any free port",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["emulator", "--port", "-1"],
        ["emulator", "--port", "70000"],
        ["emulator", "--port", "http"],
        ["demo", "--port", "65536"],
        ["demo", "--emulator-port", "-5"],
    ],
)
def test_cli_refuses_a_port_out_of_range_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A port outside 0-65535 is a one-line usage error (status 2) naming the valid range."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "use 0 to 65535 (0: any free port)" in line
    assert line.startswith(f"lattice-stripe {argv[0]}: argument {argv[1]}")


@pytest.mark.parametrize("command", ["emulator", "demo"])
def test_cli_help_shows_every_default(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every option of each command says its default in --help."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    options = re.findall(r"^  (--[a-z-]+)", text, flags=re.MULTILINE)
    assert len(options) >= 3
    described = re.split(r"^  (?=--)", text, flags=re.MULTILINE)[1:]
    assert all("(default:" in " ".join(block.split()) for block in described), text


def test_cli_prints_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    from lattice_stripe import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"lattice-stripe {__version__}"


def _packaged_seed() -> dict[str, Any]:
    """The packaged seed as JSON, to edit."""
    text = resources.files("lattice_stripe.emulator").joinpath("seed.json").read_text()
    seed: dict[str, Any] = json.loads(text)
    return seed


def _no_such_price(seed: dict[str, Any]) -> object:
    seed["customers"][0]["subscriptions"][0]["items"][0]["price"] = "price_gone"
    return seed


def _twice_the_same_customer(seed: dict[str, Any]) -> object:
    seed["customers"].append(dict(seed["customers"][0], subscriptions=[], payment_methods=[]))
    return seed


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda seed: [seed], "must hold a JSON object"),
        (lambda seed: "seed", "must hold a JSON object"),
        (_no_such_price, "refers to the price price_gone, which the seed's prices do not have"),
        (_twice_the_same_customer, "has two customer records with the ID cus_demo"),
    ],
)
def test_cli_explains_a_seed_it_cannot_use(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict[str, Any]], object],
    message: str,
) -> None:
    """A seed that is not an object, names a missing price or repeats a customer is one line."""
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(edit(_packaged_seed())))
    assert main(["emulator", "--port", "0", "--seed", str(path)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("lattice-stripe emulator: ")
    assert message in line


def test_cli_refuses_a_live_key(capsys: pytest.CaptureFixture[str]) -> None:
    """The emulator will not run with a live key."""
    assert main(["emulator", "--port", "0", "--api-key", "sk_live_real"]) == 1
    assert "test mode" in capsys.readouterr().err


def test_emulator_command_serves_until_interrupted() -> None:
    """``lattice-stripe emulator --port 0`` prints its URL and key, serves, and exits on SIGINT."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice_stripe.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = read_until(process, "Press Ctrl+C")
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", banner)
        assert url is not None, banner
        assert f"API key:        {API_KEY}" in banner
        assert "Webhook secret: whsec_" in banner

        async def probe() -> int:
            async with aiohttp.ClientSession() as http:
                status, _, _ = await api(http, "GET", url.group(1) + "/v1/subscriptions/sub_demo")
                return status

        assert asyncio.run(probe()) == 200
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
