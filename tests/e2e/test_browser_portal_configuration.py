"""In a real headless Chromium: a configuration applied as code decides what the portal shows.

The configuration is applied with ``configurations.ensure`` (as a deploy step
would), with cancellation and invoice history turned off; a session on it
opens in the browser without either, their pages are refused, and a deep link
to cancelling is refused when the session is created. A screenshot of that
portal lands in ``test-artifacts/``.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_support import MISSING

pytestmark = pytest.mark.e2e

if MISSING is not None:
    pytest.skip(MISSING, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from browser_support import ARTIFACTS, headless_chromium, text_of, wait_for_title  # noqa: E402
from lattice_stripe import (  # noqa: E402
    BusinessProfile,
    ConfigurationCreateParams,
    CustomerUpdateFeature,
    Features,
    FlowData,
    InvalidRequestError,
    InvoiceHistoryFeature,
    PaymentMethodUpdateFeature,
    SessionCreateParams,
    SubscriptionCancelFeature,
    SubscriptionUpdateFeature,
)
from lattice_stripe.testing import EmulatorServer, emulator_server  # noqa: E402

QUIET = ConfigurationCreateParams(
    business_profile=BusinessProfile(
        headline="Acme: your plan", privacy_policy_url="https://acme.example/privacy"
    ),
    features=Features(
        customer_update=CustomerUpdateFeature(enabled=True, allowed_updates=("email",)),
        invoice_history=InvoiceHistoryFeature(enabled=False),
        payment_method_update=PaymentMethodUpdateFeature(enabled=True),
        subscription_cancel=SubscriptionCancelFeature(enabled=False),
        subscription_update=SubscriptionUpdateFeature(enabled=False),
    ),
)


@pytest.fixture
def stripe() -> Iterator[EmulatorServer]:
    """The emulator on a free loopback port."""
    with emulator_server() as server:
        yield server


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile and no background network."""
    with headless_chromium(tmp_path / "profile") as driver:
        yield driver


def ids_on(driver: WebDriver) -> set[str]:
    """The IDs of every element on the page."""
    return {
        element.get_attribute("id") or "" for element in driver.find_elements(By.XPATH, "//*[@id]")
    }


def test_a_disabled_feature_is_missing_from_the_portal_in_a_browser(
    stripe: EmulatorServer, chromium: WebDriver
) -> None:
    """Cancel and invoice history turned off by an applied configuration: absent, pages refused."""
    with stripe.client() as client:
        applied = client.billing_portal.configurations.ensure(QUIET, key="browser-test")
        assert applied.configuration is not None
        configuration = applied.configuration.id
        session = client.billing_portal.sessions.create(
            SessionCreateParams(customer="cus_demo", configuration=configuration)
        )
        with pytest.raises(InvalidRequestError) as refused:
            client.billing_portal.sessions.create(
                SessionCreateParams(
                    customer="cus_demo",
                    configuration=configuration,
                    flow_data=FlowData.subscription_cancel("sub_demo"),
                )
            )
    assert refused.value.param == "flow_data[type]"
    assert "subscription_cancel feature is disabled" in str(refused.value)

    chromium.get(session.url)
    wait_for_title(chromium, "Billing portal")
    assert text_of(chromium, "subscription-sub_demo")
    home = ids_on(chromium)
    assert {"update-payment-method", "update-customer", "privacy-policy"} <= home
    assert not {"cancel-sub_demo", "update-sub_demo", "invoice-history", "all-invoices"} & home
    assert "Acme: your plan" in chromium.page_source
    ARTIFACTS.mkdir(exist_ok=True)
    assert chromium.save_screenshot(str(ARTIFACTS / "portal-configuration-quiet.png"))

    for page in ("cancel/sub_demo", "invoices"):
        chromium.get(f"{stripe.base_url}/p/portal/{page}")
        wait_for_title(chromium, "Not available")
        assert "turned off" in text_of(chromium, "error-message")
