"""DailyDilemmas (Chiu et al., ICLR 2025): `dilemma.csv` (situations) and the per-action detail CSV.

- `dilemma.csv` (idx, basic_situation, dilemma_situation) → one `Dilemma` per row, no actions.
- `dilemmas_with_detail_by_action*.csv` (one row per (dilemma, action)) → the two rows of an `idx` become one
  `Dilemma` with two `DilemmaAction`s. List cells are Python literals with `nan` (→ None). `values_names` /
  `values_types` / `wvs` / `mft` / `virtue` / `emotion` / `maslow` align into `DilemmaAction.values`; every
  value name must be in the `dailydilemmas_values` taxonomy. `model_resp_<model>[_clean]` → `model_answers`.
- `values.csv` is the source of that taxonomy, not records: skipped in a directory, an error on its own.

Dilemma ids hash the DailyDilemmas `idx`, so a directory import merges a situation row and its detail rows
into one record (after checking the situations are the same text).
"""

from __future__ import annotations

import re
from pathlib import Path

from valuecorpus.schemas.errors import InputFileError
from valuecorpus.schemas.importers.base import (
    ImportContext,
    ImportResult,
    csv_header,
    expand,
    read_csv,
    taxonomy_check,
)
from valuecorpus.schemas.importers.literals import LiteralListError, parse_list
from valuecorpus.schemas.records import Dilemma, stable_id
from valuecorpus.schemas.records.dilemmas import DilemmaAction, ModelAnswer, ValueAnnotation
from valuecorpus.schemas.taxonomies.loader import Taxonomy, load_taxonomy

SOURCE_DATASET = "daily_dilemmas"
VALUES_TAXONOMY = "dailydilemmas_values"

SITUATION_COLUMNS = ("idx", "basic_situation", "dilemma_situation")
PARTY_LIST_COLUMNS = (
    "parties_direct", "parties_indirect", "values_direct", "values_indirect", "reason_direct",
    "reason_indirect",
)
LABEL_COLUMNS = ("wvs", "mft", "virtue", "emotion", "maslow")
VALUE_LIST_COLUMNS = ("values_names", "values_types", *LABEL_COLUMNS)
DETAIL_COLUMNS = (
    *SITUATION_COLUMNS, "action_type", "action", "negative_consequence", *PARTY_LIST_COLUMNS,
    *VALUE_LIST_COLUMNS, "background", "topic", "topic_group",
)
TAXONOMY_SOURCE_COLUMNS = frozenset({"value", "WVS", "MFT", "Virtue", "Emotion", "Maslow"})
MODEL_COLUMN = re.compile(r"^model_resp_(?P<model>.+?)(?:_clean)?$")


def dilemma_id(idx: int) -> str:
    return stable_id(SOURCE_DATASET, "idx", idx)


def classify(path: Path) -> str:
    """'situations', 'detail' or 'taxonomy' from the header (a file missing a detail column still counts as a
    detail file, so the error names the missing column)."""
    header = set(csv_header(path))
    if header >= TAXONOMY_SOURCE_COLUMNS:
        return "taxonomy"
    detail_only = set(DETAIL_COLUMNS) - set(SITUATION_COLUMNS)
    if header & detail_only or any(MODEL_COLUMN.match(c) for c in header):
        return "detail"
    return "situations"


def import_path(path: Path) -> ImportResult:
    result = ImportResult(SOURCE_DATASET)
    files = expand(path, (".csv",))
    merged: dict[str, tuple[Path, Dilemma]] = {}
    for file in files:
        kind = classify(file)
        if kind == "taxonomy":
            result.skip_taxonomy_source(path, file, VALUES_TAXONOMY)
            continue
        ctx = ImportContext(result, file)
        dilemmas = read_situations(ctx) if kind == "situations" else read_detail(ctx)
        result.source_files.append(file)
        for dilemma in dilemmas:
            _merge(merged, file, dilemma)
    result.add(d for _, d in merged.values())
    return result


def _merge(merged: dict[str, tuple[Path, Dilemma]], file: Path, new: Dilemma) -> None:
    """A situation-only record and a detailed one of the same idx become the detailed one."""
    if new.id not in merged:
        merged[new.id] = (file, new)
        return
    old_file, old = merged[new.id]
    where, other = f"idx {new.source_idx}", f"{old_file.name}, {old.provenance.source_key}"
    for name in ("basic_situation", "dilemma_situation"):
        if getattr(old, name) != getattr(new, name):
            raise InputFileError(file, where, f"{name} differs from the one in {other}")
    if old.actions and new.actions:
        raise InputFileError(file, where, f"actions already imported from {other}")
    if not old.actions and not new.actions:
        raise InputFileError(file, where, f"duplicate dilemma (also {other})")
    merged[new.id] = (file, new) if new.actions else (old_file, old)


def _idx(ctx: ImportContext, where: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ctx.fail(where, f"idx {text!r} is not an integer") from None


def read_situations(ctx: ImportContext) -> list[Dilemma]:
    out: list[Dilemma] = []
    seen: dict[int, int] = {}
    for number, row in read_csv(ctx.path, SITUATION_COLUMNS):
        where = f"row {number}"
        idx = _idx(ctx, where, row["idx"])
        if idx in seen:
            raise ctx.fail(where, f"duplicate idx {idx} (also row {seen[idx]})")
        seen[idx] = number
        out.append(ctx.build(
            Dilemma, where, id=dilemma_id(idx), provenance=ctx.provenance(where), source_idx=idx,
            basic_situation=row["basic_situation"], dilemma_situation=row["dilemma_situation"],
        ))
    return out


def _list(ctx: ImportContext, where: str, column: str, text: str) -> list[str | None]:
    try:
        return parse_list(text)
    except LiteralListError as err:
        raise ctx.fail(f"{where}, column {column}", str(err)) from None


def _optional(text: str) -> str | None:
    return text if text != "" else None


def _values(ctx: ImportContext, where: str, row: dict[str, str], taxonomy: Taxonomy) -> list[ValueAnnotation]:
    lists = {c: _list(ctx, where, c, row[c]) for c in VALUE_LIST_COLUMNS}
    lengths = {c: len(v) for c, v in lists.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{c}={n}" for c, n in lengths.items())
        raise ctx.fail(where, f"value lists are not aligned ({shown})")
    out = []
    for i, name in enumerate(lists["values_names"]):
        if name is None:
            raise ctx.fail(f"{where}, column values_names", f"item {i} is nan: a value needs a name")
        taxonomy_check(ctx, f"{where}, column values_names", lambda name=name: taxonomy.lookup(name))
        out.append(ctx.build(
            ValueAnnotation, f"{where}, values_names item {i}", name=name, type=lists["values_types"][i],
            **{c: lists[c][i] for c in LABEL_COLUMNS},
        ))
    return out


def _model_columns(ctx: ImportContext, header: list[str]) -> dict[str, str]:
    models: dict[str, str] = {}
    for column in header:
        match = MODEL_COLUMN.match(column)
        if match:
            model = match.group("model")
            if model in models:
                problem = f"columns {models[model]!r} and {column!r} both answer for '{model}'"
                raise ctx.fail("header", problem)
            models[model] = column
    return models


def read_detail(ctx: ImportContext) -> list[Dilemma]:
    header = csv_header(ctx.path)
    models = _model_columns(ctx, header)
    groups: dict[int, list[tuple[int, dict[str, str]]]] = {}
    for number, row in read_csv(ctx.path, DETAIL_COLUMNS, optional=models.values()):
        groups.setdefault(_idx(ctx, f"row {number}", row["idx"]), []).append((number, row))
    taxonomy = taxonomy_check(ctx, "column values_names", lambda: load_taxonomy(VALUES_TAXONOMY))
    return [_dilemma(ctx, idx, rows, models, taxonomy) for idx, rows in groups.items()]


def _dilemma(
    ctx: ImportContext, idx: int, rows: list[tuple[int, dict[str, str]]], models: dict[str, str],
    taxonomy: Taxonomy,
) -> Dilemma:
    first_number, first = rows[0]
    rows_key = "rows " + ",".join(str(n) for n, _ in rows)
    for number, row in rows[1:]:
        for column in ("basic_situation", "dilemma_situation", "topic", "topic_group"):
            if row[column] != first[column]:
                raise ctx.fail(
                    f"row {number} (idx {idx})",
                    f"{column} {row[column]!r} differs from row {first_number} ({first[column]!r}) "
                    "of the same dilemma",
                )
    actions, seen = [], {}
    for number, row in rows:
        where = f"row {number}"
        if row["action_type"] in seen:
            action_type = row["action_type"]
            problem = f"second '{action_type}' action of idx {idx} (also row {seen[action_type]})"
            raise ctx.fail(where, problem)
        seen[row["action_type"]] = number
        actions.append(ctx.build(
            DilemmaAction, where,
            action_type=row["action_type"], action=row["action"],
            negative_consequence=row["negative_consequence"],
            **{c: _list(ctx, where, c, row[c]) for c in PARTY_LIST_COLUMNS},
            values=_values(ctx, where, row, taxonomy), background=_optional(row["background"]),
            model_answers=[ModelAnswer(model=m, answer=row[c]) for m, c in models.items() if row[c] != ""],
        ))
    topic = first["topic"]
    if topic != "" and not topic.lstrip("-").isdigit():
        raise ctx.fail(f"row {first_number}, column topic", f"{topic!r} is not an integer")
    return ctx.build(
        Dilemma, f"row {first_number}", id=dilemma_id(idx), provenance=ctx.provenance(rows_key, [taxonomy]),
        source_idx=idx, basic_situation=first["basic_situation"],
        dilemma_situation=first["dilemma_situation"], topic=int(topic) if topic else None,
        topic_group=_optional(first["topic_group"]), actions=actions,
    )
