"""Publishing a staged run as an immutable, numbered version of a dataset.

Everything is written into a temp dir inside the dataset dir and renamed into place as `vN` in one step, so a
crash or `kill -9` at any moment leaves either the complete version or none. On an object store (no rename,
no lock) the number is claimed by creating `_claims/vN` exclusively (a conditional PUT that fails when the
object exists), the files are written into `vN/`, and the manifest is written last: readers only see versions
that have one, and a killed publisher's number stays claimed, never reused (`warehouse/remote.py`).
On a local disk the number is claimed under an exclusive `flock` on the dataset's lock file (released by the
kernel if the holder dies), and the rename refuses to replace an existing version: two publishers never get
the same number and never overwrite.
Publishing the same content twice makes a new version; its manifest says which version it repeats.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from valuecorpus.schemas.arrow import arrow_schema, schema_fingerprint
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import (
    DataHome,
    FileEntry,
    RunLayout,
    RunManifest,
    VersionManifest,
    originals_path,
    pid_alive,
    sha256_file,
    write_json_atomic,
)
from valuecorpus.schemas.records import record_type
from valuecorpus.warehouse.card import record_languages, render_card
from valuecorpus.warehouse.changelog import changelog
from valuecorpus.warehouse.lineage import build_lineage, collect_sources
from valuecorpus.warehouse.validation.gate import ValidationFailed
from valuecorpus.warehouse.value_labels import companion_kind, is_companion, write_value_labels
from valuecorpus.warehouse.versions import (
    CARD,
    MANIFEST,
    VERSION_DIR_RE,
    as_home,
    data_path,
    latest_version,
    published_from,
    version_info,
)

# Named moments of a publish, in order; `on_step` is called at each (the crash tests stop the process there).
PUBLISH_STEPS = ("validated", "temp-created", "data-copied", "lineage-built", "locked", "card-written",
                 "manifest-written", "renamed", "done")
TMP_PREFIX = ".tmp-"
LOCK_NAME = ".publish.lock"
STALE_FOREIGN_TMP_S = 24 * 3600

StepHook = Callable[[str], None] | None


def toolkit_version() -> str:
    try:
        return metadata.version("valuecorpus")
    except metadata.PackageNotFoundError:
        return "unknown"


def run_gate(home: DataHome, layout: RunLayout, dataset: str) -> dict[str, Any]:
    """Validate the run against the dataset's suite (its file is created with the defaults on first use) and
    refuse a failure, naming the failed expectations and their offending ids. There is no way around it."""
    from valuecorpus.warehouse.validation import failure_message, run_target, validate

    result = validate(home, run_target(layout), dataset, create_suite=True)
    if not result["success"]:
        raise ValidationFailed(failure_message(f"run '{layout.run_id}'", result) + "; nothing published")
    return result


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_entry(root: Path, rel: str, rows: int | None = None) -> FileEntry:
    path = root / rel
    return FileEntry(path=rel, sha256=sha256_file(path), bytes=path.stat().st_size, rows=rows)


def _check_records(run: RunLayout, manifest: RunManifest, kind: str) -> tuple[str, int, list[int]]:
    """(schema fingerprint, rows, rows per file) of a run's records files (one file or the shards a pipeline
    wrote); refuses one that does not fit its record model."""
    expected = arrow_schema(record_type(kind))
    per_file = []
    for path in run.table_files(f"records/{kind}"):
        try:
            with path.open("rb") as fh:
                meta = pq.ParquetFile(fh)
                actual, file_rows = meta.schema_arrow, meta.metadata.num_rows
        except Exception as err:
            raise ValueCorpusError(f"{path}: not a readable Parquet file ({err.__class__.__name__})") from None
        # Type equality, not the fingerprint text: Parquet names list items `element` where the model says `item`.
        if not actual.remove_metadata().equals(expected.remove_metadata()):
            raise ValueCorpusError(f"{path}: schema does not match the '{kind}' record model "
                                   f"(columns: {', '.join(actual.names)})")
        per_file.append(file_rows)
    rows = sum(per_file)
    path = run.table_path(f"records/{kind}")
    fingerprint = schema_fingerprint(expected)
    if kind in manifest.counts and manifest.counts[kind] != rows:
        raise ValueCorpusError(f"{path}: {rows} rows but the run manifest says {manifest.counts[kind]}")
    return fingerprint, rows, per_file


def clean_stale_temps(dataset_dir: Path) -> list[Path]:
    """Remove temp dirs left by publishers that died (same host: pid gone; other hosts: older than a day)."""
    removed = []
    host = socket.gethostname()
    for path in dataset_dir.glob(f"{TMP_PREFIX}*"):
        parts = path.name[len(TMP_PREFIX):].rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        owner_host, pid = parts[0], int(parts[1])
        # Same host: the owner is gone. Another host (shared storage): its pid means nothing here, so wait a day.
        same_host = owner_host == host
        if (same_host and not pid_alive(pid)) or (
                not same_host and time.time() - path.stat().st_mtime > STALE_FOREIGN_TMP_S):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def _dataset_lock(dataset_dir: Path) -> Iterator[None]:
    with open(dataset_dir / LOCK_NAME, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _next_number(dataset_dir: Path) -> int:
    # Any vN directory counts, complete or not, so a number is never reused.
    numbers = [int(m.group(1)) for p in dataset_dir.iterdir() if (m := VERSION_DIR_RE.match(p.name))]
    return max(numbers, default=0) + 1


def _content_sha(files: list[FileEntry]) -> str:
    import hashlib

    # the records only: a derived companion adds nothing to what the version holds
    lines = sorted(f"{f.path} {f.sha256}" for f in files if f.path.startswith("data/") and not is_companion(f.path))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def publish(home: DataHome | str | Path, run: RunLayout | str | Path, dataset: str, *,
            on_step: StepHook = None, once: bool = False) -> VersionManifest:
    """Publish a staged run (id, path or layout) as the next version of `dataset`; returns its manifest.

    The gate comes first: the run is validated against the dataset's expectation suite, and a failed suite
    publishes nothing and raises `ValidationFailed` (exit code 5) listing the failed expectations and up to five
    offending ids each. The result is stored in the manifest under `validation`.
    `once`: when a version was already published from this very run, return its manifest and publish nothing
    (checked again under the dataset lock, so two retries racing still make one version)."""
    home = as_home(home)
    step = on_step or (lambda _name: None)
    layout = run if isinstance(run, RunLayout) else home.resolve_run(str(run))
    run_manifest = layout.read_manifest()
    run_sha = sha256_file(layout.manifest_path)
    if once and (done := published_from(home, dataset, layout.run_id, run_sha)) is not None:
        return done.manifest
    kinds = layout.kinds()
    if not kinds:
        raise ValueCorpusError(f"run '{layout.run_id}' has no records to publish "
                               f"(nothing in {layout.records_dir})")
    home.dataset_dir(dataset)  # a bad name is refused before any work
    checked = {kind: _check_records(layout, run_manifest, kind) for kind in kinds}
    validation_result = run_gate(home, layout, dataset)
    step("validated")
    if home.remote:
        from valuecorpus.warehouse.remote import publish_remote

        return publish_remote(home, layout, run_manifest, dataset, kinds, checked, validation_result, step)

    dataset_dir = home.dataset_dir(dataset)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(dataset_dir)
    tmp = dataset_dir / f"{TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        step("temp-created")
        files = []
        for kind in kinds:
            for part, (source, rows) in enumerate(zip(layout.table_files(f"records/{kind}"), checked[kind][2],
                                                      strict=True)):
                rel = data_path(kind, part)
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, tmp / rel)
                _fsync(tmp / rel)
                files.append(_file_entry(tmp, rel, rows=rows))
            # the flat value-label companion, derived from the parts just copied (a GROUP BY needs no unnest)
            rel = data_path(companion_kind(kind))
            parts = [tmp / f.path for f in files if f.path.startswith(f"data/{kind}/")]
            if (label_rows := write_value_labels(kind, parts, tmp / rel)) is not None:
                _fsync(tmp / rel)
                files.append(_file_entry(tmp, rel, rows=label_rows))
        for kind in layout.original_kinds():  # a curated run's originals (pre-edit records) travel with the data
            rel = originals_path(kind)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(layout.originals(kind), tmp / rel)
            _fsync(tmp / rel)
            files.append(_file_entry(tmp, rel, rows=pq.ParquetFile(tmp / rel).metadata.num_rows))
        step("data-copied")

        lineage, taxonomy_versions = build_lineage(home, layout, run_manifest)
        sources = collect_sources(run_manifest, [p for k in kinds for p in layout.table_files(f"records/{k}")])
        new_files = {k: [tmp / f.path for f in files if f.path.startswith(f"data/{k}/")] for k in kinds}
        languages = record_languages(new_files)
        # The card's changelog is computed before the lock (it reads both versions) and again inside it only
        # when another publisher got a version in meanwhile.
        base = latest_version(home, dataset)
        changes = changelog(home, dataset, base, new_files)
        step("lineage-built")

        with _dataset_lock(dataset_dir):
            step("locked")
            if once and (done := published_from(home, dataset, layout.run_id, run_sha)) is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                return done.manifest
            number = _next_number(dataset_dir)
            previous = version_info(home, dataset, number - 1) if number > 1 and (
                dataset_dir / f"v{number - 1}" / MANIFEST).is_file() else None
            content_sha = _content_sha(files)
            manifest = VersionManifest(
                dataset=dataset, version=number, kinds=kinds,
                schema_fingerprint={k: checked[k][0] for k in kinds},
                row_counts={k: checked[k][1] for k in kinds},
                files=list(files), lineage=lineage, taxonomy_versions=taxonomy_versions,
                validation=validation_result, annotation=run_manifest.annotation,
                toolkit_version=toolkit_version(),
                content_sha256=content_sha, sources=sources,
                same_content_as=previous.version if previous and getattr(
                    previous.manifest, "content_sha256", None) == content_sha else None,
            )
            schemas = {k: pq.read_schema(tmp / data_path(k)) for k in kinds}
            if (prior := latest_version(home, dataset)) != base:
                changes = changelog(home, dataset, prior, new_files)
            card = render_card(manifest, schemas, changes=changes, languages=languages)
            (tmp / CARD).write_text(card, encoding="utf-8")
            _fsync(tmp / CARD)
            manifest.files.append(_file_entry(tmp, CARD))
            step("card-written")
            write_json_atomic(tmp / MANIFEST, manifest.model_dump(mode="json"))
            for rel in [*(f.path for f in manifest.files), MANIFEST]:
                (tmp / rel).chmod(0o444)  # immutable by intent: a version's files are never rewritten
            for path in [tmp / "data", *(tmp / "data").iterdir(),
                         *([tmp / "curation", tmp / "curation" / "originals"] if (tmp / "curation").is_dir() else []),
                         tmp]:
                _fsync(path)
            step("manifest-written")
            final = dataset_dir / f"v{number}"
            if final.exists():  # only possible if someone made it by hand: never replace it
                raise ValueCorpusError(f"{final} already exists; refusing to overwrite a version")
            os.rename(tmp, final)
            _fsync(dataset_dir)
            step("renamed")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    step("done")
    return manifest
