"""Lineage of a version: the run it was published from, the runs that one derives from (curation), their
source files with checksums, and the licences of imported corpora."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest, sha256_file

SOURCES_FILE = Path(__file__).parent / "templates" / "sources.json"


def _run_entry(home: DataHome, layout: RunLayout, manifest: RunManifest, seen: set[str],
               taxonomies: dict[str, str]) -> dict[str, Any]:
    seen.add(layout.run_id)
    taxonomies.update(manifest.taxonomy_versions)
    entry: dict[str, Any] = {
        "run_id": layout.run_id,
        "manifest_sha256": sha256_file(layout.manifest_path),
        "origin": manifest.origin,
        "created_at": manifest.created_at,
        "toolkit_version": manifest.toolkit_version,
        "counts": manifest.counts,
        "dead_letters": manifest.dead_letters,
        "filtered": manifest.filtered,
        "models": manifest.models,
        "prompt_versions": manifest.prompt_versions,
        "tokens": manifest.tokens,
        "cost_usd": manifest.cost_usd,
        "source_files": [f.model_dump() for f in manifest.source_files],
        "parent_runs": [],
    }
    if manifest.recipe is not None:
        entry["recipe"] = manifest.recipe.get("name", manifest.recipe) if isinstance(manifest.recipe, dict) \
            else manifest.recipe
    for parent_id in manifest.parent_runs:
        if parent_id in seen:
            continue
        try:
            parent = home.run(parent_id)
            parent_manifest = parent.read_manifest()
        except ValueCorpusError:
            # A parent run deleted since curation: say so rather than refuse to publish curated work.
            entry["parent_runs"].append({"run_id": parent_id, "missing": True})
            continue
        entry["parent_runs"].append(_run_entry(home, parent, parent_manifest, seen, taxonomies))
    return entry


def build_lineage(home: DataHome, layout: RunLayout, manifest: RunManifest) -> tuple[dict[str, Any],
                                                                                      dict[str, str]]:
    """(lineage, merged taxonomy versions) of a run and, recursively, of its parent runs."""
    taxonomies: dict[str, str] = {}
    run = _run_entry(home, layout, manifest, set(), taxonomies)
    # The published run's own taxonomy versions win over its parents'.
    taxonomies.update(manifest.taxonomy_versions)
    return {"runs": [run]}, dict(sorted(taxonomies.items()))


def lineage_runs(lineage: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The runs of a version's lineage tree (the runs it was published from and those they derive from),
    depth-first, with their depth."""
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(run: dict[str, Any], depth: int) -> None:
        out.append((depth, run))
        for parent in run.get("parent_runs", []):
            walk(parent, depth + 1)

    for run in lineage.get("runs", []):
        walk(run, 0)
    return out


@cache
def _known_sources() -> dict[str, dict[str, str]]:
    data = json.loads(SOURCES_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def collect_sources(manifest: RunManifest, record_files: list[Path]) -> list[dict[str, Any]]:
    """The source datasets named in the records' provenance, with their licence when known. A run manifest may
    also state them (`sources: [{name, licence, url}]` or `licence`)."""
    names: set[str] = set()
    for path in record_files:
        with path.open("rb") as fh:
            column = pq.ParquetFile(fh).read(columns=["provenance"]).column("provenance")
        values = pc.struct_field(column, "source_dataset").unique().to_pylist()
        names.update(v for v in values if v)
    extra = manifest.model_extra or {}
    stated = {s["name"]: dict(s) for s in extra.get("sources", []) if isinstance(s, dict) and s.get("name")}
    out = []
    for name in sorted(names | set(stated)):
        known = _known_sources().get(_key(name), {})
        entry = {"name": name, "licence": known.get("licence", "unknown")}
        entry.update({k: v for k, v in known.items() if k in ("url", "note")})
        entry.update(stated.get(name, {}))
        out.append(entry)
    licence = extra.get("licence") or extra.get("license")
    if licence and not out:
        out.append({"name": manifest.run_id, "licence": str(licence)})
    return out
