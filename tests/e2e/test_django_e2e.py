"""End to end in a real headless Chromium: a Django shop, the emulator's portal, a cancellation,
and the state back on the return page by webhook.

The shop (``tests/support/djangoapp/e2e.py``) runs in Django's live server thread on
127.0.0.1 over the test database; the emulator runs in another thread and
sends its webhooks to the shop's webhook view.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("django")
pytest.importorskip("pytest_django")

from browser_support import MISSING

pytestmark = pytest.mark.e2e

if MISSING is not None:
    pytest.skip(MISSING, allow_module_level=True)

from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from pytest_django.live_server_helper import LiveServer  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from browser_support import (  # noqa: E402
    ARTIFACTS,
    click,
    headless_chromium,
    text_of,
    wait_for_title,
)
from djangoapp import e2e  # noqa: E402
from lattice_stripe.testing.emulator import EmulatorServer, emulator_server  # noqa: E402


@pytest.fixture
def shop(transactional_db: None) -> Iterator[str]:
    """The Django shop on a free port of 127.0.0.1 (its threads share the test database)."""
    server = LiveServer("127.0.0.1:0", start=False)
    with override_settings(ROOT_URLCONF="djangoapp.e2e", ALLOWED_HOSTS=["127.0.0.1"]):
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def stripe(shop: str) -> Iterator[EmulatorServer]:
    """The emulator, sending webhooks to the shop; the shop's client pointed at it."""
    e2e.PLAN_STATUS.clear()
    e2e.EVENTS.clear()
    with emulator_server(webhook_url=f"{shop}/billing/webhook/") as emulator:
        settings = {
            "API_KEY": emulator.api_key,
            "BASE_URL": emulator.base_url,
            "ALLOW_HTTP_LOCALHOST": True,  # the shop and the emulator speak http on 127.0.0.1
            "WEBHOOK_SECRETS": [emulator.webhook_secret],
            "CUSTOMER_FOR": e2e.customer_for,
            "RETURN_URL": "account",
            "HANDLERS": {
                "customer.subscription.deleted": e2e.plan_changed,
                "customer.subscription.updated": e2e.plan_changed,
            },
        }
        with override_settings(LATTICE_STRIPE=settings):
            yield emulator


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile and no background network."""
    with headless_chromium(tmp_path / "profile") as driver:
        yield driver


def log_in(driver: WebDriver, shop: str) -> None:
    """Give the browser the session cookie of a logged-in user."""
    client = Client()
    client.force_login(User.objects.create_user("jo"))
    driver.get(f"{shop}/account/")
    driver.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value})


def test_cancel_in_the_portal_shows_on_the_django_return_page(
    shop: str, stripe: EmulatorServer, chromium: WebDriver
) -> None:
    """Manage billing, cancel now in the portal, go back: 'canceled' shows, from the webhook."""
    log_in(chromium, shop)
    chromium.get(f"{shop}/account/")
    assert text_of(chromium, "status-sub_demo") == "active"
    click(chromium, "manage-billing")
    wait_for_title(chromium, "Billing portal")
    click(chromium, "cancel-sub_demo")
    click(chromium, "confirm-cancel")
    assert "Your plan was canceled." in text_of(chromium, "notice")
    assert stripe.wait_for_webhook("customer.subscription.deleted").state == "delivered"
    click(chromium, "return-link")
    wait_for_title(chromium, "Account")
    assert chromium.current_url == f"{shop}/account/"
    assert text_of(chromium, "status-sub_demo") == "canceled"
    assert "customer.subscription.deleted" in text_of(chromium, "events")
    ARTIFACTS.mkdir(exist_ok=True)
    assert chromium.save_screenshot(str(ARTIFACTS / "django-e2e-return-page.png"))
