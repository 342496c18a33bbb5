"""Parse the Python-literal list cells of pandas CSV exports (`"['You', nan]"`) without evaluating them.

`ast.literal_eval` rejects the bare name `nan` that pandas writes for a missing item, and `eval` is never an
option, so the syntax tree is walked by hand: strings, `None` and `nan` (→ None) are the only items accepted.
"""

from __future__ import annotations

import ast

MISSING_NAMES = frozenset({"nan", "NaN", "None"})


class LiteralListError(ValueError):
    """The cell is not a list of strings / missing values; the message says why."""


def parse_list(text: str) -> list[str | None]:
    """`"['a', nan]"` → `['a', None]`; an empty cell (pandas' NaN for the whole list) → `[]`."""
    text = text.strip()
    if not text or text in MISSING_NAMES:
        return []
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise LiteralListError(f"not a list literal ({err.msg} at character {err.offset})") from None
    body = tree.body
    if not isinstance(body, ast.List | ast.Tuple):
        raise LiteralListError(f"expected a list literal, found {type(body).__name__}")
    return [_item(node, i) for i, node in enumerate(body.elts)]


def _item(node: ast.expr, index: int) -> str | None:
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str)):
        return node.value
    if isinstance(node, ast.Name) and node.id in MISSING_NAMES:
        return None
    shown = ast.unparse(node)
    raise LiteralListError(f"item {index} is {shown[:40]!r}: only strings and nan are allowed")
