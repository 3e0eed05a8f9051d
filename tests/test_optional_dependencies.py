"""A missing optional library fails with the library's own error, naming the extra to install."""

import json
import subprocess
import sys

import pytest

from lattice_stripe import LatticeStripeError, MissingDependencyError

# Runs in a fresh interpreter: the blocked library (and every submodule) imports as missing.
_PROBE = """
import importlib, json, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == BLOCKED or name.startswith(BLOCKED + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

for loaded in [name for name in sys.modules if name == BLOCKED or name.startswith(BLOCKED + ".")]:
    del sys.modules[loaded]
sys.meta_path.insert(0, Block())
try:
    CALL()
except BaseException as error:
    from lattice_stripe import LatticeStripeError
    print(json.dumps({
        "type": type(error).__name__,
        "ours": isinstance(error, LatticeStripeError),
        "import_error": isinstance(error, ImportError),
        "message": str(error),
        "cause": type(error.__cause__).__name__,
    }))
else:
    print(json.dumps({"type": None}))
"""

CASES = [
    ("urllib3", "import lattice_stripe.adapters.urllib3", "urllib3"),
    ("aiohttp", "import lattice_stripe.adapters.aiohttp", "aiohttp"),
    ("starlette", "import lattice_stripe.contrib.starlette", "starlette"),
    ("pyramid", "import lattice_stripe.contrib.pyramid", "pyramid"),
    ("pyramid", "import lattice_stripe.contrib.pyramid.testing", "pyramid"),
    ("aiohttp", "import lattice_stripe.emulator", "emulator"),
    ("aiohttp", "import lattice_stripe.emulator._app", "emulator"),
    (
        "aiohttp",
        "from lattice_stripe.testing import emulator_server\nemulator_server().__enter__()",
        "emulator",
    ),
    ("uvicorn", "import lattice_stripe.demo.server", "emulator"),
    ("starlette", "import lattice_stripe.demo.app", "emulator"),
]


@pytest.mark.parametrize(("blocked", "call", "extra"), CASES)
def test_a_missing_optional_library_names_the_extra(blocked: str, call: str, extra: str) -> None:
    """Importing or using a module without its library raises MissingDependencyError."""
    body = "def CALL():\n" + "".join(f"    {line}\n" for line in call.splitlines())
    source = f"BLOCKED = {blocked!r}\n{body}{_PROBE}"
    result = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, check=True
    )
    outcome = json.loads(result.stdout)
    assert outcome["type"] == "MissingDependencyError", outcome
    assert outcome["ours"]
    assert outcome["import_error"]
    assert f"pip install 'lattice-stripe[{extra}]'" in outcome["message"]
    assert blocked in outcome["message"]
    assert outcome["cause"] == "ModuleNotFoundError"


_DEFAULT_CLIENTS = (
    "import asyncio, lattice_stripe\n"
    "lattice_stripe.Client('sk_test_x').close()\n"
    "async def go():\n"
    "    async with lattice_stripe.AsyncClient('sk_test_x'):\n"
    "        pass\n"
    "asyncio.run(go())"
)


@pytest.mark.parametrize("blocked", ["urllib3", "aiohttp"])
def test_the_default_clients_need_no_transport_library(blocked: str) -> None:
    """Client() and AsyncClient() work with urllib3 or aiohttp missing (stdlib defaults)."""
    body = "def CALL():\n" + "".join(f"    {line}\n" for line in _DEFAULT_CLIENTS.splitlines())
    source = f"BLOCKED = {blocked!r}\n{body}{_PROBE}"
    result = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == {"type": None}


def test_the_error_is_an_import_error_of_the_tree_and_pickles() -> None:
    """MissingDependencyError is a LatticeStripeError and an ImportError that survives pickle."""
    import pickle

    error = MissingDependencyError("urllib3", "urllib3", "lattice_stripe.adapters.urllib3")
    assert isinstance(error, LatticeStripeError)
    assert isinstance(error, ImportError)
    assert error.name == "urllib3"
    clone = pickle.loads(pickle.dumps(error))
    assert (type(clone), str(clone), clone.name, clone.extra) == (
        MissingDependencyError,
        str(error),
        "urllib3",
        "urllib3",
    )
