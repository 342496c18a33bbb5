"""Evaluation export of outcome comparisons (Utility Engineering): A/B preference prompts with the measured
probability of A."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from valuecorpus.warehouse.exports.base import STRINGS, ExportFormat, ExportInput, render, template_ref

PAIRS_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt", pa.string()), ("choices", STRINGS), ("option_a", pa.string()),
    ("option_b", pa.string()), ("option_a_id", pa.string()), ("option_b_id", pa.string()), ("order", pa.string()),
    ("probability_a", pa.float64()), ("samples", pa.int64()), ("model", pa.string()),
    ("prompt_template", pa.string()),
])


def pair_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    for c in source.rows("outcome_comparison"):
        a, b = c["option_a"], c["option_b"]
        yield {"id": c["id"], "prompt": render("outcome_pair", option_a=a["description"], option_b=b["description"]),
               "choices": ["A", "B"], "option_a": a["description"], "option_b": b["description"],
               "option_a_id": a["outcome_id"], "option_b_id": b["outcome_id"], "order": c["order"],
               "probability_a": c["probability_a"], "samples": c["samples"], "model": c["model"],
               "prompt_template": template_ref("outcome_pair")}


FORMATS = [
    ExportFormat("outcome-pairs", "evaluation", "outcome_comparison",
                 "Utility Engineering outcome pairs: A/B prompt, both outcomes, probability of A",
                 PAIRS_SCHEMA, pair_rows),
]
