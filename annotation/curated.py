"""Stage the curated run: accepted and edited records, with their annotation provenance, ready for the gate.

Layout of a curated run (origin "curate", parent_runs = [source run]):
- `records/<kind>.parquet` — accepted records as they were, and `needs_edit` records with the curators' edits
  applied (same id); curated value labels written into the record where the kind has a place for them
  (`KindSpec.write_labels`) and a majority or the adjudicator chose them. Each record's
  `provenance.annotations` lists every decision (pseudonymised annotator, role, verdict, rating, comment, edited
  fields, labels; adjudicators as `adj:<pseudonym>`) and `provenance.edits` every applied change with the rule
  that chose it (adjudicator / majority / first).
- `curation/originals/<kind>.parquet` — the original of every edited or relabelled record, keyed by the same id
  (`RunLayout.originals`; publishing carries it into the version).
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
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest, originals_path

# What the manifest's (and the dataset card's) annotation section says about its figures.
EDIT_RULES = (
    "Per field: the adjudicator's edit; else the same text proposed by more than half (at least two) of the "
    "reviewers who voted needs_edit and edited it (majority); else the earliest proposal (first). Value labels: "
    "each label chosen by more than half of the reviewers, or the adjudicator's; written into the record only "
    "when more than half of the reviewers submitted labels or the adjudicator did. provenance.edits names the "
    "rule and whose proposal was applied; curation/originals/<kind>.parquet holds the record before."
)
AGREEMENT_STATISTICS = {
    "verdict / kind-specific choices": "Cohen's κ (exactly two annotators), Fleiss' κ (items with the most common "
                                       "number of ratings), Krippendorff's α nominal",
    "rating": "Krippendorff's α ordinal (Cohen's / Fleiss' κ as for categories)",
    "value_labels [set, MASI]": "Krippendorff's α over the label sets with MASI distance (Passonneau 2006): "
                                "partial overlap is partial agreement",
    "value_labels [set, Jaccard]": "Krippendorff's α over the label sets with Jaccard distance",
    "value_labels [per value] V": "for value V, chosen or not by each annotator: Cohen's κ, Fleiss' κ, "
                                  "Krippendorff's α nominal",
}


def _relabel(kind: str, record: Any, res: dict[str, Any]) -> list[str] | None:
    """The curated labels to write into the record, or None when they are not to be written (no majority or
    adjudicator choice, the kind has no place for them, or they equal the record's own)."""
    s = spec(kind)
    if not res.get("labels_rule") or s.write_labels is None or s.labels is None or not res.get("labels"):
        return None
    labels = list(res["labels"])
    return None if set(labels) == set(s.labels(record.model_dump(mode="json"))) else labels


def apply_edits(record: Any, edits: dict[str, str], labels: list[str] | None = None) -> Any:
    """A copy of `record` with the edited fields replaced (and, given `labels`, the curated value labels
    written in); validated against its model."""
    from pydantic import ValidationError

    kind = type(record).kind
    paths = {f.key: f.path for f in spec(kind).editable}
    data = record.model_dump(mode="json")
    for key, text in edits.items():
        if key not in paths:
            raise ValueCorpusError(f"sample '{record.id}': edit of '{key}', which is not an editable {kind} field")
        set_path(data, paths[key], from_text(get_path(data, paths[key]), text))
    write = spec(kind).write_labels
    if labels is not None and write is not None:
        write(data, labels)
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
    from valuecorpus.schemas.records.base import AnnotatorDecision, AppliedEdit

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
        originals_written: list[str] = []
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
                edits = edits if verdict == "needs_edit" else {}
                applied = [AppliedEdit(field=k, **src) for k, src in
                           sorted(json.loads(res.get("edit_sources") or "{}").items()) if k in edits]
                labels = _relabel(kind, rec, res)
                if labels is not None:
                    adj = next((d.annotator for d in reversed(trail) if d.role == "adjudication"), None)
                    applied.append(AppliedEdit(
                        field="value_labels", rule=res["labels_rule"],
                        annotator=adj if res["labels_rule"] == "adjudicator" else None,
                        proposals=sum(1 for d in trail if d.role == "review" and d.labels)))
                    outcome["relabelled"] += 1
                new = apply_edits(rec, edits, labels) if edits or labels is not None else rec
                if new is not rec:
                    originals.append(rec)
                outcome["edited" if edits else "accepted"] += 1
                prov = new.provenance.model_copy(update={"annotations": [*new.provenance.annotations, *trail],
                                                         "edits": [*new.provenance.edits, *applied]})
                kept.append(new.model_copy(update={"provenance": prov}))
            if kept:
                counts[kind] = write_records(staging.records(kind), kept)
            if originals:
                originals_written.append(kind)
            if originals:
                write_records(staging.originals(kind), originals)
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
            "relabelled": outcome["relabelled"],
            "needs_edit_without_edit": outcome["needs_edit_without_edit"], "unresolved": outcome["unresolved"],
            "missing_records": outcome["missing"],
            "adjudicated": sum(1 for r in resolutions if r["adjudicated"]),
            "label_taxonomies": sorted({r.taxonomy for r in projects.load(source).values() if r.taxonomy}),
            "originals": {k: originals_path(k) for k in originals_written},
            "edit_rules": EDIT_RULES,
            "agreement": agreement(decisions),
            "agreement_statistics": AGREEMENT_STATISTICS,
        }
        manifest = RunManifest(
            run_id=run_id, origin="curate", kinds=sorted(counts), counts=counts, parent_runs=[source.run_id],
            models=parent.models, prompt_versions=parent.prompt_versions, taxonomy_versions=parent.taxonomy_versions,
            recipe=parent.recipe, annotation=stats, toolkit_version=parent.toolkit_version,
        )
        staging.write_manifest(manifest)
    return target, stats
