"""Where data lives under the data home, and the manifests that describe it.

The layout of a run directory and of a published version is a contract shared by pipelines (which stage runs),
annotation (which reads runs and stages curated runs) and warehouse (which publishes versions). Only this module
knows the file names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from valuecorpus.schemas import storage
from valuecorpus.schemas.errors import NotFoundError, ValueCorpusError

PARTIAL_MARK = ".partial-"  # runs/.<run_id>.partial-<pid>: a run being staged (hidden from listings)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DATASET_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with storage.as_path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def pid_alive(pid: int) -> bool:
    """Whether a process exists (used to tell a stale temp directory from one still being written)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON aside and rename into place, so readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SourceFile(BaseModel):
    path: str
    sha256: str


class RunManifest(BaseModel):
    """What a staged run is: enough to reproduce it and to trace every record back to its inputs."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    created_at: str = Field(default_factory=utc_now)
    origin: Literal["import", "generate", "curate"]
    kinds: list[str] = Field(default_factory=list, description="record kinds staged in this run")
    counts: dict[str, int] = Field(default_factory=dict, description="rows per records file")
    dead_letters: int = 0
    filtered: int = 0
    source_files: list[SourceFile] = Field(default_factory=list)
    parent_runs: list[str] = Field(default_factory=list, description="runs this one derives from (curation)")
    recipe: dict[str, Any] | None = None
    models: list[str] = Field(default_factory=list)
    prompt_versions: dict[str, str] = Field(default_factory=dict)
    taxonomy_versions: dict[str, str] = Field(default_factory=dict)
    tokens: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)
    annotation: dict[str, Any] | None = None
    toolkit_version: str = ""


# Inside a curated run and inside a published version alike: `curation/originals/<kind>.parquet`, keyed by id.
ORIGINALS_DIR = "curation/originals"


def originals_path(kind: str) -> str:
    """Where a kind's originals live, relative to a run or version directory."""
    return f"{ORIGINALS_DIR}/{kind}.parquet"


class RunLayout:
    """A run directory: `records/<kind>.parquet`, `plan.parquet`, `dead_letters.parquet`, `filtered.parquet`,
    `manifest.json` (written last: a run without it is incomplete); a curated run adds `curation/` (decisions,
    resolutions and `originals/<kind>.parquet`, which publishing carries into the version).

    A table may instead be a folder of shards (`records/<kind>/part-*.parquet`, `dead_letters/part-*.parquet`,
    ...), as a pipeline's workers write it: `table_files` lists either form, `read_table` reads either. The
    path is a local `Path` or an object-store `UPath` (see `storage`)."""

    def __init__(self, path: str | Path | Any) -> None:
        self.path = storage.as_path(path)
        self.run_id = self.path.name

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def records_dir(self) -> Path:
        return self.path / "records"

    def records(self, kind: str) -> Path:
        return self.records_dir / f"{kind}.parquet"

    @property
    def plan(self) -> Path:
        return self.path / "plan.parquet"

    @property
    def dead_letters(self) -> Path:
        return self.path / "dead_letters.parquet"

    @property
    def filtered(self) -> Path:
        return self.path / "filtered.parquet"

    @property
    def seeds(self) -> Path:
        """The seed pool the plan drew from (generated runs whose chain uses seed situations)."""
        return self.path / "seeds.parquet"

    @property
    def utilities(self) -> Path:
        """Thurstonian utilities fitted to the run's outcome comparisons (`valuecorpus utilities fit`)."""
        return self.path / "utilities.json"

    @property
    def batches(self) -> Path:
        return self.path / "batches.json"

    @property
    def originals_dir(self) -> Path:
        """A curated run's originals: the record as it was before curators edited or relabelled it."""
        return self.path / ORIGINALS_DIR

    def originals(self, kind: str) -> Path:
        return self.originals_dir / f"{kind}.parquet"

    def original_kinds(self) -> list[str]:
        return sorted(p.stem for p in self.originals_dir.glob("*.parquet")) if self.originals_dir.exists() else []

    @property
    def curation_dir(self) -> Path:
        """Curation's files: `decisions.parquet` (one row per annotation), `resolutions.parquet` (one row per
        sample: status, verdict, batch), `originals/` of edited records."""
        return self.path / "curation"

    @property
    def resolutions(self) -> Path:
        return self.curation_dir / "resolutions.parquet"

    @property
    def work_dir(self) -> Path:
        """Scratch space for a run in progress (Beam shards, partial outputs)."""
        return self.path / "_work"

    def table_path(self, table: str) -> Any:
        """`records/<kind>`, `plan`, `dead_letters` or `filtered`, without the `.parquet` suffix."""
        return self.path / table

    def table_files(self, table: str) -> list[Any]:
        """The Parquet files of a table: the single file, or the shards of its folder (sorted)."""
        single = self.path / f"{table}.parquet"
        if single.is_file():
            return [single]
        return storage.list_files(self.path / table, "part-*.parquet")

    def has_table(self, table: str) -> bool:
        return bool(self.table_files(table))

    def read_table(self, table: str) -> Any:
        """A table as one Arrow table (shards concatenated; an empty table when it has no file)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = []
        for path in self.table_files(table):
            with path.open("rb") as fh:
                parts.append(pq.ParquetFile(fh).read())
        if not parts:
            raise NotFoundError(f"run '{self.run_id}' has no table '{table}' ({self.path / table}.parquet)")
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def read_records(self, table: str) -> list[Any]:
        """A table as record models (`records/<kind>`, `dead_letters`, `filtered`)."""
        from valuecorpus.schemas.arrow import from_table

        return from_table(self.read_table(table))

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def kinds(self) -> list[str]:
        rdir = self.records_dir
        if not rdir.is_dir():
            return []
        found = {p.stem for p in storage.list_files(rdir, "*.parquet")}
        found.update(p.name for p in rdir.iterdir() if p.is_dir() and storage.list_files(p, "part-*.parquet"))
        return sorted(found)

    def read_manifest(self) -> RunManifest:
        if not self.exists():
            raise NotFoundError(f"run '{self.run_id}' not found or incomplete (no {self.manifest_path})")
        return RunManifest.model_validate_json(self.manifest_path.read_text(encoding="utf-8"))

    def write_manifest(self, manifest: RunManifest) -> None:
        if storage.is_remote(self.path):
            data = json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False, indent=2, sort_keys=True,
                              default=str)
            storage.write_bytes(self.manifest_path, data.encode("utf-8"))
        else:
            write_json_atomic(self.manifest_path, manifest.model_dump(mode="json"))


class FileEntry(BaseModel):
    path: str = Field(description="relative to the version directory")
    sha256: str
    bytes: int
    rows: int | None = None


class VersionManifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    dataset: str
    version: int
    created_at: str = Field(default_factory=utc_now)
    kinds: list[str]
    schema_fingerprint: dict[str, str] = Field(description="kind -> sha256 of its Arrow schema")
    row_counts: dict[str, int]
    files: list[FileEntry]
    lineage: dict[str, Any] = Field(default_factory=dict, description="runs and source files, with checksums")
    taxonomy_versions: dict[str, str] = Field(default_factory=dict)
    validation: dict[str, Any] | None = None
    annotation: dict[str, Any] | None = None
    toolkit_version: str = ""


class DataHome:
    """The root of everything valuecorpus writes: `runs/`, `cache/`, `warehouse/`, `annotation/`."""

    def __init__(self, root: str | Path | Any) -> None:
        self.root = storage.as_path(root)

    @property
    def remote(self) -> bool:
        """On an object store: no renames, so runs and versions appear when their manifest is written."""
        return storage.is_remote(self.root)

    @property
    def url(self) -> str:
        return storage.url_of(self.root)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def annotation_dir(self) -> Path:
        return self.root / "annotation"

    def run(self, run_id: str) -> RunLayout:
        if not RUN_ID_RE.match(run_id):
            raise ValueCorpusError(f"invalid run id '{run_id}' (letters, digits, '.', '_', '-')")
        return RunLayout(self.runs_dir / run_id)

    def resolve_run(self, ref: str) -> RunLayout:
        """A run by id, or by path to its directory."""
        path = storage.as_path(ref)
        layout = RunLayout(path) if ("/" in ref or storage.is_remote(ref)) and path.is_dir() else self.run(ref)
        if not layout.exists():
            raise NotFoundError(f"run '{ref}' not found under {self.runs_dir} (or incomplete: no manifest.json)")
        return layout

    @contextmanager
    def staging(self, run_id: str) -> Iterator[RunLayout]:
        """Stage a run atomically: the block writes into a hidden partial directory (manifest last), which is
        renamed to `runs/<run_id>` when the block succeeds and removed when it fails. A kill leaves only the
        hidden directory, which `clean_stale_partials` removes later. An existing run is never touched."""
        final = self.run(run_id)
        if self.remote:
            yield from self._staging_in_place(final)
            return
        if final.path.exists():
            raise ValueCorpusError(f"run '{run_id}' already exists at {final.path}")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        partial = RunLayout(self.runs_dir / f".{run_id}{PARTIAL_MARK}{os.getpid()}")
        shutil.rmtree(partial.path, ignore_errors=True)
        partial.path.mkdir()
        try:
            yield partial
            shutil.rmtree(partial.work_dir, ignore_errors=True)
            try:
                os.rename(partial.path, final.path)  # refuses a non-empty target: two stagings never merge
            except OSError:
                if final.path.exists():
                    raise ValueCorpusError(f"run '{run_id}' already exists at {final.path}") from None
                raise
        except BaseException:
            shutil.rmtree(partial.path, ignore_errors=True)
            raise

    def _staging_in_place(self, final: RunLayout) -> Iterator[RunLayout]:
        """On an object store the run is written where it stays, its manifest last: readers only see runs that
        have one. Leftovers of a killed attempt under the same id (no manifest) are cleared first."""
        if final.exists():
            raise ValueCorpusError(f"run '{final.run_id}' already exists at {final.path}")
        storage.remove_tree(final.path)
        try:
            yield final
            storage.remove_tree(final.work_dir)
        except BaseException:
            if not final.exists():
                storage.remove_tree(final.path)
            raise

    def clean_stale_partials(self) -> list[Path]:
        """Remove partial run directories whose process is gone (a killed import, generation or curation).
        On an object store there are none: an incomplete run is one without a manifest, invisible to readers."""
        removed: list[Path] = []
        if self.remote or not self.runs_dir.exists():
            return removed
        for path in self.runs_dir.iterdir():
            pid = path.name.rsplit(PARTIAL_MARK, 1)[-1] if PARTIAL_MARK in path.name else ""
            if path.name.startswith(".") and pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def new_run_id(self, prefix: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        base = f"{prefix}-{stamp}"
        run_id, n = base, 1
        while (self.runs_dir / run_id / "manifest.json").exists() or (
                not self.remote and (self.runs_dir / run_id).exists()):
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    def list_runs(self) -> list[RunLayout]:
        if not self.runs_dir.exists():
            return []
        runs = (RunLayout(p) for p in self.runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        # on an object store a run without its manifest is still being written (or was killed): not a run yet
        return sorted((r for r in runs if not self.remote or r.exists()), key=lambda r: r.run_id)

    def dataset_dir(self, name: str) -> Any:
        if not DATASET_RE.match(name):
            raise ValueCorpusError(f"invalid dataset name '{name}' (lowercase letters, digits, '_')")
        return self.warehouse_dir / name

    def version_dir(self, name: str, version: int) -> Any:
        return self.dataset_dir(name) / f"v{version}"
