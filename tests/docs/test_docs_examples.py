"""Every code example of the documentation runs: docs/*.md and README.md.

Conventions, written as HTML comments in the Markdown (invisible on the site):

- The ```` ```python ```` blocks of a page run in order in one namespace (the
  module ``docs_<page>``, in ``sys.modules`` while it runs), in a
  fresh working directory, on one event loop: a block may ``await`` at top level.
- ``<!-- skip: reason -->`` right before a block leaves it out. Only for code
  that needs a live Stripe account or the network; the reason is required.
- ``<!-- file: name -->`` right before a block (any language) writes it to
  ``name`` in the working directory before the page's code runs.
- ``STRIPE_SECRET_KEY`` and ``STRIPE_WEBHOOK_SECRETS`` hold test values, so that code
  reading them at start-up runs; nothing reaches Stripe.
- ``<!-- docs-test: pytest -->`` anywhere on a page makes its Python blocks,
  joined, a pytest test module using the plugin's fixtures; those pages are
  run by tests/testing/test_testing_plugin.py, with :func:`doc_pages.pytest_module`.
"""

import ast
import asyncio
import inspect
import json
import sys
import types
from pathlib import Path

import pytest

from doc_pages import PAGES, PYTEST_PAGES, blocks, is_pytest_page


def run_page(page: Path) -> None:
    """Run the page's Python blocks in order in one namespace, on one event loop."""
    page_blocks = blocks(page)
    for block in page_blocks:
        if block.file is not None:
            Path(block.file).write_text(block.code, encoding="utf-8")
    # The namespace is a registered module while the page runs, as an application's code
    # is: Pyramid's Configurator, for one, looks its caller's module up in sys.modules.
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    namespace: dict[str, object] = module.__dict__
    sys.modules[module.__name__] = module
    loop = asyncio.new_event_loop()
    try:
        for block in page_blocks:
            if block.language != "python" or block.skip is not None:
                continue
            code = compile(block.padded(), str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            if code.co_flags & inspect.CO_COROUTINE:
                loop.run_until_complete(eval(code, namespace))
            else:
                exec(code, namespace)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        sys.modules.pop(module.__name__, None)


def _page_id(page: Path) -> str:
    return page.name


# webob (under pyramid and webtest) imports the cgi module, deprecated since Python 3.11.
@pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning")
@pytest.mark.parametrize("page", [page for page in PAGES if not is_pytest_page(page)], ids=_page_id)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page's Python examples run in order without error, offline."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_DocsExamples")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_DocsExamples")
    run_page(page)


def test_the_pytest_pages_are_known() -> None:
    """Exactly the pages run by tests/testing/test_testing_plugin.py are marked as test modules."""
    assert {page.name for page in PAGES if is_pytest_page(page)} == PYTEST_PAGES


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_block_is_checked(page: Path) -> None:
    """Python and JSON blocks parse, and every skip says why."""
    for block in blocks(page):
        if block.skip is not None:
            assert block.skip.strip(), f"{block.where}: a skip marker needs a reason"
        if block.language == "python":
            ast.parse(block.code, filename=block.where)
        elif block.language == "json":
            json.loads(block.code)


def test_skips_are_rare() -> None:
    """Examples run offline: only a few blocks (those needing a live account) are skipped."""
    skipped = [block.where for page in PAGES for block in blocks(page) if block.skip is not None]
    python = [block for page in PAGES for block in blocks(page) if block.language == "python"]
    assert len(skipped) <= max(3, len(python) // 10), skipped


def test_the_block_reader_sees_markers_and_indented_fences(tmp_path: Path) -> None:
    """Markers bind to the next block only; indented fences are dedented; lines are kept."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n"
        "<!-- skip: needs a live key -->\n```python\nraise SystemExit\n```\n\n"
        "- item\n\n    ```python\n    x = 1\n    ```\n\n"
        '<!-- file: seed.json -->\n```json\n{"a": 1}\n```\n',
        encoding="utf-8",
    )
    skipped, indented, seed = blocks(page)
    assert (skipped.skip, skipped.line, skipped.code) == (
        "needs a live key",
        4,
        "raise SystemExit\n",
    )
    assert (indented.skip, indented.code, indented.line) == (None, "x = 1\n", 10)
    assert (seed.file, seed.language, seed.code) == ("seed.json", "json", '{"a": 1}\n')


def test_a_failing_example_names_its_page_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in an example is reported at the page's own line number."""
    page = tmp_path / "broken.md"
    page.write_text("Intro\n\n```python\nx = 1\nassert x == 2\n```\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError) as caught:
        run_page(page)
    frame = caught.traceback[-1]
    assert (Path(str(frame.path)).name, frame.lineno + 1) == ("broken.md", 5)


def test_top_level_await_and_shared_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks share names, may await at top level, and file blocks are written first."""
    page = tmp_path / "async.md"
    page.write_text(
        "```python\nimport asyncio\nfrom pathlib import Path\n```\n\n"
        "```python\nawait asyncio.sleep(0)\nvalue = Path('data.txt').read_text()\n```\n\n"
        "```python\nassert value == 'hello\\n'\n```\n\n"
        "<!-- file: data.txt -->\n```text\nhello\n```\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    run_page(page)
