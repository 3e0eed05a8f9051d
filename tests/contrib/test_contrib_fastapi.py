"""The guide's FastAPI example: a dependency-style portal endpoint on the Starlette helpers."""

import pytest

pytest.importorskip("fastapi")

from doc_snippets import load_module, snippets


def test_the_guide_shows_exactly_these_fastapi_snippets() -> None:
    """Every FastAPI snippet of docs/frameworks.md is one this module runs."""
    assert {name for name in snippets() if name.startswith("fastapi")} == {
        "fastapi-app",
        "fastapi-test",
    }


def test_the_guides_fastapi_test_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's own FastAPI test runs: 403 without a customer, 303 with the dependency's."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_fastapi")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_fastapi")
    guide = load_module("fastapi_guide", "fastapi-app", "fastapi-test")
    guide.test_the_fastapi_portal_dependency()
    assert guide.LOGGED_IN == {"s1": "cus_123"}
