"""Griffe extension for the API reference: the docstrings' Sphinx roles (``:class:`~mixing_gym.layout.MixingLayout```,
``:func:`fidelity```) become inline code (``MixingLayout``, ``fidelity``), as Sphinx shows them, instead of raw text.

mkdocstrings loads it from ``mkdocs.yml`` (``extensions:`` of the Python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|obj|exc|const|term):`(~?)([^`]+)`")


def _as_code(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring's Sphinx roles as inline code."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_as_code, obj.docstring.value)
