"""End to end in a real headless Chromium: the demo, the portal, a cancellation, the webhook.

Runs ``lattice-stripe demo --port 0 --emulator-port 0`` as a subprocess and
drives Chromium through Selenium (Debian's chromium + chromium-driver;
``scripts/install-browser.sh`` installs them, ``make test`` runs it first).
Screenshots (the return page, the portal home, its invoice history, proration previews, the
shop on a phone) land in ``test-artifacts/``.
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

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from browser_support import (  # noqa: E402
    ARTIFACTS,
    WAIT,
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
    click(chromium, "confirm-cancel")
    assert "Your plan was canceled." in text_of(chromium, "notice")
    click(chromium, "return-link")
    assert "Welcome back" in text_of(chromium, "welcome-back")
    assert chromium.current_url == demo_url + "billing/return"
    assert text_of(chromium, "status-sub_demo") == "canceled"
    assert "customer.subscription.deleted" in text_of(chromium, "events")
    ARTIFACTS.mkdir(exist_ok=True)
    assert chromium.save_screenshot(str(ARTIFACTS / "demo-e2e-return-page.png"))


def back_to_the_shop(driver: WebDriver) -> None:
    """Wait until a deep link's redirect has landed on the shop's return page."""
    WebDriverWait(driver, WAIT).until(expected_conditions.url_contains("/billing/return"))
    assert "Welcome back" in text_of(driver, "welcome-back")


def deep_link(driver: WebDriver, demo_url: str, button: str) -> None:
    """From the account page, press a deep-link button and wait for the portal page."""
    driver.get(demo_url)
    click(driver, button)
    WebDriverWait(driver, WAIT).until(expected_conditions.url_contains("/p/portal/"))


def fill(driver: WebDriver, values: dict[str, str]) -> None:
    """Type ``values`` into the inputs with those IDs, replacing what they hold."""
    for element_id, value in values.items():
        element = driver.find_element(By.ID, element_id)
        element.clear()
        element.send_keys(value)


def test_every_demo_button_in_a_real_browser(demo_url: str, chromium: WebDriver) -> None:
    """Every button of the demo, end to end, with screenshots of the portal's money pages."""
    ARTIFACTS.mkdir(exist_ok=True)
    chromium.get(demo_url)
    assert text_of(chromium, "status-sub_demo") == "active"

    # Manage billing: the portal home, the invoice history, a plan change with its preview.
    click(chromium, "manage-billing")
    WebDriverWait(chromium, WAIT).until(expected_conditions.title_contains("Billing portal"))
    assert "Paid" in text_of(chromium, "invoice-history")
    assert chromium.save_screenshot(str(ARTIFACTS / "portal-home.png"))
    click(chromium, "all-invoices")
    assert text_of(chromium, "invoice-list").count("Paid") == 3
    assert chromium.save_screenshot(str(ARTIFACTS / "portal-invoice-history.png"))
    click(chromium, "portal-home")
    click(chromium, "update-sub_demo")
    assert "Amount due today" in text_of(chromium, "preview-price_pro_yearly")
    assert chromium.save_screenshot(str(ARTIFACTS / "portal-proration-preview.png"))
    click(chromium, "price-price_basic_monthly")
    click(chromium, "confirm-update")
    assert "Your plan was updated." in text_of(chromium, "notice")
    click(chromium, "return-link")
    back_to_the_shop(chromium)

    # The prepared upgrade: its preview on the confirm page, then confirmed.
    deep_link(chromium, demo_url, "flow-subscription_update_confirm")
    assert "Amount due today" in text_of(chromium, "preview")
    assert chromium.save_screenshot(str(ARTIFACTS / "portal-confirm-preview.png"))
    click(chromium, "confirm-update")
    back_to_the_shop(chromium)

    # Cancel with an offer to stay: accepted, the discount shows in the shop.
    deep_link(chromium, demo_url, "flow-retention")
    click(chromium, "accept-offer")
    back_to_the_shop(chromium)
    assert "SAVE25" in text_of(chromium, "details-sub_demo")

    deep_link(chromium, demo_url, "flow-subscription_pause")
    click(chromium, "resume-1")
    click(chromium, "confirm-pause")
    back_to_the_shop(chromium)
    assert "payments paused until" in text_of(chromium, "details-sub_demo")

    deep_link(chromium, demo_url, "flow-payment_method_update")
    fill(
        chromium,
        {"card-number": "5555555555554444", "exp-month": "4", "exp-year": "2042", "cvc": "321"},
    )
    click(chromium, "save-card")
    back_to_the_shop(chromium)
    assert text_of(chromium, "payment-method") == "Mastercard ending 4444"

    deep_link(chromium, demo_url, "flow-customer_update")
    fill(chromium, {"field-email": "ada@analytical.example"})
    click(chromium, "save-customer")
    back_to_the_shop(chromium)

    deep_link(chromium, demo_url, "flow-subscription_update")
    click(chromium, "price-price_pro_monthly")
    click(chromium, "confirm-update")
    back_to_the_shop(chromium)

    deep_link(chromium, demo_url, "flow-subscription_cancel")
    click(chromium, "confirm-cancel")
    back_to_the_shop(chromium)
    assert text_of(chromium, "status-sub_demo") == "canceled"

    # Subscribe again, then reset the demo: the emulator and the shop go back together.
    chromium.get(demo_url)
    click(chromium, "subscribe-again")
    WebDriverWait(chromium, WAIT).until(
        expected_conditions.text_to_be_present_in_element(
            (By.ID, "events"), "customer.subscription.created"
        )
    )
    click(chromium, "reset-demo")
    WebDriverWait(chromium, WAIT).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "events"), "none yet")
    )
    assert text_of(chromium, "status-sub_demo") == "active"
    assert "Visa ending 4242" in text_of(chromium, "payment-method")

    # The shop on a phone: everything still reachable, nothing wider than the screen.
    chromium.set_window_size(390, 844)
    chromium.get(demo_url)
    width = chromium.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390
    assert chromium.save_screenshot(str(ARTIFACTS / "demo-mobile.png"))
