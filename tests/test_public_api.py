"""The public surface: a sorted, resolvable __all__, a pure core, and shipped type information."""

import ast
import importlib.metadata
import importlib.resources
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import lattice_stripe
import lattice_stripe.core

FRAMEWORKS = (
    "aiohttp",
    "urllib3",
    "starlette",
    "pyramid",
    "psycopg",
    "psycopg_pool",
    "redis",
    "django",
    "flask",
    "werkzeug",
)
# Each framework is imported only by the modules named after it.
FRAMEWORK_HOMES = {
    "django": "contrib/django/",
    "asgiref": "contrib/django/",
    "flask": "contrib/flask.py",
    "werkzeug": "contrib/flask.py",
}


def isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then everything else, each alphabetical."""
    if name.isupper():
        return 0, name
    if name[0].isupper():
        return 1, name
    return 2, name


def test_all_is_sorted_and_unique() -> None:
    """lattice_stripe.__all__ is in isort-style order with no duplicates."""
    names = list(lattice_stripe.__all__)
    assert names == sorted(names, key=isort_style)
    assert len(names) == len(set(names))


def test_every_public_name_resolves() -> None:
    """Every name in __all__ is an attribute of the package, and star-import gives exactly them."""
    for name in lattice_stripe.__all__:
        assert getattr(lattice_stripe, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from lattice_stripe import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(lattice_stripe.__all__)


def test_every_core_module_all_resolves() -> None:
    """Each core module's __all__ names only things it defines or re-exports."""
    for info in pkgutil.iter_modules(lattice_stripe.core.__path__):
        module = importlib.import_module(f"lattice_stripe.core.{info.name}")
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"lattice_stripe.core.{info.name}.{name}"


def test_core_and_package_import_no_transport_or_framework() -> None:
    """A clean interpreter importing lattice_stripe and all of core loads no aiohttp/urllib3/..."""
    script = (
        "import importlib, json, pkgutil, sys\n"
        "import lattice_stripe, lattice_stripe.core\n"
        "for info in pkgutil.iter_modules(lattice_stripe.core.__path__):\n"
        "    importlib.import_module('lattice_stripe.core.' + info.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "lattice_stripe.core.codec" in loaded
    for name in loaded:
        assert name.split(".")[0] not in FRAMEWORKS, name


def test_core_imports_nothing_of_ours_outside_core() -> None:
    """The dependency rule: core modules import only core (and third-party or stdlib) modules."""
    core_dir = Path(lattice_stripe.core.__file__).parent
    for source in sorted(core_dir.glob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] == "lattice_stripe":
                    assert module.startswith("lattice_stripe.core"), f"{source.name}: {module}"
                assert module.split(".")[0] not in FRAMEWORKS, f"{source.name}: {module}"


def test_django_and_flask_are_imported_only_by_their_integrations() -> None:
    """django and asgiref only in contrib/django/, flask and werkzeug only in contrib/flask.py."""
    package = Path(lattice_stripe.__file__).parent
    for source in sorted(package.rglob("*.py")):
        where = source.relative_to(package).as_posix()
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                home = FRAMEWORK_HOMES.get(module.split(".")[0])
                assert home is None or where.startswith(home), f"{where}: {module}"


def test_py_typed_is_shipped() -> None:
    """The PEP 561 marker sits in the package directory, so type checkers use our annotations."""
    marker = importlib.resources.files("lattice_stripe").joinpath("py.typed")
    assert marker.is_file()
    assert (Path(lattice_stripe.__file__).parent / "py.typed").is_file()


def test_version_matches_the_distribution() -> None:
    """__version__ is the installed distribution's version."""
    assert lattice_stripe.__version__ == importlib.metadata.version("lattice-stripe")


def test_webhook_names_load_on_first_use() -> None:
    """Importing lattice_stripe loads no webhook code; the first webhook name loads it."""
    script = (
        "import json, sys\n"
        "import lattice_stripe\n"
        "before = sorted(m for m in ('lattice_stripe.core.webhooks', 'hmac') if m in sys.modules)\n"
        "receiver = lattice_stripe.WebhookReceiver\n"
        "from lattice_stripe import construct_event\n"
        "print(json.dumps([before, receiver.__module__, construct_event.__module__,\n"
        "                  'lattice_stripe.core.webhooks' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    before, receiver_module, construct_module, loaded = json.loads(result.stdout)
    assert before == []
    assert receiver_module == construct_module == "lattice_stripe.core.webhooks"
    assert loaded is True


def test_a_first_session_create_loads_neither_cattrs_nor_the_configuration_decoders() -> None:
    """Cold start: a well-formed session decodes directly; cattrs waits for an unusual body."""
    script = (
        "import json, sys\n"
        "from lattice_stripe import Client, HttpResponse\n"
        "from lattice_stripe.core import codec\n"
        "from lattice_stripe.core.session import Configuration\n"
        "doc = {'id': 'bps_1', 'object': 'billing_portal.session', 'configuration': 'bpc_1',\n"
        "    'created': 1, 'customer': 'cus_1', 'livemode': False,\n"
        "    'url': 'https://billing.stripe.com/p/session/test_x'}\n"
        "body = json.dumps(doc).encode()\n"
        "class Stub:\n"
        "    def send(self, request): return HttpResponse(status=200, body=body)\n"
        "    def close(self): pass\n"
        "with Client('sk_test_1', transport=Stub()) as client:\n"
        "    client.billing_portal.sessions.create({'customer': 'cus_1'})\n"
        "    first = ['cattrs' in sys.modules, Configuration in codec._DIRECT]\n"
        "    try:\n"
        "        codec.decode_session(json.dumps({**doc, 'created': '1'}).encode())\n"
        "    except Exception:\n"
        "        pass\n"
        "print(json.dumps([first, 'cattrs' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    first, cattrs_after_unusual = json.loads(result.stdout)
    assert first == [False, False]
    assert cattrs_after_unusual is True


def test_unknown_package_attribute_is_an_attribute_error() -> None:
    """A misspelt name on the package raises AttributeError naming it, as for any module."""
    with pytest.raises(AttributeError, match="WebhookReciever"):
        _ = lattice_stripe.WebhookReciever  # type: ignore[attr-defined]
    assert "WebhookReceiver" in dir(lattice_stripe)


def test_each_event_store_loads_only_its_own_database_driver() -> None:
    """Imported in turn: the stores package and SQLite add no driver, the others their own."""
    script = (
        "import importlib, json, sys\n"
        "loaded = {}\n"
        "for name in ('stores', 'stores.sqlite', 'stores.postgres', 'stores.redis'):\n"
        "    importlib.import_module('lattice_stripe.adapters.' + name)\n"
        "    loaded[name] = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))\n"
        "print(json.dumps(loaded))\n"
    )
    drivers = ["psycopg", "psycopg_pool", "redis", *FRAMEWORKS[:4]]
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, *drivers],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == {
        "stores": [],
        "stores.sqlite": [],
        "stores.postgres": ["psycopg", "psycopg_pool"],
        "stores.redis": ["psycopg", "psycopg_pool", "redis"],
    }
