"""The public surface: a sorted, resolvable __all__, a pure core, and shipped type information."""

import ast
import importlib.metadata
import importlib.resources
import importlib.util
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
    "opentelemetry",
)


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


def test_a_client_without_opentelemetry_installed_works_unwatched() -> None:
    """Without opentelemetry importable, a client creates a session unwatched, loading none."""
    script = (
        "import json, sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "from lattice_stripe import Client\n"
        "from lattice_stripe.adapters.recording import RecordingTransport\n"
        "client = Client('sk_test_51NoOtel000', transport=RecordingTransport())\n"
        "client.billing_portal.sessions.create({'customer': 'cus_1',"
        " 'return_url': 'https://shop.example/'})\n"
        "print(json.dumps([client._watch is None,"
        " sorted(m for m in sys.modules if m.startswith('lattice_stripe.adapters.open'))]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == [True, []]


def test_an_installed_but_unused_opentelemetry_is_never_loaded() -> None:
    """OpenTelemetry installed but not loaded by the app: clients and calls load none of it."""
    pytest.importorskip("opentelemetry.trace")
    script = (
        "import json, sys\n"
        "from lattice_stripe import Client\n"
        "from lattice_stripe.adapters.recording import RecordingTransport\n"
        "client = Client('sk_test_51UnusedOtel000', transport=RecordingTransport())\n"
        "client.billing_portal.sessions.create({'customer': 'cus_1',"
        " 'return_url': 'https://shop.example/'})\n"
        "print(json.dumps(sorted(m for m in sys.modules if 'opentelemetry' in m)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []


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
    assert receiver_module == construct_module == "lattice_stripe.webhooks"
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


def test_store_protocols_and_reply_are_top_level_names_of_the_core_classes() -> None:
    """EventStore, AsyncEventStore and WebhookReply import from lattice_stripe, one class each."""
    import lattice_stripe.core.webhooks as webhooks

    assert lattice_stripe.EventStore is webhooks.EventStore
    assert lattice_stripe.AsyncEventStore is webhooks.AsyncEventStore
    assert lattice_stripe.WebhookReply is webhooks.WebhookReply


def test_the_redaction_policy_has_one_home() -> None:
    """The policy lives in lattice_stripe.core.redaction; no second module re-exports it."""
    assert importlib.util.find_spec("lattice_stripe.redaction") is None
    assert lattice_stripe.RedactingFilter.__module__ == "lattice_stripe.core.redaction"


def test_the_core_lists_each_of_its_modules_once() -> None:
    """core.__all__ names every core module, sorted, and each resolves: a new module is listed."""
    modules = sorted(info.name for info in pkgutil.iter_modules(lattice_stripe.core.__path__))
    assert lattice_stripe.core.__all__ == modules
    for name in lattice_stripe.core.__all__:
        assert importlib.import_module(f"lattice_stripe.core.{name}").__name__.endswith(name)


def test_the_webhooks_package_re_exports_each_of_its_parts() -> None:
    """core.webhooks is signatures, events, store and receiver, each name of theirs re-exported."""
    import lattice_stripe.core.webhooks as webhooks

    parts = sorted(info.name for info in pkgutil.iter_modules(webhooks.__path__))
    assert parts == ["events", "receiver", "signatures", "store"]
    for part in parts:
        module = importlib.import_module(f"lattice_stripe.core.webhooks.{part}")
        for name in module.__all__:
            assert getattr(webhooks, name) is getattr(module, name), f"{part}.{name}"
            assert name in webhooks.__all__, f"{part}.{name}"


def test_the_emulators_modules_are_private() -> None:
    """The emulator's public names live in its __init__; each module behind them is private."""
    import lattice_stripe.emulator as emulator

    modules = [info.name for info in pkgutil.iter_modules(emulator.__path__)]
    assert modules
    assert [name for name in modules if not name.startswith("_")] == []
    for name in emulator.__all__:
        value = getattr(emulator, name)
        if not isinstance(value, str):  # the default key and secret are plain strings
            assert value.__module__.startswith("lattice_stripe.emulator._"), name


def test_the_core_reads_no_clock_or_randomness() -> None:
    """No core module imports time, random, secrets or uuid: clocks and randomness are injected."""
    core_dir = Path(lattice_stripe.core.__file__).parent
    for source in sorted(core_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"time", "random", "secrets", "uuid"}, source


def test_contribs_shared_helpers_are_private() -> None:
    """lattice_stripe.contrib exposes only the names apps use; the shared helpers are private."""
    import lattice_stripe.contrib as contrib

    assert "portal_session_params" not in contrib.__all__
    assert not hasattr(contrib, "portal_session_params")
    for name in contrib.__all__:
        value = getattr(contrib, name)
        if callable(value):  # the constants are plain strings and mappings
            assert value.__module__ == "lattice_stripe.contrib._shared", name


def test_customers_subscriptions_and_configurations_load_on_first_use() -> None:
    """import lattice_stripe builds no billing or configuration value; the first use loads them."""
    script = (
        "import json, sys\n"
        "import lattice_stripe\n"
        "from lattice_stripe.core.http import HttpResponse\n"
        'body = (b\'{"id":"bps_1","object":"billing_portal.session","created":1,\'\n'
        '        b\'"customer":"cus_1","livemode":false,"configuration":"bpc_1",\'\n'
        '        b\'"url":"https://billing.stripe.com/p/session/test_x"}\')\n'
        "class Stub:\n"
        "    def send(self, request): return HttpResponse(status=200, body=body)\n"
        "    def close(self): pass\n"
        "heavy = ('lattice_stripe.core.billing', 'lattice_stripe.core.configuration',\n"
        "         'lattice_stripe.billing', 'lattice_stripe.configurations')\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        "client = lattice_stripe.Client('sk_test_51Lazy000', transport=Stub())\n"
        "client.billing_portal.sessions.create({'customer': 'cus_1'})\n"
        "after_session = [m for m in heavy if m in sys.modules]\n"
        "client.customers, client.billing_portal.configurations, lattice_stripe.Features\n"
        "print(json.dumps([before, after_session, [m for m in heavy if m in sys.modules]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    before, after_session, after_use = json.loads(result.stdout)
    assert before == after_session == []
    assert sorted(after_use) == sorted(
        [
            "lattice_stripe.core.billing",
            "lattice_stripe.core.configuration",
            "lattice_stripe.billing",
            "lattice_stripe.configurations",
        ]
    )
