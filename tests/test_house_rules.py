"""The suite's own rules, checked: every test states the behaviour it pins in one line."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_FILES = sorted([*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("benchmarks/test_*.py")])


def _tests_without_a_one_line_docstring(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
            "test_"
        ):
            doc = ast.get_docstring(node)
            if not doc or "\n" in doc.strip():
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return missing


def test_the_rule_is_checked_over_every_test_module() -> None:
    """The check below really reads the suite (a glob that found nothing would pass vacuously)."""
    assert len(TEST_FILES) > 20
    assert Path(__file__) in TEST_FILES


def test_every_test_has_a_one_line_docstring() -> None:
    """Each test function opens with a single-line docstring naming the behaviour it pins."""
    missing = [line for path in TEST_FILES for line in _tests_without_a_one_line_docstring(path)]
    assert missing == []
