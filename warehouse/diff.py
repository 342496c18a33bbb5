"""What changed between two versions of a dataset: ids added, removed, changed, and per-column change counts.

Rows are matched by `id`; nested columns (structs, lists) are compared by value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "added": len(self.added), "removed": len(self.removed),
                "changed": len(self.changed), "unchanged": self.unchanged,
                "column_changes": self.column_changes}


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
