"""Demographic attributes in a text (CLASH descriptions must carry values, not demographics)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from valuecorpus.pipelines.filters.text import find_terms


@cache
def demographic_terms() -> list[str]:
    path = resources.files("valuecorpus.pipelines.filters") / "data" / "demographic_terms.txt"
    text = path.read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def demographic_terms_in(text: str) -> list[str]:
    return find_terms(text, demographic_terms())
