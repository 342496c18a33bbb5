"""The dataset card (`README.md` of a version) in the Hugging Face card format: YAML front matter (licences,
languages, size category, task categories, one `configs` entry per record kind so `datasets.load_dataset` of the
version directory loads each kind), then the sections rendered from `templates/card.md.j2` with the manifest's
facts. What the card says per kind (task categories, limitations) is data: `templates/card_kinds.json`."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecorpus.schemas.layout import VersionManifest
from valuecorpus.warehouse.lineage import lineage_runs

TEMPLATES = Path(__file__).parent / "templates"
CARD_TEMPLATE = "card.md.j2"
KINDS_FILE = TEMPLATES / "card_kinds.json"

# Licence ids the Hugging Face hub knows, for the sources' licences we ship (templates/sources.json); any other
# stated licence becomes `other` in the front matter and is named in full in the provenance table.
HUB_LICENCES = frozenset({"apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                          "cc0-1.0", "odc-by", "odbl", "bsd-3-clause", "gpl-3.0", "unknown"})
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


@cache
def kind_facts() -> dict[str, dict[str, Any]]:
    data = json.loads(KINDS_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _facts(kind: str) -> dict[str, Any]:
    return kind_facts().get(kind, {"what": kind, "task_categories": ["other"], "language": ["en"],
                                   "limitations": []})


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


def size_category(rows: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if rows < bound:
            return name
    return "n>1B"


def hub_licence(licence: str) -> str:
    key = str(licence).strip().lower()
    if key in ("", "unknown", "none declared"):
        return "unknown"
    return key if key in HUB_LICENCES else "other"


def record_languages(files: dict[str, list[Path]]) -> dict[str, list[str]]:
    """Languages per kind: the distinct values of a `language` column (only that column is read), plus the
    other language of a kind whose rows carry a `translation`; the kind's default otherwise."""
    out: dict[str, list[str]] = {}
    for kind, paths in files.items():
        found: set[str] = set()
        for path in paths:
            names = pq.read_schema(path).names
            if "language" in names:
                found.update(v for v in pc.unique(pq.ParquetFile(path).read(columns=["language"])
                                                  .column("language")).to_pylist() if v)
            if "translation" in names and found:
                column = pq.ParquetFile(path).read(columns=["translation"]).column("translation")
                if column.null_count < len(column):
                    found.update({"zh": "en", "en": "zh"}.get(lang, lang) for lang in list(found))
        out[kind] = sorted(found) or list(_facts(kind)["language"])
    return out


def _creators(manifest: VersionManifest, curated: bool) -> list[str]:
    """Hub creator tags: expert-generated for curated labels, machine-generated for generated runs, found for
    imported corpora."""
    origins = {r.get("origin") for _, r in lineage_runs(manifest.lineage)}
    out = ["expert-generated"] if curated else []
    if "generate" in origins:
        out.append("machine-generated")
    if "import" in origins:
        out.append("found")
    return out or ["found"]


def front_matter(manifest: VersionManifest, languages: dict[str, list[str]]) -> dict[str, Any]:
    """The card's YAML metadata. `configs` names each kind's Parquet files, so `load_dataset(<version dir>,
    "<kind>")` loads that kind and the first kind is the default."""
    extra = manifest.model_extra or {}
    sources = extra.get("sources", [])
    total = sum(manifest.row_counts.values())
    licences = sorted({hub_licence(s.get("licence", "unknown")) for s in sources}) or ["unknown"]
    tasks = sorted({t for k in manifest.kinds for t in _facts(k)["task_categories"]})
    meta: dict[str, Any] = {
        "pretty_name": f"{manifest.dataset} v{manifest.version}",
        "license": licences,
        "language": sorted({lang for k in manifest.kinds for lang in languages.get(k, _facts(k)["language"])}),
        "size_categories": [size_category(total)],
        "task_categories": tasks,
        "tags": ["valuecorpus", "value-alignment", *manifest.kinds],
        "source_datasets": [f"extended|{s['name']}" for s in sources] or ["original"],
        "language_creators": _creators(manifest, curated=False),
        "annotations_creators": _creators(manifest, curated=manifest.annotation is not None),
        "configs": [
            {"config_name": kind, "data_files": [{"split": "train", "path": f"data/{kind}/*.parquet"}],
             **({"default": True} if i == 0 else {})}
            for i, kind in enumerate(manifest.kinds)
        ],
        "valuecorpus": {
            "dataset": manifest.dataset, "version": manifest.version, "created_at": manifest.created_at,
            "content_sha256": extra.get("content_sha256"), "toolkit_version": manifest.toolkit_version,
            "row_counts": dict(manifest.row_counts),
            "sources": [{"name": s["name"], "license": s.get("licence", "unknown"),
                         **({"url": s["url"]} if s.get("url") else {})} for s in sources],
        },
    }
    if "other" in licences:
        meta["license_name"] = "see-sources"  # each source's licence is under `valuecorpus.sources`
    return meta


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested statistics as `a.b: value` rows."""
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


def generation_totals(runs: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Models, prompt versions, tokens and cost over every run of the lineage (each run counted once)."""
    tokens: Counter[str] = Counter()
    cost = 0.0
    models: set[str] = set()
    prompts: dict[str, str] = {}
    for _, run in runs:
        tokens.update({k: int(v) for k, v in (run.get("tokens") or {}).items() if isinstance(v, int | float)})
        cost += float(run.get("cost_usd") or 0.0)
        models.update(run.get("models") or [])
        prompts.update(run.get("prompt_versions") or {})
    return {"models": sorted(models), "prompt_versions": dict(sorted(prompts.items())),
            "tokens": dict(sorted(tokens.items())), "cost_usd": round(cost, 6),
            "generated": any(r.get("origin") == "generate" for _, r in runs)}


def _cell(value: Any) -> str:
    """A JSON value as one Markdown table cell."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def validation_view(validation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The gate's result for the card: its expectations as rows when it has the suite shape
    (`suite`, `suite_version`, `expectations`, `data_docs`), otherwise every figure flattened."""
    if validation is None:
        return None
    success = validation.get("success", validation.get("passed"))
    expectations = validation.get("expectations")
    if isinstance(expectations, list):
        rows = [{"name": e.get("name", ""), "kind": e.get("kind") or "", "column": e.get("column") or "",
                 "success": e.get("success"), "observed": _cell(e.get("observed")),
                 "threshold": _cell(e.get("threshold")),
                 "unexpected_ids": ", ".join(f"`{i}`" for i in (e.get("unexpected_ids") or [])[:5])}
                for e in expectations if isinstance(e, dict)]
        failed = sum(1 for r in rows if r["success"] is False)
        return {"success": success, "suite": validation.get("suite"), "suite_version": validation.get("suite_version"),
                "data_docs": validation.get("data_docs"), "expectations": rows, "failed": failed, "flat": []}
    flat = _flatten({k: v for k, v in validation.items() if k != "success"})
    return {"success": success, "expectations": None, "flat": flat}


def limitations(manifest: VersionManifest, totals: dict[str, Any]) -> list[str]:
    out = []
    if totals["generated"]:
        models = ", ".join(totals["models"]) or "an unnamed model"
        out.append(f"Text was written by {models}; it carries that model's knowledge, biases and errors. Checks "
                   "bound its format, not its truth.")
    for source in (manifest.model_extra or {}).get("sources", []):
        if hub_licence(source.get("licence", "unknown")) == "unknown":
            note = f" ({source['note']})" if source.get("note") else ""
            out.append(f"{source['name']} declares no licence{note}: check before redistributing.")
        elif source.get("note"):
            out.append(f"{source['name']}: {source['note']}.")
    if manifest.annotation is None:
        out.append("No expert curation: records passed automatic checks only.")
    for kind in manifest.kinds:
        out.extend(f"{kind}: {text}" for text in _facts(kind)["limitations"])
    return out


def render_card(manifest: VersionManifest, schemas: dict[str, pa.Schema], *,
                changes: dict[str, Any] | None = None, languages: dict[str, list[str]] | None = None) -> str:
    import jinja2
    import yaml

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    languages = languages or {k: list(_facts(k)["language"]) for k in manifest.kinds}
    meta = front_matter(manifest, languages)
    columns = {kind: [(f.name, short_type(f.type)) for f in schema] for kind, schema in schemas.items()}
    extra = manifest.model_extra or {}
    annotation = manifest.annotation or {}
    agreement = _agreement_rows(annotation)
    runs = lineage_runs(manifest.lineage)
    totals = generation_totals(runs)
    return env.get_template(CARD_TEMPLATE).render(
        front_matter=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000).rstrip("\n"),
        m=manifest, columns=columns, runs=runs, sources=extra.get("sources", []),
        same_content_as=extra.get("same_content_as"), facts={k: _facts(k) for k in manifest.kinds},
        languages=languages, totals=totals, agreement=agreement,
        annotation=_flatten({k: v for k, v in annotation.items() if not (agreement and k == "agreement")}),
        validation=validation_view(manifest.validation), limitations=limitations(manifest, totals),
        changes=changes, total=sum(manifest.row_counts.values()),
    )
