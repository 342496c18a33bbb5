"""Filters: every record removed from a run is recorded as a `FilteredSample` with the filter and its reason.

`apply_filters` runs, in this order: schema validity, the chain's own checks (e.g. sentence counts,
demographic terms), length bounds, language, leakage, exact duplicates, near-duplicates (within the run and
against the latest published version's texts, handed over by the caller). Duplicates keep the record with the
smallest id, so the result does not depend on the order records arrive in (any runner gives the same run).
The optional LLM judge (`judge.py`) runs after these, through the engine.
"""

from __future__ import annotations

from valuecorpus.pipelines.filters.core import FilterResult, apply_filters

__all__ = ["FilterResult", "apply_filters"]
