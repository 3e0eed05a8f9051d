"""A griffe extension for the API reference: the docstrings' Sphinx markup, read as Markdown.

The package's docstrings are written for ``help()`` and Sphinx alike:
``:class:`~lattice_stripe.Client``` roles and ``Example::`` literal blocks.
Roles naming a ``lattice_stripe`` object become optional cross-references
(a link when the target is documented, plain code otherwise); other roles
become code; the ``::`` that opens a literal block becomes a colon, the
indented block under it being a Markdown code block already.
"""

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(?P<short>~?)(?P<target>[^`<>]+)`")
_OPENS_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)
_BARE_OPENER = re.compile(r"^[ \t]*::$", re.MULTILINE)


def _reference(match: re.Match[str]) -> str:
    target = match["target"].strip()
    shown = target.rsplit(".", 1)[-1] if match["short"] else target
    if target.startswith("lattice_stripe."):
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'
    return f"`{shown}`"


def to_markdown(docstring: str) -> str:
    """The docstring with roles as references and literal-block openers as colons."""
    text = _ROLE.sub(_reference, docstring)
    text = _OPENS_BLOCK.sub(":", text)
    return _BARE_OPENER.sub("", text)


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring with :func:`to_markdown` as the package is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
