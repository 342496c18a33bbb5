"""Staged runs for the warehouse tests, built from the real DailyDilemmas reference files (csv module)."""

from __future__ import annotations

import ast
import csv
from pathlib import Path
from typing import Any

from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.layout import DataHome, RunManifest, SourceFile, sha256_file
from valuecorpus.schemas.records import Dilemma, Provenance, stable_id
from valuecorpus.schemas.records.dilemmas import DilemmaAction, ValueAnnotation
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

THEORIES = ("wvs", "mft", "virtue", "emotion", "maslow")


def _literal_list(text: str) -> list[str | None]:
    if not text:
        return []
    value = ast.literal_eval(text.replace("nan", "None"))
    return [None if v is None else str(v) for v in value]


def load_dilemmas(reference_data: Path) -> list[Dilemma]:
    folder = reference_data / "daily_dilemmas"
    details: dict[str, list[dict[str, str]]] = {}
    with open(folder / "dilemmas_with_detail_by_action_test.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            details.setdefault(row["idx"], []).append(row)
    out = []
    with open(folder / "dilemma.csv", encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh)):
            extra = details.get(row["idx"], [])
            actions = [
                DilemmaAction(action_type=d["action_type"], action=d["action"],
                              negative_consequence=d["negative_consequence"],
                              values_direct=_literal_list(d["values_direct"]),
                              values_indirect=_literal_list(d["values_indirect"]))
                for d in extra
            ]
            out.append(Dilemma(
                id=stable_id("daily_dilemmas", row["idx"]), source_idx=int(row["idx"]),
                basic_situation=row["basic_situation"], dilemma_situation=row["dilemma_situation"],
                topic=int(extra[0]["topic"]) if extra else None,
                topic_group=extra[0]["topic_group"] if extra else None,
                actions=actions,
                provenance=Provenance(origin="import", source_dataset="daily_dilemmas",
                                      source_file="daily_dilemmas/dilemma.csv", source_key=str(n)),
            ))
    return out


def with_value_labels(dilemmas: list[Dilemma], per_action: int = 3) -> list[Dilemma]:
    """The dilemmas with `per_action` values on every action, taken in turn from the `dailydilemmas_values`
    taxonomy with its own theory labels (the reference sample annotates only a few of its actions)."""
    nodes = load_taxonomy("dailydilemmas_values").nodes_at(None)
    out, k = [], 0
    for d in dilemmas:
        actions = []
        for a in d.actions:
            picked = [nodes[(k + i) % len(nodes)] for i in range(per_action)]
            k += per_action
            actions.append(a.model_copy(update={"values": [
                ValueAnnotation(name=n.name, type="direct", **{t: n.labels.get(t) for t in THEORIES})
                for n in picked]}))
        out.append(d.model_copy(update={"actions": actions}))
    return out


def stage_run(home: Path, run_id: str, records: dict[str, list[Any]], origin: str = "import",
              source_files: list[Path] = (), **manifest: Any) -> Path:
    """Write a run directory the way pipelines do: records first, manifest last."""
    layout = DataHome(home).run(run_id)
    counts = {kind: write_records(layout.records(kind), recs, model=type(recs[0]) if recs else None)
              for kind, recs in records.items()}
    layout.write_manifest(RunManifest(
        run_id=run_id, origin=origin, kinds=sorted(records), counts=counts,
        source_files=[SourceFile(path=p.name, sha256=sha256_file(p)) for p in source_files],
        taxonomy_versions=manifest.pop("taxonomy_versions", {"dailydilemmas_values": "1.0"}),
        toolkit_version="0.1.0", **manifest,
    ))
    return layout.path


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under a directory with its bytes, to prove a version was not touched."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
