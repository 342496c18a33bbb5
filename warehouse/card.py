"""The dataset card (`README.md` of a version), rendered from a template file with the manifest's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from valuecorpus.schemas.layout import VersionManifest

TEMPLATES = Path(__file__).parent / "templates"
CARD_TEMPLATE = "card.md.j2"


def short_type(dtype: pa.DataType) -> str:
    """A readable type: `list<struct{action, values, …}>` rather than Arrow's full nesting."""
    if pa.types.is_struct(dtype):
        names = [dtype.field(i).name for i in range(dtype.num_fields)]
        shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
        return f"struct{{{shown}}}"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"list<{short_type(dtype.value_type)}>"
    if pa.types.is_map(dtype):
        return f"map<{short_type(dtype.key_type)}, {short_type(dtype.item_type)}>"
    return str(dtype)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested annotation statistics as `a.b: value` rows."""
    if isinstance(value, dict):
        rows = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(value, float):
        value = round(value, 4)
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return [(prefix, value)]


def _agreement_rows(annotation: dict[str, Any]) -> list[dict[str, Any]]:
    """Curation's `agreement: {kind/batch: {field: {krippendorff_alpha, fleiss_kappa, …}}}` as table rows; []
    when the figures have another shape (they are then shown flattened)."""
    agreement = annotation.get("agreement")
    if not isinstance(agreement, dict):
        return []
    rows = []
    for batch, fields in agreement.items():
        if not isinstance(fields, dict) or not all(isinstance(st, dict) for st in fields.values()):
            return []
        for name, stats in fields.items():
            rows.append({"batch": batch, "field": name, **{
                k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}})
    return rows


def _runs(lineage: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Runs of the lineage tree, depth-first, with their depth."""
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(run: dict[str, Any], depth: int) -> None:
        out.append((depth, run))
        for parent in run.get("parent_runs", []):
            walk(parent, depth + 1)

    for run in lineage.get("runs", []):
        walk(run, 0)
    return out


def render_card(manifest: VersionManifest, schemas: dict[str, pa.Schema]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    columns = {kind: [(f.name, short_type(f.type)) for f in schema] for kind, schema in schemas.items()}
    extra = manifest.model_extra or {}
    annotation = manifest.annotation or {}
    agreement = _agreement_rows(annotation)
    return env.get_template(CARD_TEMPLATE).render(
        m=manifest, columns=columns, runs=_runs(manifest.lineage), sources=extra.get("sources", []),
        same_content_as=extra.get("same_content_as"),
        agreement=agreement,
        annotation=_flatten({k: v for k, v in annotation.items() if not (agreement and k == "agreement")}),
        validation=_flatten({k: v for k, v in manifest.validation.items() if k != "success"})
        if manifest.validation else [],
        total=sum(manifest.row_counts.values()),
    )
