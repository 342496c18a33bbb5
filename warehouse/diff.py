"""What changed between two versions of a dataset: ids added, removed, changed, per-column change counts, and
the changes a release note names: value labels (the fields `schemas.constraints.VALUE_LABELS` declares) added to
or removed from records, and curation verdicts that moved (`accept → reject`).

Rows are matched by `id`; nested columns (structs, lists) are compared by value. `release_changes` returns the
whole as plain JSON for a dataset card's changelog."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuecorpus.schemas.constraints import labels_of, parse_path
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse.versions import as_home, load_version, version_info


@dataclass
class KindDiff:
    kind: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    column_changes: dict[str, int] = field(default_factory=dict)
    # label path -> {"records": n, "added": {label: n}, "removed": {label: n}} over records in both versions
    label_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # "old → new" curation verdict of records in both versions ("none" = not curated) -> records
    verdict_changes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "added": len(self.added), "removed": len(self.removed),
                "changed": len(self.changed), "unchanged": self.unchanged,
                "column_changes": self.column_changes, "label_changes": self.label_changes,
                "verdict_changes": self.verdict_changes}


@dataclass
class VersionDiff:
    dataset: str
    old: int
    new: int
    kinds: list[KindDiff]

    def to_dict(self, ids: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset, "old": self.old, "new": self.new, "kinds": []}
        for k in self.kinds:
            entry = k.summary()
            if ids:
                entry.update(added_ids=k.added, removed_ids=k.removed, changed_ids=k.changed)
            out["kinds"].append(entry)
        return out


def _rows_by_id(rows: list[dict[str, Any]], where: str) -> dict[str, dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        rid = row.get("id")
        if rid in by_id:
            raise ValueCorpusError(f"{where}: duplicate id '{rid}', rows cannot be matched")
        by_id[rid] = row
    return by_id


def values_at(row: Any, path: str) -> list[Any]:
    """The values a field path (`actions[].values[].name`) names in one row (a dict)."""
    current = [row]
    for step in parse_path(path):
        nxt: list[Any] = []
        for item in current:
            value = item.get(step.name) if isinstance(item, dict) else None
            if step.into_list:
                nxt.extend(value or [])
            else:
                nxt.append(value)
        current = nxt
    return [v for v in current if v is not None]


def verdict_of(row: dict[str, Any]) -> str:
    """A record's curation verdict: the adjudicator's when there is one, else the majority (ties: 'tie')."""
    decisions = (row.get("provenance") or {}).get("annotations") or []
    adjudicated = [d["verdict"] for d in decisions if str(d.get("annotator", "")).startswith("adj:")]
    if adjudicated:
        return adjudicated[-1]
    counts = Counter(d["verdict"] for d in decisions if d.get("verdict"))
    if not counts:
        return "none"
    top = counts.most_common(2)
    return "tie" if len(top) == 2 and top[0][1] == top[1][1] else top[0][0]


def _label_and_verdict_changes(kind: str, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]],
                               common: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    labels: dict[str, dict[str, Any]] = {}
    for label in labels_of(kind):
        added: Counter[str] = Counter()
        removed: Counter[str] = Counter()
        records = 0
        for rid in common:
            a = Counter(map(str, values_at(old[rid], label.path)))
            b = Counter(map(str, values_at(new[rid], label.path)))
            if a != b:
                records += 1
                added.update(b - a)
                removed.update(a - b)
        if records:
            labels[label.path] = {"records": records, "added": dict(sorted(added.items())),
                                  "removed": dict(sorted(removed.items()))}
    verdicts: Counter[str] = Counter()
    for rid in common:
        a, b = verdict_of(old[rid]), verdict_of(new[rid])
        if a != b:
            verdicts[f"{a} → {b}"] += 1
    return labels, dict(sorted(verdicts.items()))


def diff_rows(kind: str, old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]],
              ignore: frozenset[str] = frozenset(), where: tuple[str, str] = ("old", "new")) -> KindDiff:
    old, new = _rows_by_id(old_rows, where[0]), _rows_by_id(new_rows, where[1])
    result = KindDiff(kind)
    result.added = sorted(new.keys() - old.keys())
    result.removed = sorted(old.keys() - new.keys())
    columns = sorted({c for r in (*old_rows[:1], *new_rows[:1]) for c in r} - {"id"} - ignore)
    counts = dict.fromkeys(columns, 0)
    for rid in sorted(old.keys() & new.keys()):
        a, b = old[rid], new[rid]
        differing = [c for c in columns if a.get(c) != b.get(c)]  # Python equality compares nesting by value
        for c in differing:
            counts[c] += 1
        if differing:
            result.changed.append(rid)
        else:
            result.unchanged += 1
    result.column_changes = {c: n for c, n in counts.items() if n}
    result.label_changes, result.verdict_changes = _label_and_verdict_changes(
        kind, old, new, sorted(old.keys() & new.keys()))
    return result


def diff_versions(home: DataHome | str | Path, dataset: str, old: int | str, new: int | str,
                  kind: str | None = None, ignore: frozenset[str] = frozenset()) -> VersionDiff:
    home = as_home(home)
    a, b = version_info(home, dataset, old), version_info(home, dataset, new)
    kinds = sorted(set(a.manifest.kinds) | set(b.manifest.kinds)) if kind is None else [kind]
    out = []
    for k in kinds:
        rows_a = load_version(home, dataset, a.version, k).to_pylist() if k in a.manifest.kinds else []
        rows_b = load_version(home, dataset, b.version, k).to_pylist() if k in b.manifest.kinds else []
        if k not in a.manifest.kinds and k not in b.manifest.kinds:
            raise ValueCorpusError(f"dataset '{dataset}' has no kind '{k}' in v{a.version} or v{b.version}")
        where = (f"{dataset} v{a.version}", f"{dataset} v{b.version}")
        out.append(diff_rows(k, rows_a, rows_b, ignore, where))
    return VersionDiff(dataset, a.version, b.version, out)


def release_changes(home: DataHome | str | Path, dataset: str, new: int | str | None = None,
                    old: int | str | None = None) -> dict[str, Any]:
    """What a version changed since the one before it (or since `old`), as plain JSON for a changelog:
    `{"dataset", "old", "new", "kinds": [{kind, added, removed, changed, unchanged, column_changes,
    label_changes, verdict_changes}]}`. For a first version `old` is None and every record counts as added."""
    home = as_home(home)
    info = version_info(home, dataset, new)
    if old is None and info.version == 1:
        return {"dataset": dataset, "old": None, "new": 1, "kinds": [
            {"kind": k, "added": n, "removed": 0, "changed": 0, "unchanged": 0, "column_changes": {},
             "label_changes": {}, "verdict_changes": {}} for k, n in sorted(info.manifest.row_counts.items())]}
    previous = info.version - 1 if old is None else old
    return diff_versions(home, dataset, previous, info.version).to_dict(ids=False)
