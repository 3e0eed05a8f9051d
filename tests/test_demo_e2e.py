"""End to end in a real headless Chromium: the demo, the portal, a cancellation, the webhook.

Runs ``lattice-stripe demo --port 0 --emulator-port 0`` as a subprocess and
drives Chromium through Selenium (Debian's chromium + chromium-driver;
``scripts/install-browser.sh`` installs them, ``make test`` runs it first).
A screenshot of the return page lands in ``test-artifacts/``.
"""

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator_support import read_until

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "chromium and chromedriver are not installed: run scripts/install-browser.sh as root "
        "(apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT = 10.0


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
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile and no background network."""
    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    # Both paths are given, so Selenium Manager has nothing to look up; offline all the same.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def click(driver: WebDriver, element_id: str) -> None:
    """Wait for the element to be clickable, then click it."""
    WebDriverWait(driver, WAIT).until(
        expected_conditions.element_to_be_clickable((By.ID, element_id))
    ).click()


def text_of(driver: WebDriver, element_id: str) -> str:
    """The text of the element, once it is on the page."""
    element = WebDriverWait(driver, WAIT).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )
    text: str = element.text
    return text


def test_cancel_in_the_portal_shows_on_the_return_page(demo_url: str, chromium: WebDriver) -> None:
    """Manage billing, cancel now in the portal, go back: 'canceled' shows, from the webhook."""
    chromium.get(demo_url)
    assert text_of(chromium, "status-sub_demo") == "active"
    click(chromium, "manage-billing")
    # click() returns once the click is sent, not once the redirect has landed.
    WebDriverWait(chromium, WAIT).until(expected_conditions.title_contains("Billing portal"))
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
