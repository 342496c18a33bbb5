"""Stage the curated run: accepted and edited records, with their annotation provenance, ready for the gate.

Layout of a curated run (origin "curate", parent_runs = [source run]):
- `records/<kind>.parquet` — accepted records as they were, and `needs_edit` records with the curators' edits
  applied (same id); each record's `provenance.annotations` lists every decision (pseudonymised annotator,
  verdict, rating, comment; adjudicators as `adj:<pseudonym>`).
- `curation/originals/<kind>.parquet` — the original of every edited record, keyed by the same id.
- `curation/decisions.parquet`, `curation/resolutions.parquet` — copied from the source run.
- `manifest.json` — `annotation` holds the counts and the agreement figures (publish copies them on).
The run is staged through `DataHome.staging` (built aside, renamed into place): never half-written.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from typing import Any

from valuecorpus.annotation import projects
from valuecorpus.annotation.resolve import agreement
from valuecorpus.annotation.tasks import from_text, get_path, set_path, spec
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest


def apply_edits(record: Any, edits: dict[str, str]) -> Any:
    """A copy of `record` with the edited fields replaced; validated against its model."""
    from pydantic import ValidationError

    kind = type(record).kind
    paths = {f.key: f.path for f in spec(kind).editable}
    data = record.model_dump(mode="json")
    for key, text in edits.items():
        if key not in paths:
            raise ValueCorpusError(f"sample '{record.id}': edit of '{key}', which is not an editable {kind} field")
        set_path(data, paths[key], from_text(get_path(data, paths[key]), text))
    try:
        return type(record).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueCorpusError(f"sample '{record.id}': the edited record is invalid at '{where}': {first['msg']}"
                               ) from None


def finalize(home: DataHome, source: RunLayout, resolutions: list[dict[str, Any]], decisions: list[dict[str, Any]],
             run_id: str | None = None) -> tuple[RunLayout, dict[str, Any]]:
    from valuecorpus.schemas.arrow import write_records
    from valuecorpus.schemas.records.base import AnnotatorDecision

    if not resolutions:
        raise ValueCorpusError(f"run '{source.run_id}' has no curation results: run `valuecorpus curate pull` first")
    parent = source.read_manifest()
    run_id = run_id or home.new_run_id(f"{source.run_id[:80]}-curated")
    target = home.run(run_id)
    home.clean_stale_partials()
    with home.staging(run_id) as staging:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for r in resolutions:
            by_kind.setdefault(r["kind"], []).append(r)
        status_counts = Counter(r["status"] for r in resolutions)
        outcome = Counter()
        counts: dict[str, int] = {}
        for kind, rows in sorted(by_kind.items()):
            records = {r.id: r for r in source.read_records(f"records/{kind}")}
            kept, originals = [], []
            for res in rows:
                rec = records.get(res["sample_id"])
                if rec is None or res["status"] not in ("resolved", "adjudicated"):
                    outcome["missing" if rec is None else "unresolved"] += 1
                    continue
                trail = [AnnotatorDecision(**d) for d in json.loads(res["decisions"])]
                verdict, edits = res["verdict"], json.loads(res["edits"] or "{}")
                if verdict == "reject":
                    outcome["rejected"] += 1
                    continue
                if verdict == "needs_edit" and not edits:
                    outcome["needs_edit_without_edit"] += 1  # nothing to apply: not published unedited
                    continue
                new = apply_edits(rec, edits) if verdict == "needs_edit" else rec
                if verdict == "needs_edit":
                    originals.append(rec)
                    outcome["edited"] += 1
                else:
                    outcome["accepted"] += 1
                prov = new.provenance.model_copy(update={"annotations": [*new.provenance.annotations, *trail]})
                kept.append(new.model_copy(update={"provenance": prov}))
            if kept:
                counts[kind] = write_records(staging.records(kind), kept)
            if originals:
                write_records(staging.path / "curation" / "originals" / f"{kind}.parquet", originals)
        for name in ("decisions.parquet", "resolutions.parquet", "projects.json"):
            src = projects.curation_dir(source) / name
            if src.exists():
                (staging.path / "curation").mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staging.path / "curation" / name)
        annotators = {d["annotator"] for d in decisions}
        stats = {
            "source_run": source.run_id,
            "batches": sorted({f"{r['kind']}/{r['batch']}" for r in resolutions}),
            "samples": len(resolutions), "annotations": len(decisions), "annotators": len(annotators),
            "status": dict(sorted(status_counts.items())),
            "accepted": outcome["accepted"], "edited": outcome["edited"], "rejected": outcome["rejected"],
            "needs_edit_without_edit": outcome["needs_edit_without_edit"], "unresolved": outcome["unresolved"],
            "missing_records": outcome["missing"],
            "adjudicated": sum(1 for r in resolutions if r["adjudicated"]),
            "label_taxonomies": sorted({r.taxonomy for r in projects.load(source).values() if r.taxonomy}),
            "originals": "curation/originals/<kind>.parquet",
            "agreement": agreement(decisions),
        }
        manifest = RunManifest(
            run_id=run_id, origin="curate", kinds=sorted(counts), counts=counts, parent_runs=[source.run_id],
            models=parent.models, prompt_versions=parent.prompt_versions, taxonomy_versions=parent.taxonomy_versions,
            recipe=parent.recipe, annotation=stats, toolkit_version=parent.toolkit_version,
        )
        staging.write_manifest(manifest)
    return target, stats
