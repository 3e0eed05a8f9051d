"""The test servers' own rule: a missing PostgreSQL or Redis fails under CI, skips elsewhere."""

import pytest

from services import unavailable


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_service_fails_the_test_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    """With CI set, a missing server binary is a failure that says what to install."""
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="redis-server is not installed"):
        unavailable("redis-server is not installed")


def test_a_missing_service_skips_the_test_on_a_developer_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without CI, a missing server binary skips the test, giving the reason."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="postgresql"):
        unavailable("postgresql is missing")
