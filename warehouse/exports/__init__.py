"""Exports of a published version for the libraries that train and evaluate models, one small module per family:
`training` (dpo, sft), `dilemmas` (dilemma-choice, clash), `cvc` (cvc-abc), `agents` (avb-choice, avb-bundle),
`outcomes` (outcome-pairs). Each writes JSONL or Parquet, deterministically: the same version and format give
the same bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.layout import sha256_file as _sha256
from valuecorpus.warehouse.exports import agents, cvc, dilemmas, outcomes, training
from valuecorpus.warehouse.exports.base import ExportFormat, ExportInput, file_type, write_rows
from valuecorpus.warehouse.versions import as_home, version_info

FORMATS: dict[str, ExportFormat] = {
    f.name: f for module in (training, dilemmas, cvc, agents, outcomes) for f in module.FORMATS
}


@dataclass
class ExportResult:
    format: str
    path: Path
    file_type: str
    rows: int
    sha256: str
    dataset: str
    version: int
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)


def export_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueCorpusError(f"unknown export format '{name}' (known: {', '.join(FORMATS)})") from None


def export(home: DataHome | str | Path, dataset: str, version: int | str | None, fmt: str,
           out: str | Path) -> ExportResult:
    """Write `fmt` rows of a version (latest by default) to `out` (.jsonl or .parquet)."""
    spec = export_format(fmt)
    out = Path(out)
    kind = file_type(out)
    home = as_home(home)
    info = version_info(home, dataset, version)
    if spec.needs not in info.manifest.kinds:
        raise ValueCorpusError(f"dataset '{dataset}' v{info.version} has no {spec.needs} records, which the "
                               f"{fmt} export reads (kinds: {', '.join(info.manifest.kinds)})")
    source = ExportInput(info, home)
    rows = list(spec.build(source))
    if not rows:
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(source.skipped.items())) or "no rows"
        raise ValueCorpusError(f"the {fmt} export of {dataset} v{info.version} has no rows ({why})")
    meta: dict[str, Any] = {"dataset": dataset, "version": info.version, "format": fmt,
                            "content_sha256": (info.manifest.model_extra or {}).get("content_sha256"),
                            "manifest_sha256": info.manifest_sha256}
    write_rows(rows, spec.schema, out, meta)
    return ExportResult(fmt, out, kind, len(rows), _sha256(out), dataset, info.version,
                        dict(sorted(source.skipped.items())), dict(sorted(source.notes.items())))


__all__ = ["FORMATS", "ExportFormat", "ExportResult", "export", "export_format"]
