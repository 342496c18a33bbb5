"""The node id rule: ids are derived from names, so rebuilding a taxonomy never renames a node.

`<prefix>.<slug>` for a taxonomy with one level, `<prefix>.<level>.<slug>` for one with several, where the
slug is the English name lower-cased with every run of other characters than a-z and 0-9 replaced by `_`
("High-quality development" -> `high_quality_development`). Agent-ValueBench values are unique only within
their value system, so they nest under it: `avb.<system_id>` and `avb.<system_id>.<slug>`.
"""

from __future__ import annotations

import re
import unicodedata


def slug(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    out = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not out:
        raise ValueError(f"cannot derive an id from {name!r}: give the node an English name")
    return out


def node_id(prefix: str, *parts: str) -> str:
    """`node_id("cvc", "derived", "High-quality development")` -> 'cvc.derived.high_quality_development'."""
    return ".".join([prefix, *(slug(p) for p in parts)])
