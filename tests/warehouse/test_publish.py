"""Publishing staged runs: the version's files, manifest, card, lineage; immutability; the validation gate."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from wh_staging import stage_run, tree_bytes

from valuecorpus.schemas.arrow import arrow_schema, schema_fingerprint
from valuecorpus.schemas.errors import NotFoundError, ValueCorpusError
from valuecorpus.schemas.layout import DataHome, sha256_file
from valuecorpus.schemas.records import Dilemma, Perspective
from valuecorpus.warehouse import (
    latest_version,
    list_versions,
    load_records,
    load_version,
    publish,
    verify_version,
)


def test_publish_writes_a_complete_verifiable_version(home: Path, dilemma_run: str, dilemmas: list[Dilemma],
                                                      reference_data: Path) -> None:
    manifest = publish(home, dilemma_run, "dilemmas")
    vdir = DataHome(home).version_dir("dilemmas", 1)
    assert manifest.version == 1 and latest_version(home, "dilemmas") == 1
    assert sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file()) == [
        "README.md", "data/dilemma/part-0000.parquet", "data/dilemma__values/part-0000.parquet", "manifest.json"]
    on_disk = json.loads((vdir / "manifest.json").read_text())
    assert on_disk == manifest.model_dump(mode="json")
    assert manifest.kinds == ["dilemma"] and manifest.row_counts == {"dilemma": 1360}
    assert manifest.schema_fingerprint == {"dilemma": schema_fingerprint(arrow_schema(Dilemma))}
    for entry in manifest.files:
        assert entry.sha256 == sha256_file(vdir / entry.path)
        assert entry.bytes == (vdir / entry.path).stat().st_size
    assert verify_version(home, "dilemmas", 1) == []
    assert manifest.created_at.endswith("Z") and manifest.toolkit_version

    run = manifest.lineage["runs"][0]
    assert run["run_id"] == dilemma_run and run["origin"] == "import"
    assert run["manifest_sha256"] == sha256_file(DataHome(home).run(dilemma_run).manifest_path)
    assert run["source_files"] == [{"path": "dilemma.csv",
                                    "sha256": sha256_file(reference_data / "daily_dilemmas" / "dilemma.csv")}]
    assert manifest.taxonomy_versions == {"dailydilemmas_values": "1.0"}
    assert manifest.validation["success"] is True and manifest.annotation is None
    assert manifest.sources == [{"name": "daily_dilemmas", "licence": "CC-BY-4.0",
                                 "url": "https://github.com/kellycyy/daily_dilemmas",
                                 "note": "generated with GPT-4: respect OpenAI terms"}]

    card = (vdir / "README.md").read_text()
    for expected in ("# dilemmas v1", "| dilemma | 1360 |", "`actions` | `list<struct{", "CC-BY-4.0",
                     dilemma_run, run["manifest_sha256"][:16], "Result: **passed**"):
        assert expected in card

    # What was published reads back as the same records.
    assert load_records(home, "dilemmas") == dilemmas
    assert load_version(home, "dilemmas", "v1").num_rows == 1360


def test_versions_are_immutable(home: Path, dilemma_run: str, dilemmas: list[Dilemma]) -> None:
    publish(home, dilemma_run, "dilemmas")
    v1 = DataHome(home).version_dir("dilemmas", 1)
    before = tree_bytes(v1)
    stage_run(home, "import-dd-2", {"dilemma": dilemmas[:100]})
    second = publish(home, "import-dd-2", "dilemmas")
    assert second.version == 2 and second.row_counts == {"dilemma": 100}
    third = publish(home, dilemma_run, "dilemmas")  # same content as v1: still a new version, which says so
    assert third.version == 3 and third.same_content_as is None  # v2 (latest before it) differs
    fourth = publish(home, dilemma_run, "dilemmas")
    assert fourth.version == 4 and fourth.same_content_as == 3
    assert tree_bytes(v1) == before
    assert [v.version for v in list_versions(home, "dilemmas")] == [1, 2, 3, 4]
    assert all(verify_version(home, "dilemmas", n) == [] for n in (1, 2, 3, 4))


def test_verify_reports_tampering(home: Path, dilemma_run: str) -> None:
    publish(home, dilemma_run, "dilemmas")
    part = DataHome(home).version_dir("dilemmas", 1) / "data" / "dilemma" / "part-0000.parquet"
    part.chmod(0o644)
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    assert verify_version(home, "dilemmas") == [
        "data/dilemma/part-0000.parquet: sha256 differs from the manifest"]


def test_curated_run_carries_parents_and_agreement_into_the_card(home: Path, dilemma_run: str,
                                                                  dilemmas: list[Dilemma]) -> None:
    edited = [d.model_copy(update={"topic_group": "workplace"}) for d in dilemmas[:20]]
    annotation = {"annotators": 3, "tasks": 20, "accepted": 20,
                  "agreement": {"krippendorff_alpha": 0.7123, "fleiss_kappa": 0.6543}}
    stage_run(home, "curate-dd", {"dilemma": edited}, origin="curate", parent_runs=[dilemma_run, "gone-run"],
              annotation=annotation)
    manifest = publish(home, "curate-dd", "dilemmas")
    run = manifest.lineage["runs"][0]
    assert run["origin"] == "curate"
    parent = run["parent_runs"][0]
    assert parent["run_id"] == dilemma_run and parent["origin"] == "import" and parent["source_files"]
    assert parent["manifest_sha256"] == sha256_file(DataHome(home).run(dilemma_run).manifest_path)
    assert run["parent_runs"][1] == {"run_id": "gone-run", "missing": True}
    assert manifest.annotation == annotation
    card = (DataHome(home).version_dir("dilemmas", 1) / "README.md").read_text()
    assert "## Annotation agreement" in card
    assert "| agreement.krippendorff_alpha | 0.7123 |" in card and "| annotators | 3 |" in card
    assert f"↳ {dilemma_run}" in card and "gone-run (missing)" in card


def test_validation_gate_result_is_on_the_card(home: Path, dilemma_run: str) -> None:
    """Every publish validates (tests/warehouse/test_validation.py has the refusals); the result is on the card."""
    manifest = publish(home, dilemma_run, "dilemmas")
    assert manifest.validation["success"] is True and manifest.validation["suite"] == "dilemmas"
    card = (DataHome(home).version_dir("dilemmas", 1) / "README.md").read_text()
    assert "Result: **passed**" in card and "Suite `dilemmas` version `1." in card


def test_several_kinds_and_kind_selection(home: Path, dilemmas: list[Dilemma]) -> None:
    perspectives = [
        Perspective(id=f"p{i}", dilemma_id=d.id, action="reporting a colleague", acceptable="honesty at work",
                    unacceptable="loyalty to a friend", category="shift", variant="S->O",
                    description="Character A first values loyalty, then honesty.")
        for i, d in enumerate(dilemmas[:5])
    ]
    stage_run(home, "mixed", {"dilemma": dilemmas[:10], "perspective": perspectives})
    manifest = publish(home, "mixed", "clash")
    assert manifest.kinds == ["dilemma", "perspective"]
    assert manifest.row_counts == {"dilemma": 10, "perspective": 5}
    assert load_records(home, "clash", kind="perspective") == perspectives
    with pytest.raises(ValueCorpusError, match="several kinds"):
        load_version(home, "clash")
    with pytest.raises(NotFoundError, match="no kind 'rubric'"):
        load_version(home, "clash", kind="rubric")


def test_bad_runs_are_refused(home: Path, dilemmas: list[Dilemma]) -> None:
    with pytest.raises(NotFoundError, match="run 'nope' not found"):
        publish(home, "nope", "dilemmas")
    layout = DataHome(home).run("broken")
    stage_run(home, "broken", {"dilemma": dilemmas[:3]})
    table = pq.read_table(layout.records("dilemma")).drop_columns(["topic"])
    pq.write_table(table, layout.records("dilemma"))
    with pytest.raises(ValueCorpusError, match=r"broken/records/dilemma.parquet: schema does not match"):
        publish(home, "broken", "dilemmas")
    stage_run(home, "miscount", {"dilemma": dilemmas[:3]})
    manifest = DataHome(home).run("miscount").read_manifest()
    DataHome(home).run("miscount").write_manifest(manifest.model_copy(update={"counts": {"dilemma": 4}}))
    with pytest.raises(ValueCorpusError, match="3 rows but the run manifest says 4"):
        publish(home, "miscount", "dilemmas")
    with pytest.raises(ValueCorpusError, match="invalid dataset name"):
        stage_run(home, "fine", {"dilemma": dilemmas[:3]})
        publish(home, "fine", "Bad-Name")
    assert not (DataHome(home).warehouse_dir / "dilemmas").exists() or list_versions_empty(home)


def list_versions_empty(home: Path) -> bool:
    with pytest.raises(NotFoundError):
        list_versions(home, "dilemmas")
    return True


def test_card_tabulates_curation_agreement(home: Path, dilemma_run: str, dilemmas: list[Dilemma]) -> None:
    stats = {"items": 20, "items_multiply_rated": 20, "annotators": 3, "ratings": 60, "cohen_kappa": None,
             "fleiss_kappa": 0.61234, "fleiss_items": 20, "krippendorff_alpha": 0.58765, "level": "nominal"}
    annotation = {"source_run": dilemma_run, "batches": ["dilemma/b0001", "dilemma/b0002"], "samples": 20,
                  "accepted": 18, "edited": 2, "agreement": {"dilemma/b0001": {"verdict": stats}}}
    stage_run(home, "curated", {"dilemma": dilemmas[:20]}, origin="curate", parent_runs=[dilemma_run],
              annotation=annotation)
    publish(home, "curated", "dilemmas")
    card = (DataHome(home).version_dir("dilemmas", 1) / "README.md").read_text()
    assert "| dilemma/b0001 | verdict | 20 | 20 | 3 | 0.5877 | 0.6123 | – | nominal |" in card
    assert "| batches | dilemma/b0001, dilemma/b0002 |" in card and "| edited | 2 |" in card
    assert "agreement.dilemma" not in card
