"""The code blocks of docs/frameworks.md by name, so that tests run what the guide shows."""

import re
import types
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "frameworks.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!-- snippet: ([\w-]+) -->\n\Z")


def snippets() -> dict[str, str]:
    """Every fenced block of the guide by its ``<!-- snippet: name -->`` marker.

    A block without a marker is an error: every snippet of the guide must be
    named, so that a test can run it.
    """
    text = GUIDE.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for fence in _FENCE.finditer(text):
        marker = _MARKER.search(text[: fence.start()])
        if marker is None:
            line = text.count("\n", 0, fence.start()) + 1
            raise AssertionError(f"{GUIDE.name}:{line}: a code block without a snippet marker")
        found[marker.group(1)] = fence.group(2)
    return found


def source(*snippet_names: str) -> str:
    """The named snippets, in order, as the text of one module."""
    guide = snippets()
    return "\n\n".join(guide[name] for name in snippet_names)


def load_module(name: str, *snippet_names: str) -> types.ModuleType:
    """Run the named Python snippets, in order, as the body of a fresh module ``name``."""
    module = types.ModuleType(name)
    exec(compile(source(*snippet_names), f"{GUIDE.name}:{name}", "exec"), module.__dict__)
    return module
