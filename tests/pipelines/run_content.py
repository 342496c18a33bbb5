"""A staged run's content, to compare runs made by different executors and runners (order aside)."""

from __future__ import annotations

from typing import Any


def run_content(layout: Any, kind: str = "dilemma") -> dict[str, list[dict]]:
    out = {}
    for name, table in [(kind, f"records/{kind}"), ("plan", "plan"), ("dead", "dead_letters"),
                        ("filtered", "filtered")]:
        rows = layout.read_table(table).to_pylist()
        for row in rows:
            if "provenance" in row:
                row["provenance"]["run_id"] = None
        out[name] = sorted(rows, key=repr)
    return out
