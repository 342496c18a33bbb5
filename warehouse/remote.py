"""Publishing on an object store, which has neither rename nor lock.

1. The number: `NAME/_claims/vN` is created exclusively (S3 `If-None-Match: *`; `storage.create_exclusive`);
   a publisher that loses the race tries N+1. Claims are never removed, so a number is never handed out twice,
   even when its publisher was killed before finishing.
2. The files: data parts and the dataset card are written into `NAME/vN/`, each in one PUT.
3. The manifest, last, in one PUT: from that moment the version exists for every reader (`versions.py` lists
   only `vN/` folders holding a manifest). A publisher killed before it leaves an invisible folder.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from valuecorpus.schemas import storage
from valuecorpus.schemas.layout import (
    DataHome,
    FileEntry,
    RunLayout,
    RunManifest,
    VersionManifest,
    originals_path,
    utc_now,
)
from valuecorpus.warehouse.card import render_card
from valuecorpus.warehouse.lineage import build_lineage, collect_sources
from valuecorpus.warehouse.value_labels import companion_kind, write_value_labels
from valuecorpus.warehouse.versions import CARD, MANIFEST, VERSION_DIR_RE, data_path, version_info

CLAIMS = "_claims"


def _claimed_numbers(dataset_dir: Any) -> list[int]:
    numbers = []
    for folder in (dataset_dir, dataset_dir / CLAIMS):
        if folder.is_dir():
            numbers += [int(m.group(1)) for p in folder.iterdir() if (m := VERSION_DIR_RE.match(p.name))]
    return numbers


def claim_number(dataset_dir: Any, owner: str) -> int:
    """The next version number, claimed atomically: two publishers never get the same one."""
    number = max(_claimed_numbers(dataset_dir), default=0) + 1
    while not storage.create_exclusive(dataset_dir / CLAIMS / f"v{number}",
                                       json.dumps({"owner": owner, "at": utc_now()}).encode()):
        number += 1
    return number


def _entry(path: Any, rel: str, data: bytes, rows: int | None = None) -> FileEntry:
    return FileEntry(path=rel, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), rows=rows)


def _put_value_labels(home: DataHome, final: Any, kind: str, parts: list[Any], files: list[FileEntry]) -> None:
    """The flat value-label companion (`value_labels.py`), derived from the parts just written and uploaded
    beside them (DuckDB writes a local file; the store gets it in one PUT)."""
    rel = data_path(companion_kind(kind))
    with tempfile.TemporaryDirectory(prefix="valuecorpus-labels-") as scratch:
        out = Path(scratch) / "part.parquet"
        rows = write_value_labels(kind, parts, out, filesystem=home.root.fs)
        if rows is None:
            return
        data = out.read_bytes()
    storage.write_bytes(final / rel, data)
    files.append(_entry(final / rel, rel, data, rows))


def publish_remote(home: DataHome, layout: RunLayout, run_manifest: RunManifest, dataset: str, kinds: list[str],
                   checked: Mapping[str, tuple[str, int, list[int]]], validation_result: dict[str, Any] | None,
                   step: Callable[[str], None]) -> VersionManifest:
    import os
    import secrets
    import socket

    from valuecorpus.warehouse.publishing import _content_sha, toolkit_version

    dataset_dir = home.dataset_dir(dataset)
    step("temp-created")
    number = claim_number(dataset_dir, f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}")
    step("locked")
    final = dataset_dir / f"v{number}"
    files = []
    for kind in kinds:
        for part, (source, rows) in enumerate(zip(layout.table_files(f"records/{kind}"), checked[kind][2],
                                                  strict=True)):
            rel = data_path(kind, part)
            with source.open("rb") as fh:
                data = fh.read()
            storage.write_bytes(final / rel, data)
            files.append(_entry(final / rel, rel, data, rows))
        _put_value_labels(home, final, kind, [final / f.path for f in files if f.path.startswith(f"data/{kind}/")],
                          files)
    for kind in layout.original_kinds():  # a curated run's originals (pre-edit records) travel with the data
        rel = originals_path(kind)
        with layout.originals(kind).open("rb") as fh:
            data = fh.read()
        storage.write_bytes(final / rel, data)
        files.append(_entry(final / rel, rel, data, pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows))
    step("data-copied")
    lineage, taxonomy_versions = build_lineage(home, layout, run_manifest)
    sources = collect_sources(run_manifest, [p for k in kinds for p in layout.table_files(f"records/{k}")])
    step("lineage-built")
    previous = None
    if number > 1:
        try:
            previous = version_info(home, dataset, number - 1)
        except Exception:  # the previous number's publisher never finished: nothing to compare with
            previous = None
    content_sha = _content_sha(files)
    manifest = VersionManifest(
        dataset=dataset, version=number, kinds=kinds,
        schema_fingerprint={k: checked[k][0] for k in kinds}, row_counts={k: checked[k][1] for k in kinds},
        files=list(files), lineage=lineage, taxonomy_versions=taxonomy_versions, validation=validation_result,
        annotation=run_manifest.annotation, toolkit_version=toolkit_version(), content_sha256=content_sha,
        sources=sources,
        same_content_as=previous.version if previous and getattr(
            previous.manifest, "content_sha256", None) == content_sha else None,
    )
    schemas = {}
    for k in kinds:
        with (final / data_path(k)).open("rb") as fh:
            schemas[k] = pq.read_schema(fh)
    card = render_card(manifest, schemas).encode("utf-8")
    storage.write_bytes(final / CARD, card)
    manifest.files.append(_entry(final / CARD, CARD, card))
    step("card-written")
    data = json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False, indent=2, sort_keys=True, default=str)
    storage.write_bytes(final / MANIFEST, data.encode("utf-8"))  # the version exists from here on
    step("manifest-written")
    step("renamed")
    step("done")
    return manifest
