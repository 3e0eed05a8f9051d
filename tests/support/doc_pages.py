"""The documentation's pages and their fenced code blocks, read the way the docs tests run them.

The conventions (``<!-- skip: reason -->``, ``<!-- file: name -->``,
``<!-- docs-test: pytest -->``) are described in tests/docs/test_docs_examples.py.
"""

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
PYTEST_PAGES = {"testing.md"}

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_MARKER = re.compile(r"<!--\s*(?P<name>skip|file)\s*:\s*(?P<value>[^>]*?)\s*-->\s*\Z")
_PYTEST_PAGE = "<!-- docs-test: pytest -->"


@attrs.frozen(kw_only=True)
class Block:
    """One fenced code block: where it starts, its language, its text and its marker."""

    page: Path
    line: int
    language: str
    code: str
    skip: str | None = None
    file: str | None = None

    @property
    def where(self) -> str:
        """``page.md:line``, for messages and tracebacks."""
        return f"{self.page.name}:{self.line}"

    def padded(self) -> str:
        """The code, shifted so that its line numbers are the page's."""
        return "\n" * self.line + self.code


def _dedent(body: str, indent: str) -> str:
    return "".join(
        line[len(indent) :] if line.startswith(indent) else line
        for line in body.splitlines(keepends=True)
    )


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order, with the marker right before it."""
    text = page.read_text(encoding="utf-8")
    found = []
    for fence in _FENCE.finditer(text):
        marker = _MARKER.search(text[: fence.start()])
        name, value = (marker.group("name"), marker.group("value")) if marker else (None, None)
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, fence.start()) + 1,
                language=fence.group("lang"),
                code=_dedent(fence.group("body"), fence.group("indent")),
                skip=value if name == "skip" else None,
                file=value if name == "file" else None,
            )
        )
    return found


def is_pytest_page(page: Path) -> bool:
    """Whether the page is a test module (run by tests/testing/test_testing_plugin.py)."""
    return _PYTEST_PAGE in page.read_text(encoding="utf-8")


def pytest_module(page: Path) -> str:
    """The Python blocks of a pytest page as one module, keeping the page's line numbers."""
    lines: list[str] = []
    for block in blocks(page):
        if block.language == "python" and block.skip is None:
            lines += [""] * (block.line - len(lines))
            lines += block.code.splitlines()
    return "\n".join(lines) + "\n"
