"""Stage an import as a run: `records/<kind>.parquet` per kind, then `manifest.json`, built in a hidden
temp directory next to `runs/` and renamed into place, so a failure or a kill leaves the whole run or none."""

from __future__ import annotations

import os
import secrets
import shutil

from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.importers.base import ImportResult
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest, SourceFile, sha256_file


def stage_import(
    result: ImportResult, home: DataHome, importer: str, run_id: str | None = None, toolkit_version: str = ""
) -> RunLayout:
    if not any(result.records.values()):
        raise ValueCorpusError(f"no records to stage: the {importer} files read held none")
    explicit = run_id is not None
    layout = home.run(run_id or home.new_run_id(f"import-{importer}"))
    if layout.path.exists():
        raise ValueCorpusError(f"run '{layout.run_id}' already exists at {layout.path}")
    home.runs_dir.mkdir(parents=True, exist_ok=True)
    # hidden (DataHome.list_runs skips dot-directories) and unique to this process; mkdir honours the umask
    tmp = home.runs_dir / f".{layout.run_id}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        staged = RunLayout(tmp)
        counts = {k: write_records(staged.records(k), rows) for k, rows in sorted(result.records.items())}
        manifest = RunManifest(
            run_id=layout.run_id, origin="import", kinds=sorted(counts), counts=counts,
            source_files=[
                SourceFile(path=str(p.resolve()), sha256=sha256_file(p)) for p in result.source_files
            ],
            taxonomy_versions=dict(sorted(result.taxonomy_versions.items())), toolkit_version=toolkit_version,
            importer=importer, source_dataset=result.source_dataset,
            skipped_files=[{"path": str(p.resolve()), "reason": why} for p, why in result.skipped],
        )
        staged.write_manifest(manifest)
        while True:
            try:
                # rename() refuses a non-empty target: two imports never merge into one run directory
                os.rename(tmp, layout.path)
                break
            except OSError as err:
                if not layout.path.exists():
                    raise ValueCorpusError(f"cannot stage run at {layout.path}: {err.strerror}") from None
                if explicit:
                    raise ValueCorpusError(f"run '{layout.run_id}' already exists at {layout.path}") from None
                layout = home.run(home.new_run_id(f"import-{importer}"))
                manifest.run_id = layout.run_id
                staged.write_manifest(manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return layout
