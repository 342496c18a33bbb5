"""Utility Engineering (emergent-values): outcome sets and implicit lotteries → `Outcome`.

- Outcome sets `{group: [sentence, …]}`: `options_hierarchical.json` (30 categories, 510 outcomes),
  `policy_options.json` (policies by topic) and `entities.json` (politicians, platforms; the group as
  `category`). `outcome_set` is the file stem; `index` is the position in the flattened order the paper uses
  (groups in file order, sentences in list order), i.e. the outcome's option id.
- Implicit lotteries `{"base_options": [{"option": …, "sub_options": [{"option": …, "probability": p}]}]}`
  (`experiments/expected_utility_implicit/.../options.json`): each base option is an `Outcome` (category
  `lottery`) whose `lottery` lists its sub-outcomes with their probabilities; each sub-outcome is an `Outcome`
  of its own (category `lottery_branch`), so utilities can be fitted for both and the expected-utility
  property checked. Probabilities must lie in [0, 1] and a lottery's must sum to 1 (±0.01).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuecorpus.schemas.importers.base import ImportContext, ImportResult, import_json_files, obj_keys
from valuecorpus.schemas.records import Outcome
from valuecorpus.schemas.records.preferences import LotteryBranch

SOURCE_DATASET = "emergent_values"
LOTTERY_KEY = "base_options"
PROBABILITY_SUM_TOLERANCE = 0.01


def import_path(path: Path) -> ImportResult:
    return import_json_files(path, SOURCE_DATASET, outcomes)


def outcomes(ctx: ImportContext, data: Any) -> list[Outcome]:
    if not isinstance(data, dict):
        found = type(data).__name__
        raise ctx.fail("top level", f"expected an object {{category: [outcome, …]}} or {{\"{LOTTERY_KEY}\": "
                       f"[…]}}, found {found}")
    if LOTTERY_KEY in data:
        return lotteries(ctx, data)
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


def _text(ctx: ImportContext, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(where, f"expected an outcome sentence, found {type(value).__name__}")
    return value


def _probability(ctx: ImportContext, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ctx.fail(where, f"expected a probability in [0, 1], found {value!r}")
    return float(value)


def lotteries(ctx: ImportContext, data: dict) -> list[Outcome]:
    obj_keys(ctx, data, "top level", (LOTTERY_KEY,))
    bases = data[LOTTERY_KEY]
    if not isinstance(bases, list):
        raise ctx.fail(f"key '{LOTTERY_KEY}'", f"expected a list of base options, found {type(bases).__name__}")
    out: list[Outcome] = []
    for i, base in enumerate(bases):
        where = f"{LOTTERY_KEY}[{i}]"
        obj_keys(ctx, base, where, ("option", "sub_options"))
        subs = base["sub_options"]
        if not isinstance(subs, list) or not subs:
            raise ctx.fail(f"{where}.sub_options", "expected a non-empty list of sub-options")
        base_text = _text(ctx, f"{where}.option", base["option"])
        base_index = len(out)
        out.append(None)  # type: ignore[arg-type]  # the base option's slot: its id order follows the file
        branches: list[LotteryBranch] = []
        for j, sub in enumerate(subs):
            sub_where = f"{where}.sub_options[{j}]"
            obj_keys(ctx, sub, sub_where, ("option", "probability"))
            text = _text(ctx, f"{sub_where}.option", sub["option"])
            p = _probability(ctx, f"{sub_where}.probability", sub["probability"])
            record = ctx.build(
                Outcome, sub_where, id=ctx.record_id(sub_where), provenance=ctx.provenance(sub_where),
                outcome_set=ctx.path.stem, category="lottery_branch", index=len(out), description=text,
            )
            out.append(record)
            branches.append(LotteryBranch(outcome_id=record.id, description=text, probability=p))
        total = sum(b.probability for b in branches)
        if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
            raise ctx.fail(f"{where}.sub_options", f"the probabilities sum to {total:g}, not 1")
        out[base_index] = ctx.build(
            Outcome, where, id=ctx.record_id(where), provenance=ctx.provenance(where), outcome_set=ctx.path.stem,
            category="lottery", index=base_index, description=base_text, lottery=branches,
        )
    return out
