"""End to end in a real headless Chromium: the demo, the portal, a cancellation, the webhook.

Runs ``lattice-stripe demo --port 0 --emulator-port 0`` as a subprocess and
drives Chromium through Selenium (Debian's chromium + chromium-driver;
``scripts/install-browser.sh`` installs them, ``make test`` runs it first).
A screenshot of the return page lands in ``test-artifacts/``.
"""

import contextlib
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_support import MISSING

pytestmark = pytest.mark.e2e

if MISSING is not None:
    pytest.skip(MISSING, allow_module_level=True)

from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from browser_support import (  # noqa: E402
    ARTIFACTS,
    click,
    headless_chromium,
    text_of,
    wait_for_title,
)
from emulator_support import read_until  # noqa: E402


@pytest.fixture
def demo_url() -> Iterator[str]:
    """The demo command on free loopback ports; interrupted (Ctrl+C) afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice_stripe", "demo", "--port", "0", "--emulator-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = read_until(process, "Press Ctrl+C")
        found = re.search(r"Demo running: (http://127\.0\.0\.1:\d+/)", banner)
        assert found is not None, banner
        yield found.group(1)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile and no background network."""
    with headless_chromium(tmp_path / "profile") as driver:
        yield driver


def test_cancel_in_the_portal_shows_on_the_return_page(demo_url: str, chromium: WebDriver) -> None:
    """Manage billing, cancel now in the portal, go back: 'canceled' shows, from the webhook."""
    chromium.get(demo_url)
    assert text_of(chromium, "status-sub_demo") == "active"
    click(chromium, "manage-billing")
    wait_for_title(chromium, "Billing portal")
    click(chromium, "cancel-sub_demo")
    click(chromium, "when-now")
    click(chromium, "confirm-cancel")
    assert "Your plan was canceled." in text_of(chromium, "notice")
    click(chromium, "return-link")
    assert "Welcome back" in text_of(chromium, "welcome-back")
    assert chromium.current_url == demo_url + "billing/return"
    assert text_of(chromium, "status-sub_demo") == "canceled"
    assert "customer.subscription.deleted" in text_of(chromium, "events")
    ARTIFACTS.mkdir(exist_ok=True)
    assert chromium.save_screenshot(str(ARTIFACTS / "demo-e2e-return-page.png"))
