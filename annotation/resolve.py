"""From decisions to one outcome per sample: majority verdict; ties and weak majorities go to adjudication,
whose decision wins.

A sample is `pending` until it has the number of review annotations asked for at push time (`--overlap`),
`needs_adjudication` when the top verdict is tied or its share is under `min_majority`, `resolved` otherwise,
and `adjudicated` once an adjudicator decided.

Edits count only under a `needs_edit` outcome. Per field, the applied edit is (rule names as recorded in each
record's `provenance.edits`): `adjudicator` — the adjudicator's edit; else `majority` — the same text proposed by
more than half (and at least two) of the reviewers who voted `needs_edit` and edited that field; else `first` —
the earliest such proposal. Value labels are those chosen by more than half of the reviewers (`majority`), or
the adjudicator's when they chose any (`adjudicator`); they are written into the record only then, and a
majority counts only when more than half of the reviewers submitted a label set at all (`labels_rule` is empty
otherwise and the record keeps its labels).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from statistics import median
from typing import Any

from valuecorpus.annotation import projects
from valuecorpus.annotation.agreement import field_agreement, set_field_agreement
from valuecorpus.annotation.pull import VERDICTS
from valuecorpus.schemas.layout import RunLayout

DEFAULT_MIN_MAJORITY = 0.6


def resolutions_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("sample_id", pa.string()), ("kind", pa.string()), ("batch", pa.string()), ("status", pa.string()),
        ("verdict", pa.string()), ("majority_share", pa.float64()), ("annotations", pa.int64()),
        ("required", pa.int64()), ("votes", pa.string()), ("edits", pa.string()), ("labels", pa.list_(pa.string())),
        ("choices", pa.string()), ("rating", pa.float64()), ("adjudicated", pa.bool_()),
        ("decisions", pa.string()),  # JSON list of AnnotatorDecision dicts, for provenance
        ("edit_sources", pa.string()),  # JSON: field -> {rule, annotator, proposals} (AppliedEdit)
        ("labels_rule", pa.string()),  # majority | adjudicator | null (labels not written back)
    ])


def _majority(values: list[Any]) -> Any:
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    if not counts:
        return None
    (top, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        return None
    return json.loads(top)


def resolve_sample(reviews: list[dict[str, Any]], adjudications: list[dict[str, Any]], required: int,
                   min_majority: float = DEFAULT_MIN_MAJORITY) -> dict[str, Any]:
    reviews = sorted((d for d in reviews if d["verdict"]), key=lambda d: d["annotation_id"])
    adjudications = sorted((d for d in adjudications if d["verdict"]), key=lambda d: d["annotation_id"])
    votes = Counter(d["verdict"] for d in reviews)
    ranked = votes.most_common()
    share = ranked[0][1] / len(reviews) if reviews else 0.0
    out: dict[str, Any] = {
        "annotations": len(reviews), "required": required, "votes": dict(sorted(votes.items())),
        "majority_share": round(share, 4), "adjudicated": False, "verdict": None,
    }
    deciding: list[dict[str, Any]]
    if adjudications:
        final = adjudications[-1]  # the latest adjudication wins
        out.update(status="adjudicated", verdict=final["verdict"], adjudicated=True)
        deciding = [final]
    elif len(reviews) < required:
        out["status"] = "pending"
        return out
    elif (len(ranked) > 1 and ranked[0][1] == ranked[1][1]) or share < min_majority:
        out["status"] = "needs_adjudication"
        return out
    else:
        out.update(status="resolved", verdict=ranked[0][0])
        deciding = []
    edits: dict[str, str] = {}
    sources: dict[str, dict[str, Any]] = {}
    if out["verdict"] == "needs_edit":
        for key, text in json.loads((deciding[0]["edits"] if deciding else None) or "{}").items():
            edits[key] = text
            sources[key] = {"rule": "adjudicator", "annotator": f"adj:{deciding[0]['annotator']}", "proposals": 1}
        proposals: dict[str, list[tuple[str, str]]] = defaultdict(list)  # field -> [(annotator, text)], oldest first
        for d in reviews:
            if d["verdict"] == "needs_edit":
                for key, text in json.loads(d["edits"] or "{}").items():
                    proposals[key].append((d["annotator"], text))
        for key, props in proposals.items():
            if key in edits:
                sources[key]["proposals"] += len(props)
                continue
            text, n = Counter(t for _, t in props).most_common(1)[0]
            if n >= 2 and n * 2 > len(props):
                who = next(a for a, t in props if t == text)
                edits[key], sources[key] = text, {"rule": "majority", "annotator": who, "proposals": len(props)}
            else:
                who, text = props[0]
                edits[key], sources[key] = text, {"rule": "first", "annotator": who, "proposals": len(props)}
    out["edits"], out["edit_sources"] = edits, sources
    if deciding and deciding[0]["labels"]:
        out["labels"], out["labels_rule"] = list(deciding[0]["labels"]), "adjudicator"
    else:
        counts = Counter(label for d in reviews for label in d["labels"] or [])
        out["labels"] = sorted(label for label, n in counts.items() if n * 2 > len(reviews))
        with_labels = sum(1 for d in reviews if d["labels"])
        out["labels_rule"] = "majority" if out["labels"] and with_labels * 2 > len(reviews) else None
    choice_sets = [json.loads(d["choices"] or "{}") for d in (deciding or reviews)]
    names = sorted({k for c in choice_sets for k in c})
    out["choices"] = {k: _majority([c[k] for c in choice_sets if k in c]) for k in names}
    ratings = [d["rating"] for d in (deciding or reviews) if d["rating"] is not None]
    out["rating"] = float(median(ratings)) if ratings else None
    return out


def _decision(d: dict[str, Any], role: str) -> dict[str, Any]:
    """One decision as the record model's AnnotatorDecision (adjudicators as `adj:<pseudonym>`)."""
    return {"annotator": f"adj:{d['annotator']}" if role == projects.ADJUDICATION else d["annotator"],
            "verdict": d["verdict"], "rating": d["rating"], "comment": d["comment"], "role": role,
            "edited_fields": sorted(json.loads(d.get("edits") or "{}")), "labels": list(d.get("labels") or [])}


def resolve(run: RunLayout, decisions: list[dict[str, Any]], min_majority: float = DEFAULT_MIN_MAJORITY
            ) -> list[dict[str, Any]]:
    """One row per pushed sample (pending ones included), written to `<run>/curation/resolutions.parquet`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    refs = projects.load(run)
    required = {(r.kind, r.batch): r.overlap for r in refs.values() if r.role == projects.REVIEW}
    grouped: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    batch_of: dict[tuple[str, str], str] = {}
    for key, tasks in projects.ledger(run).items():
        kind, batch, role = key.split(":")
        if role == projects.REVIEW:
            for sid in tasks:
                grouped[(kind, sid)]
                batch_of.setdefault((kind, sid), batch)
    for d in decisions:
        grouped[(d["kind"], d["sample_id"])][d["role"]].append(d)
        if d["role"] == projects.REVIEW:
            batch_of.setdefault((d["kind"], d["sample_id"]), d["batch"])
    rows = []
    for (kind, sid), by_role in sorted(grouped.items()):
        batch = batch_of.get((kind, sid), "")
        res = resolve_sample(by_role.get(projects.REVIEW, []), by_role.get(projects.ADJUDICATION, []),
                             required.get((kind, batch), 1), min_majority)
        trail = [_decision(d, projects.REVIEW) for d in sorted(by_role.get(projects.REVIEW, []),
                                                                key=lambda d: d["annotation_id"])]
        trail += [_decision(d, projects.ADJUDICATION) for d in sorted(by_role.get(projects.ADJUDICATION, []),
                                                                       key=lambda d: d["annotation_id"])]
        rows.append({
            "sample_id": sid, "kind": kind, "batch": batch, "status": res["status"], "verdict": res["verdict"],
            "majority_share": res["majority_share"], "annotations": res["annotations"], "required": res["required"],
            "votes": json.dumps(res["votes"], sort_keys=True), "edits": json.dumps(res.get("edits", {}),
                                                                                   ensure_ascii=False, sort_keys=True),
            "labels": res.get("labels", []), "choices": json.dumps(res.get("choices", {}), sort_keys=True),
            "rating": res.get("rating"), "adjudicated": res["adjudicated"],
            "decisions": json.dumps(trail, ensure_ascii=False, sort_keys=True),
            "edit_sources": json.dumps(res.get("edit_sources", {}), ensure_ascii=False, sort_keys=True),
            "labels_rule": res.get("labels_rule"),
        })
    table = pa.Table.from_pylist(rows, schema=resolutions_schema())
    path = projects.curation_dir(run) / "resolutions.parquet"
    if not (path.exists() and pq.read_table(path).equals(table)):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    return rows


def read_resolutions(run: RunLayout) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    path = projects.curation_dir(run) / "resolutions.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def agreement(decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per `kind/batch`, per field: the agreement statistics over review annotations."""
    by_batch: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in decisions:
        if d["role"] == projects.REVIEW:
            by_batch[f"{d['kind']}/{d['batch']}"].append(d)
    out: dict[str, dict[str, Any]] = {}
    for key, rows in sorted(by_batch.items()):
        fields: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
        labels: dict[str, dict[str, list[str]]] = defaultdict(dict)
        labelled = any(d["labels"] for d in rows)  # a kind without a value picker has no label sets
        for d in rows:
            item, who = d["sample_id"], d["annotator"]
            if d["verdict"]:
                fields["verdict"][item][who] = d["verdict"]
            if d["rating"] is not None:
                fields["rating"][item][who] = int(d["rating"])
            if labelled:
                labels[item][who] = list(d["labels"] or [])
            for name, value in json.loads(d["choices"] or "{}").items():
                fields[name][item][who] = json.dumps(value) if isinstance(value, list) else value
        stats: dict[str, Any] = {}
        for name, ratings in sorted(fields.items()):
            if name == "rating":
                stats[name] = field_agreement(ratings, "ordinal")
            elif name == "verdict":
                stats[name] = field_agreement(ratings, "nominal", VERDICTS)
            else:
                stats[name] = field_agreement(ratings, "nominal")
        if labels:
            stats.update(set_field_agreement(labels))
        out[key] = stats
    return out
