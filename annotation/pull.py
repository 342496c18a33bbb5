"""Pull annotations back: every submitted annotation becomes one row of `<run>/curation/decisions.parquet`.

Annotators are pseudonymised (a salted hash of the Label Studio user id; the salt lives under the data home, so
pseudonyms are stable across pulls but cannot be reversed from the published data). The table is rebuilt from
the server each time and written only when it changed, so pulling twice changes nothing. Tasks or projects
deleted in Label Studio are reported, not fatal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuecorpus.annotation import projects
from valuecorpus.annotation.tasks import spec
from valuecorpus.schemas.layout import RunLayout

VERDICTS = ("accept", "reject", "needs_edit")


def decisions_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("sample_id", pa.string()), ("kind", pa.string()), ("batch", pa.string()), ("role", pa.string()),
        ("project_id", pa.int64()), ("task_id", pa.int64()), ("annotation_id", pa.int64()),
        ("annotator", pa.string()), ("verdict", pa.string()),
        ("edits", pa.string()),  # JSON object: field key -> edited text (only fields that changed)
        ("labels", pa.list_(pa.string())), ("choices", pa.string()),  # JSON object: other choice fields
        ("rating", pa.int64()), ("comment", pa.string()), ("lead_time", pa.float64()),
        ("created_at", pa.string()), ("updated_at", pa.string()),
    ])


def salt_for(annotation_dir: Path) -> str:
    """The per-home salt for annotator pseudonyms (created once, mode 0600)."""
    path = annotation_dir / "pseudonym.salt"
    if not path.exists():
        annotation_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(16))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # never replaces a salt another process created first
        tmp.unlink()
    return path.read_text().strip()


def pseudonym(user_id: Any, salt: str) -> str:
    return "ann-" + hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()[:12]


def parse_result(kind: str, result: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """verdict, edits, labels, other choices, rating, comment from one annotation's result list."""
    out: dict[str, Any] = {"verdict": None, "edits": {}, "labels": [], "choices": {}, "rating": None,
                           "comment": None}
    s = spec(kind)
    editable = {f.key for f in s.editable}
    for item in result or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if "taxonomy" in value and name == "value_labels":
            # a Taxonomy result is a list of paths (aliases from the root): the value is the last step, under
            # its record-part group where the picker is grouped (a dilemma's `to_do/trust`)
            paths = [p for p in value["taxonomy"] if p]
            out["labels"] = sorted({f"{p[0]}/{p[-1]}" if s.label_groups else str(p[-1]) for p in paths
                                    if not s.label_groups or len(p) >= 2})
        elif "choices" in value:
            chosen = [str(c) for c in value["choices"]]
            if name == "verdict":
                out["verdict"] = chosen[0] if chosen and chosen[0] in VERDICTS else None
            elif name == "value_labels":
                out["labels"] = sorted(set(chosen))
            else:
                out["choices"][name] = chosen[0] if len(chosen) == 1 else chosen
        elif "rating" in value and name == "quality":
            out["rating"] = int(value["rating"])
        elif "text" in value:
            text = value["text"]
            text = "\n".join(text) if isinstance(text, list) else str(text)
            if name == "comment":
                out["comment"] = text.strip() or None
            elif name and name.startswith("edit_") and name[5:] in editable:
                # the box starts with the current text: unchanged (or emptied) is no edit
                key = name[5:]
                if text.strip() and _lines(text) != _lines(str(data.get(key, ""))):
                    out["edits"][key] = text.strip()
    return out


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


@dataclass
class PullReport:
    run_id: str
    tasks: int = 0
    annotations: int = 0
    cancelled: int = 0
    changed: bool = False
    missing_tasks: dict[str, list[str]] = field(default_factory=dict)  # project key -> sample ids deleted in LS
    missing_projects: list[str] = field(default_factory=list)
    path: str = ""


def pull(client: Any, run: RunLayout, salt: str) -> PullReport:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from label_studio_sdk.core.api_error import ApiError

    report = PullReport(run.run_id)
    pushed = projects.ledger(run)
    rows: list[dict[str, Any]] = []
    for ref in sorted(projects.load(run).values(), key=lambda r: r.key):
        try:
            client.projects.get(id=ref.project_id)
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            report.missing_projects.append(f"{ref.key} (project {ref.project_id})")
            continue
        seen: set[str] = set()
        for task in client.tasks.list(project=ref.project_id, fields="all", page_size=200):
            data = task.data or {}
            sid = data.get("sample_id")
            if sid is None:
                continue
            seen.add(str(sid))
            report.tasks += 1
            for ann in task.annotations or []:
                ann = ann if isinstance(ann, dict) else ann.model_dump()
                if ann.get("was_cancelled"):
                    report.cancelled += 1
                    continue
                parsed = parse_result(ref.kind, ann.get("result") or [], data)
                report.annotations += 1
                rows.append({
                    "sample_id": str(sid), "kind": ref.kind, "batch": ref.batch, "role": ref.role,
                    "project_id": ref.project_id, "task_id": int(task.id), "annotation_id": int(ann["id"]),
                    "annotator": pseudonym(ann.get("completed_by"), salt), "verdict": parsed["verdict"],
                    "edits": json.dumps(parsed["edits"], ensure_ascii=False, sort_keys=True),
                    "labels": parsed["labels"],
                    "choices": json.dumps(parsed["choices"], ensure_ascii=False, sort_keys=True),
                    "rating": parsed["rating"], "comment": parsed["comment"],
                    "lead_time": float(ann["lead_time"]) if ann.get("lead_time") is not None else None,
                    "created_at": str(ann.get("created_at") or ""), "updated_at": str(ann.get("updated_at") or ""),
                })
        gone = sorted(set(pushed.get(ref.key, {})) - seen)
        if gone:
            report.missing_tasks[ref.key] = gone
    rows.sort(key=lambda r: (r["kind"], r["sample_id"], r["role"], r["annotation_id"]))
    table = pa.Table.from_pylist(rows, schema=decisions_schema())
    path = projects.curation_dir(run) / "decisions.parquet"
    report.path = str(path)
    if path.exists() and pq.read_table(path).equals(table):
        return report
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    report.changed = True
    return report


def read_decisions(run: RunLayout) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    path = projects.curation_dir(run) / "decisions.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []

