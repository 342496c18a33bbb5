"""`valuecorpus import KIND PATH` stages a run: Parquet per record kind, then the manifest; atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valuecorpus.schemas.arrow import read_records
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.importers import import_path
from valuecorpus.schemas.importers.base import ImportResult
from valuecorpus.schemas.importers.staging import stage_import
from valuecorpus.schemas.layout import DataHome, RunLayout, sha256_file
from valuecorpus.schemas.records import Dilemma, Provenance

CORPORA = [
    ("dailydilemmas", "daily_dilemmas", {"dilemma": 1360}, {"dailydilemmas_values"}),
    ("agent_valuebench", "agent_valuebench", {"agent_case": 7, "agent_environment": 6, "rubric": 6},
     {"agent_valuebench"}),
    ("moral_graph", "moral_graph", {"canonical_values_card": 115, "moral_graph_context": 37, "moral_graph_edge": 69,
                                    "moral_graph_question": 5, "moral_graph_vote": 347, "values_card": 206}, set()),
    ("emergent_values", "emergent_values", {"outcome": 685}, set()),
]


@pytest.mark.parametrize(("kind", "folder", "counts", "taxonomies"), CORPORA, ids=[c[0] for c in CORPORA])
def test_import_stages_a_run(reference_data: Path, home: Path, cli, kind: str, folder: str,
                             counts: dict[str, int], taxonomies: set[str]) -> None:
    source = reference_data / folder
    result = cli("import", kind, str(source), "--run-id", f"ref-{kind}")
    assert result.code == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"ref-{kind}"
    for record_kind, n in counts.items():
        assert record_kind in result.stdout and str(n) in result.stdout

    layout = RunLayout(home / "runs" / f"ref-{kind}")
    manifest = layout.read_manifest()
    assert (manifest.run_id, manifest.origin) == (f"ref-{kind}", "import")
    assert manifest.kinds == sorted(counts) and manifest.counts == counts
    assert set(manifest.taxonomy_versions) == taxonomies
    assert manifest.toolkit_version
    expected = import_path(kind, source)
    assert [f.path for f in manifest.source_files] == [str(p.resolve()) for p in expected.source_files]
    for entry in manifest.source_files:
        assert entry.sha256 == sha256_file(entry.path)
    assert layout.kinds() == sorted(counts)
    for record_kind, records in expected.records.items():
        back = read_records(layout.records(record_kind))
        assert [r.model_dump() for r in back] == [r.model_dump() for r in records]
    # the manifest is the last file written, and nothing is left beside the run
    newest = max((p for p in layout.path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest == layout.manifest_path
    assert [p.name for p in (home / "runs").iterdir()] == [f"ref-{kind}"]


def test_existing_run_is_never_touched(reference_data: Path, home: Path, cli) -> None:
    source = reference_data / "emergent_values" / "entities.json"
    assert cli("import", "emergent_values", str(source), "--run-id", "r1").code == 0
    manifest = (home / "runs" / "r1" / "manifest.json").read_bytes()
    again = cli("import", "emergent_values", str(reference_data / "emergent_values"), "--run-id", "r1")
    assert again.code != 0 and again.stderr.strip() == f"error: run 'r1' already exists at {home / 'runs' / 'r1'}"
    assert (home / "runs" / "r1" / "manifest.json").read_bytes() == manifest
    assert json.loads(manifest)["counts"] == {"outcome": 39}
    bad = cli("import", "emergent_values", str(source), "--run-id", "../escape")
    assert bad.code != 0 and "invalid run id" in bad.stderr
    assert sorted(p.name for p in (home / "runs").iterdir()) == ["r1"]


def test_failure_while_writing_leaves_no_run(reference_data: Path, tmp_path: Path) -> None:
    """A record Arrow cannot hold (an int beyond int64) fails after another kind's file was written: the
    half-built run is removed, nothing appears under runs/."""
    home = DataHome(tmp_path / "home")
    good = import_path("emergent_values", reference_data / "emergent_values" / "entities.json")
    result = ImportResult("test", records=dict(good.records))
    result.records["values_card_z"] = [Dilemma(
        id="x", provenance=Provenance(origin="import"), basic_situation="a", dilemma_situation="b", topic=2**70,
    )]
    with pytest.raises(OverflowError):
        stage_import(result, home, "emergent_values", run_id="half")
    assert list(home.runs_dir.iterdir()) == []


def test_nothing_to_stage(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("[]", encoding="utf-8")
    result = import_path("moral_graph", tmp_path / "empty.json")
    with pytest.raises(ValueCorpusError, match="no records to stage"):
        stage_import(result, DataHome(tmp_path / "home"), "moral_graph")
