"""CONTRIBUTING.md's dependency rule, checked on the source: which part may import which."""

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lattice_stripe

PACKAGE = Path(lattice_stripe.__file__).parent

# Each part of the package (its first path segment under lattice_stripe/) and the parts of ours it
# may import. "core" imports only itself; adapters and contrib build on the core and the client,
# never on each other (contrib's test helpers take the recording fake from lattice_stripe.testing);
# only the demo and the command line wire several parts together.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "adapters": frozenset({"core", "adapters"}),
    "client": frozenset({"core", "adapters", "billing", "configurations"}),
    "configurations": frozenset({"core", "client"}),
    "billing": frozenset({"core", "client"}),
    "webhooks": frozenset({"core"}),
    "contrib": frozenset({"core", "client", "billing", "webhooks", "contrib", "testing"}),
    "emulator": frozenset({"core", "emulator", "__main__"}),
    "testing": frozenset({"core", "client", "adapters", "emulator", "webhooks", "testing"}),
    "demo": frozenset({"core", "client", "billing", "webhooks", "contrib", "emulator", "demo"}),
    "redaction": frozenset({"core"}),
    "__init__": frozenset({"core", "client", "billing", "configurations", "webhooks"}),
    "__main__": frozenset({"core", "client", "emulator", "demo", "__init__"}),
}

# Each third-party library and the only places that may import it: a transport or framework is
# imported by the module named after it (the emulator and the demo run on aiohttp and Starlette).
HOMES: dict[str, tuple[str, ...]] = {
    "attrs": ("",),
    "cattrs": ("core/", "emulator/"),
    "aiohttp": ("adapters/aiohttp.py", "emulator/", "demo/"),
    "multidict": ("adapters/aiohttp.py",),
    "urllib3": ("adapters/urllib3.py",),
    "psycopg": ("adapters/stores/postgres.py",),
    "psycopg_pool": ("adapters/stores/postgres.py",),
    "redis": ("adapters/stores/redis.py",),
    "starlette": ("contrib/starlette.py", "demo/"),
    "uvicorn": ("testing/uvicorn.py", "demo/"),
    "pyramid": ("contrib/pyramid/",),
    "django": ("contrib/django/",),
    "asgiref": ("contrib/django/",),
    "flask": ("contrib/flask.py",),
    "werkzeug": ("contrib/flask.py",),
    "pytest": ("testing/plugin.py", "contrib/django/testing.py"),
    "opentelemetry": ("adapters/opentelemetry.py",),
}


def part_of(relative: str) -> str:
    """The part a module belongs to: ``core/guard.py`` -> core, ``client.py`` -> client."""
    first = relative.split("/")[0]
    return first.removesuffix(".py")


def target_part(module: str) -> str:
    """The part an absolute ``lattice_stripe...`` import names (the package itself is __init__)."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def imported(source: str) -> Iterator[tuple[int, str]]:
    """Every absolute module name a source imports, with its line (relative imports are refused)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert not node.level, f"line {node.lineno}: relative import"
            assert node.module is not None
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def violations(relative: str, source: str) -> list[str]:
    """What in one module breaks the rule: a crossing import of ours, or a misplaced library."""
    found = []
    part = part_of(relative)
    for line, module in imported(source):
        top = module.split(".")[0]
        if top == "lattice_stripe":
            target = target_part(module)
            if target != part and target not in ALLOWED[part]:
                found.append(f"{relative}:{line}: {part} imports {module}")
        elif top not in sys.stdlib_module_names:
            homes = HOMES.get(top)
            if homes is None or not relative.startswith(homes):
                found.append(f"{relative}:{line}: {top} imported outside {homes}")
    return found


def modules() -> list[Path]:
    """Every Python module of the package."""
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_is_in_the_table() -> None:
    """A new top-level module or package must be given its place in the rule before it lands."""
    parts = {part_of(path.relative_to(PACKAGE).as_posix()) for path in modules()}
    assert parts <= set(ALLOWED), sorted(parts - set(ALLOWED))


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.relative_to(PACKAGE).as_posix())
def test_module_follows_the_dependency_rule(path: Path) -> None:
    """Each module imports only the parts of ours and the third-party libraries its place allows."""
    relative = path.relative_to(PACKAGE).as_posix()
    assert violations(relative, path.read_text()) == []


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("core/guard.py", "from lattice_stripe.client import Client"),
        ("core/guard.py", "import aiohttp"),
        ("contrib/flask.py", "from lattice_stripe.adapters.recording import RecordingTransport"),
        ("adapters/stdlib.py", "import lattice_stripe.contrib.starlette"),
        ("adapters/stdlib.py", "import urllib3"),
        ("client.py", "from lattice_stripe.emulator import Emulator"),
        ("contrib/starlette.py", "import flask"),
        ("emulator/api.py", "from lattice_stripe.testing import StripeRecorder"),
    ],
)
def test_the_rule_catches_a_crossing_import(relative: str, source: str) -> None:
    """The checker reports each kind of forbidden import (so a pass above means something)."""
    assert len(violations(relative, source)) == 1
