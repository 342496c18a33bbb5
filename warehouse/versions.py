"""Reading the warehouse: which versions exist, their manifests, their data, and whether their files verify.

A version is the directory `<home>/warehouse/NAME/vN/` holding `manifest.json`. Anything else in a dataset
directory (temp dirs of a publish in progress or killed, the lock file) is invisible to readers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from valuecorpus.schemas.errors import NotFoundError, ValueCorpusError
from valuecorpus.schemas.layout import DataHome, VersionManifest, sha256_file

VERSION_DIR_RE = re.compile(r"^v([1-9][0-9]*)$")
MANIFEST = "manifest.json"
CARD = "README.md"


def as_home(home: DataHome | str | Path) -> DataHome:
    return home if isinstance(home, DataHome) else DataHome(home)


def data_path(kind: str, part: int = 0) -> str:
    """Where a kind's Parquet part lives inside a version directory."""
    return f"data/{kind}/part-{part:04d}.parquet"


def parse_version(ref: str | int) -> int:
    """`3`, `"3"` or `"v3"` → 3."""
    text = str(ref).strip()
    match = re.fullmatch(r"v?([1-9][0-9]*)", text)
    if not match:
        raise ValueCorpusError(f"invalid version '{ref}' (expected e.g. v2 or 2)")
    return int(match.group(1))


@dataclass(frozen=True)
class VersionInfo:
    dataset: str
    version: int
    path: Path
    manifest: VersionManifest
    manifest_sha256: str


def list_datasets(home: DataHome | str | Path) -> list[str]:
    root = as_home(home).warehouse_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and version_numbers(home, p.name))


def version_numbers(home: DataHome | str | Path, dataset: str) -> list[int]:
    """Complete versions only: a `vN` directory appears by an atomic rename, its manifest already inside."""
    ddir = as_home(home).dataset_dir(dataset)
    if not ddir.is_dir():
        return []
    found = []
    for p in ddir.iterdir():
        match = VERSION_DIR_RE.match(p.name)
        if match and (p / MANIFEST).is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def latest_version(home: DataHome | str | Path, dataset: str) -> int | None:
    numbers = version_numbers(home, dataset)
    return numbers[-1] if numbers else None


def _require_dataset(home: DataHome, dataset: str) -> list[int]:
    numbers = version_numbers(home, dataset)
    if not numbers:
        known = list_datasets(home)
        hint = f" (known: {', '.join(known)})" if known else " (the warehouse is empty)"
        raise NotFoundError(f"dataset '{dataset}' not found under {home.warehouse_dir}{hint}")
    return numbers


def version_info(home: DataHome | str | Path, dataset: str, version: int | str | None = None) -> VersionInfo:
    home = as_home(home)
    numbers = _require_dataset(home, dataset)
    number = numbers[-1] if version is None else parse_version(version)
    if number not in numbers:
        raise NotFoundError(f"dataset '{dataset}' has no version v{number} (versions: "
                            f"{', '.join(f'v{n}' for n in numbers)})")
    path = home.version_dir(dataset, number)
    manifest_file = path / MANIFEST
    manifest = VersionManifest.model_validate_json(manifest_file.read_text(encoding="utf-8"))
    return VersionInfo(dataset, number, path, manifest, sha256_file(manifest_file))


def list_versions(home: DataHome | str | Path, dataset: str) -> list[VersionInfo]:
    home = as_home(home)
    return [version_info(home, dataset, n) for n in _require_dataset(home, dataset)]


def published_from(home: DataHome | str | Path, dataset: str, run_id: str, run_manifest_sha256: str
                   ) -> VersionInfo | None:
    """The version of `dataset` published from exactly this run (same id, same run manifest), if any: what makes
    a repeated `publish --once` of one run a no-op."""
    home = as_home(home)
    for number in reversed(version_numbers(home, dataset)):
        info = version_info(home, dataset, number)
        runs = info.manifest.lineage.get("runs") or [{}]
        if runs[0].get("run_id") == run_id and runs[0].get("manifest_sha256") == run_manifest_sha256:
            return info
    return None


def _kind_of(info: VersionInfo, kind: str | None) -> str:
    kinds = info.manifest.kinds
    if kind is None:
        if len(kinds) != 1:
            raise ValueCorpusError(f"dataset '{info.dataset}' v{info.version} holds several kinds "
                                   f"({', '.join(kinds)}): name one")
        return kinds[0]
    if kind not in kinds:
        raise NotFoundError(f"dataset '{info.dataset}' v{info.version} has no kind '{kind}' "
                            f"(kinds: {', '.join(kinds)})")
    return kind


def _all_files(folder: Any) -> list[str]:
    """Every file under a version folder, relative to it (any filesystem)."""
    from valuecorpus.schemas import storage

    if isinstance(folder, Path):
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    root = storage.fs_path(folder).rstrip("/")
    return sorted(f[len(root) + 1:] for f in folder.fs.find(root))


def kind_files(info: VersionInfo, kind: str) -> list[Path]:
    prefix = f"data/{kind}/"
    return [info.path / f.path for f in info.manifest.files if f.path.startswith(prefix)]


def load_version(home: DataHome | str | Path, dataset: str, version: int | str | None = None,
                 kind: str | None = None) -> pa.Table:
    """A published version of one kind as an Arrow table (latest version by default)."""
    info = version_info(home, dataset, version)
    kind = _kind_of(info, kind)
    tables = []
    for p in kind_files(info, kind):
        with p.open("rb") as fh:
            tables.append(pq.ParquetFile(fh).read())  # not read_table: it imports pandas
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def load_records(home: DataHome | str | Path, dataset: str, version: int | str | None = None,
                 kind: str | None = None) -> list[Any]:
    """A published version of one kind as record models."""
    from valuecorpus.schemas.arrow import from_table

    return from_table(load_version(home, dataset, version, kind))


def verify_version(home: DataHome | str | Path, dataset: str, version: int | str | None = None) -> list[str]:
    """Problems found when checking every file against the manifest (empty list = the version verifies)."""
    info = version_info(home, dataset, version)
    problems = []
    listed = {f.path for f in info.manifest.files}
    for entry in info.manifest.files:
        path = info.path / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        if path.stat().st_size != entry.bytes:
            problems.append(f"{entry.path}: {path.stat().st_size} bytes, manifest says {entry.bytes}")
        if sha256_file(path) != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs from the manifest")
    for rel in _all_files(info.path):
        if rel != MANIFEST and rel not in listed:
            problems.append(f"{rel}: not listed in the manifest")
    return problems
