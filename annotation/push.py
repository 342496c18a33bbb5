"""Push a staged run's samples to Label Studio as tasks: one project per (kind, batch), idempotent by sample id.

Before importing, the project's existing tasks are listed and every sample already there is skipped, so pushing
again adds nothing and a push killed half-way, rerun, leaves each sample exactly once (each chunk is one import
request: the server commits it whole or not at all). The run's own labels go along as predictions.

Overlap: Label Studio Community has no per-annotator task distribution, so `overlap` K is recorded twice: as the
project's "annotations per task" (`maximum_annotations`, which keeps a task in every annotator's queue until K
annotations exist) and as `required_annotations` in each task's data, which `curate status` counts against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from valuecorpus.annotation import configs, projects
from valuecorpus.annotation.tasks import CURATABLE, spec, task_data
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import RunLayout

BATCH_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


@dataclass
class KindPush:
    kind: str
    project_id: int
    project_created: bool
    records: int
    already_present: int
    added: int
    chunks: int
    predictions: int


@dataclass
class PushReport:
    run_id: str
    batch: str
    overlap: int
    kinds: list[KindPush] = field(default_factory=list)


def existing_sample_ids(client: Any, project_id: int) -> dict[str, list[int]]:
    """sample id → task ids already in a project (several ids = a duplicate made outside the toolkit)."""
    out: dict[str, list[int]] = {}
    for task in client.tasks.list(project=project_id, page_size=500):
        sid = (task.data or {}).get("sample_id")
        if sid is not None:
            out.setdefault(str(sid), []).append(int(task.id))
    return out


def _label_prediction(kind: str, rec: dict[str, Any]) -> list[dict[str, Any]]:
    s = spec(kind)
    to_name = s.fields[0].key
    result: list[dict[str, Any]] = []
    if s.labels is not None and s.taxonomy is not None:
        parent = s.label_parent(rec) if s.label_parent else None
        paths = [configs.label_path(s.taxonomy, v, s.label_groups, parent) for v in s.labels(rec)]
        paths = [p for p in paths if p]  # a label outside the taxonomy is not offered, so not pre-selected
        if paths:
            result.append({"from_name": "value_labels", "to_name": to_name, "type": "taxonomy",
                           "value": {"taxonomy": paths}})
    for name, getter in s.choices.items():
        value = getter(rec)
        if value:
            result.append({"from_name": name, "to_name": to_name, "type": "choices", "value": {"choices": [value]}})
    return result


def push(client: Any, run: RunLayout, batch: str = "main", overlap: int = 1, kinds: list[str] | None = None,
         chunk_size: int = 200, on_chunk: Callable[[str, int, int], None] | None = None,
         role: str = projects.REVIEW, only: dict[str, set[str]] | None = None,
         extra: dict[str, dict[str, Any]] | None = None) -> PushReport:
    """Push the run's curated kinds (or `kinds`) as one project per kind for `batch`. `role` adjudication with
    `only` (kind -> sample ids) sends just those samples to the adjudication project; `extra` (sample id ->
    task data) adds what an adjudicator sees beside the sample."""
    import re


    if not re.match(BATCH_RE, batch):
        raise ValueCorpusError(f"invalid batch name '{batch}' (letters, digits, '.', '_', '-'; up to 32)")
    if overlap < 1:
        raise ValueCorpusError(f"--overlap must be at least 1 (got {overlap})")
    run.read_manifest()  # an incomplete run is an error before anything reaches the server
    present = run.kinds()
    if kinds:
        for k in kinds:
            spec(k)
            if k not in present:
                raise ValueCorpusError(f"run '{run.run_id}' has no {k} records ({run.records(k)} missing)")
        chosen = kinds
    else:
        chosen = [k for k in present if k in CURATABLE]
    if not chosen:
        raise ValueCorpusError(
            f"run '{run.run_id}' has no records of a curated kind (has: {', '.join(present) or 'none'})"
        )
    report = PushReport(run.run_id, batch, overlap)
    refs = projects.load(run)
    for kind in chosen:
        records = run.read_records(f"records/{kind}")
        if only is not None:
            records = [r for r in records if r.id in only.get(kind, set())]
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueCorpusError(f"{run.records(kind)}: sample id '{dup}' appears more than once")
        xml, tax_ref = configs.render(kind, role, projects.marker(run.run_id, kind, batch, role))
        ref, created = projects.find_or_create(client, run, refs, kind, batch, role, xml, tax_ref, overlap,
                                               configs.instructions(kind, role))
        existing = existing_sample_ids(client, ref.project_id)
        todo = [r for r in records if r.id not in existing]
        n_chunks = n_pred = 0
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            payload = []
            for r in chunk:
                rec = r.model_dump(mode="json")
                item: dict[str, Any] = {"data": {**task_data(r, kind, run.run_id, batch, overlap),
                                                 **(extra or {}).get(r.id, {})}}
                result = _label_prediction(kind, rec)
                if result:
                    model = r.provenance.generator_model or f"{r.provenance.origin}:{r.provenance.source_dataset or ''}"
                    item["predictions"] = [{"model_version": model[:200], "result": result}]
                    n_pred += 1
                payload.append(item)
            client.projects.import_tasks(ref.project_id, request=payload, return_task_ids=True)
            n_chunks += 1
            if on_chunk is not None:
                on_chunk(kind, start + len(chunk), len(todo))
        # the ledger (pushed sample -> task) lets pull report tasks deleted in the UI
        projects.update_ledger(run, ref.key, existing_sample_ids(client, ref.project_id) if todo else existing)
        report.kinds.append(KindPush(kind, ref.project_id, created, len(records), len(records) - len(todo),
                                     len(todo), n_chunks, n_pred))
    return report


def reviews_text(kind: str, decisions: list[dict[str, Any]]) -> str:
    """The reviewers' decisions on one sample as plain text for the adjudicator: per pseudonymous reviewer the
    verdict, rating, comment, each proposed edit in full, and the values chosen."""
    import json

    labels = {f.key: f.key.replace("_", " ") for f in spec(kind).editable}
    blocks = []
    for d in sorted(decisions, key=lambda d: d["annotation_id"]):
        lines = [f"{d['annotator']}: {d['verdict'] or 'no verdict'}, rating "
                 f"{d['rating'] if d['rating'] is not None else '–'}"]
        if d.get("comment"):
            lines.append(f"  comment: {d['comment']}")
        for key, text in sorted(json.loads(d.get("edits") or "{}").items()):
            lines.append(f"  proposed {labels.get(key, key)}: {text}")
        if d.get("labels"):
            lines.append(f"  values: {', '.join(d['labels'])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "no review annotations"


def adjudicate(client: Any, run: RunLayout, resolutions: list[dict[str, Any]],
               decisions: list[dict[str, Any]] | None = None) -> list[PushReport]:
    """Send every sample that needs adjudication to its (kind, batch) adjudication project (idempotent), with
    the reviewers' decisions shown beside it."""
    from valuecorpus.annotation.configs import REVIEWS_KEY

    groups: dict[tuple[str, str], set[str]] = {}
    for r in resolutions:
        if r["status"] == "needs_adjudication":
            groups.setdefault((r["kind"], r["batch"]), set()).add(r["sample_id"])
    reviews: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in decisions or []:
        if d["role"] == projects.REVIEW:
            reviews.setdefault((d["kind"], d["sample_id"]), []).append(d)
    return [push(client, run, batch=batch, overlap=1, kinds=[kind], role=projects.ADJUDICATION, only={kind: ids},
                 extra={sid: {REVIEWS_KEY: reviews_text(kind, reviews.get((kind, sid), []))} for sid in ids})
            for (kind, batch), ids in sorted(groups.items())]
