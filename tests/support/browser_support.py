"""Headless Chromium for the end-to-end tests: found, started offline, and driven by element ID.

Debian's chromium and chromium-driver; ``scripts/install-browser.sh`` installs
them, ``make test`` runs it first. A test module skips itself while
:data:`MISSING` says why.
"""

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT = 10.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = (
    "chromium and chromedriver are not installed: run scripts/install-browser.sh as root "
    "(apt-get install chromium chromium-driver)"
    if CHROMIUM is None or CHROMEDRIVER is None
    else None
)


@contextlib.contextmanager
def headless_chromium(profile: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile in ``profile`` and no background network."""
    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    # Both paths are given, so Selenium Manager has nothing to look up; offline all the same.
    os.environ["SE_OFFLINE"] = "true"
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
        f"--user-data-dir={profile}",
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


def wait_for_title(driver: WebDriver, part: str) -> None:
    """Wait until the page title contains ``part`` (a click returns before its redirect lands)."""
    WebDriverWait(driver, WAIT).until(expected_conditions.title_contains(part))
