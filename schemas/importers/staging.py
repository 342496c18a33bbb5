"""Stage an import as a run: `records/<kind>.parquet` per kind, then `manifest.json`, through
`DataHome.staging` (built aside and renamed into place: a failure or a kill leaves the whole run or none)."""

from __future__ import annotations

from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.importers.base import ImportResult
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest, SourceFile, sha256_file


def stage_import(
    result: ImportResult, home: DataHome, importer: str, run_id: str | None = None, toolkit_version: str = ""
) -> RunLayout:
    if not any(result.records.values()):
        raise ValueCorpusError(f"no records to stage: the {importer} files read held none")
    layout = home.run(run_id or home.new_run_id(f"import-{importer}"))
    home.clean_stale_partials()
    with home.staging(layout.run_id) as staged:
        counts = {k: write_records(staged.records(k), rows) for k, rows in sorted(result.records.items())}
        staged.write_manifest(RunManifest(
            run_id=layout.run_id, origin="import", kinds=sorted(counts), counts=counts,
            source_files=[
                SourceFile(path=str(p.resolve()), sha256=sha256_file(p)) for p in result.source_files
            ],
            taxonomy_versions=dict(sorted(result.taxonomy_versions.items())), toolkit_version=toolkit_version,
            importer=importer, source_dataset=result.source_dataset,
            skipped_files=[{"path": str(p.resolve()), "reason": why} for p, why in result.skipped],
            **({"import_warnings": list(result.warnings)} if result.warnings else {}),
        ))
    return layout
