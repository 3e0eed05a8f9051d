"""Starlette's TestClient, as the docs and the ``testing`` extra set it up, warns of nothing."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")

_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# A TestClient round trip in a fresh interpreter where every warning is an error.
_USE = """
import sys
if BLOCK_HTTPX2:
    sys.modules["httpx2"] = None  # as if only plain httpx were installed
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
with TestClient(app, base_url="https://testserver") as client:
    assert client.get("/").text == "ok"
"""


def _run(*, block_httpx2: bool) -> subprocess.CompletedProcess[str]:
    """Run the round trip with warnings as errors; return the finished process."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", f"BLOCK_HTTPX2 = {block_httpx2}\n{_USE}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_testing_extra_gives_a_testclient_without_warnings() -> None:
    """With the testing extra's httpx2, a TestClient round trip raises no warning at all."""
    # tomllib is 3.11+, and the project still supports 3.10: the extra's line is enough.
    testing = re.search(r"^testing = \[(.*)\]$", _PYPROJECT.read_text(), flags=re.MULTILINE)
    assert testing is not None
    assert '"httpx2>=' in testing.group(1)
    finished = _run(block_httpx2=False)
    assert finished.returncode == 0, finished.stderr


def test_plain_httpx_is_what_warns() -> None:
    """Without httpx2, current Starlette's TestClient warns that plain httpx is deprecated."""
    finished = _run(block_httpx2=True)
    assert finished.returncode != 0
    assert "install `httpx2` instead" in finished.stderr
