"""Filters: every record removed from a run is recorded as a `FilteredSample` with the filter and its reason.

`apply_filters` runs, in this order: schema validity, the chain's own checks (e.g. sentence counts,
demographic terms), length bounds, language, leakage, echo of the prompt (`echo.py`: the prompt's own text,
the same text twice in a record), exact duplicates, near-duplicates (within the run and against the latest
published version's texts, handed over by the caller), then echo across samples (a field another sample also
wrote), then the parts of filtered records. Duplicates and repeats keep the record with the smallest id, so the
result does not depend on the order records arrive in (any runner gives the same run; `beam.py` is the same
filters as a Beam composite).
The optional LLM judge (`judge.py`) runs after these, through the engine.
"""

from __future__ import annotations

from valuecorpus.pipelines.filters.core import FilterResult, apply_filters

__all__ = ["FilterResult", "apply_filters"]
