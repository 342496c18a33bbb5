"""Utility Engineering (emergent-values): outcome sets `{group: [sentence, …]}` → `Outcome`.

`options_hierarchical.json` (30 categories, 510 outcomes) and `policy_options.json` (policies by topic) are
outcome sets; `entities.json` (politicians, platforms) has the same shape and imports the same way, the group
(e.g. "politicians") as `category`. `outcome_set` is the file stem; `index` is the position in the flattened
order the paper uses (groups in file order, sentences in list order), i.e. the outcome's option id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuecorpus.schemas.importers.base import ImportContext, ImportResult, import_json_files
from valuecorpus.schemas.records import Outcome

SOURCE_DATASET = "emergent_values"


def import_path(path: Path) -> ImportResult:
    return import_json_files(path, SOURCE_DATASET, outcomes)


def outcomes(ctx: ImportContext, data: Any) -> list[Outcome]:
    if not isinstance(data, dict):
        found = type(data).__name__
        raise ctx.fail("top level", f"expected an object {{category: [outcome, …]}}, found {found}")
    out: list[Outcome] = []
    for category, sentences in data.items():
        if not isinstance(sentences, list):
            found = type(sentences).__name__
            raise ctx.fail(f"key {category!r}", f"expected a list of outcome sentences, found {found}")
        for i, sentence in enumerate(sentences):
            key = f"{category}[{i}]"
            if not isinstance(sentence, str):
                raise ctx.fail(key, f"expected an outcome sentence, found {type(sentence).__name__}")
            out.append(ctx.build(
                Outcome, key, id=ctx.record_id(key), provenance=ctx.provenance(key),
                outcome_set=ctx.path.stem, category=category, index=len(out), description=sentence,
            ))
    return out
