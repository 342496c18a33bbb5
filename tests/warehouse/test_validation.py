"""The validation gate: the generated suites pass clean reference corpora and refuse a corrupted run for every
expectation kind, naming the offending ids; nothing is published on failure; a passing result is in the manifest.

Corruptions are written straight into the Parquet files (as a bug or a hand edit would), bypassing the models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from wh_staging import stage_run

from valuecorpus.schemas.constraints import check_declarations
from valuecorpus.schemas.importers import import_path
from valuecorpus.schemas.importers.staging import stage_import
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma, OutcomeComparison
from valuecorpus.schemas.records.preferences import OutcomeRef
from valuecorpus.warehouse import ValidationFailed, list_versions, publish
from valuecorpus.warehouse.validation import run_target, validate
from valuecorpus.warehouse.validation.suite import SUITE_FILE


def test_declared_references_and_labels_exist_in_the_model() -> None:
    assert check_declarations() == []


def _rows(home: Path, run: str, kind: str = "dilemma") -> list[dict[str, Any]]:
    return pq.read_table(DataHome(home).run(run).records(kind)).to_pylist()


def _rewrite(home: Path, run: str, rows: list[dict[str, Any]], kind: str = "dilemma") -> None:
    path = DataHome(home).run(run).records(kind)
    schema = pq.read_schema(path)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _refused(home: Path, run: str, dataset: str = "dd") -> str:
    with pytest.raises(ValidationFailed) as info:
        publish(home, run, dataset)
    assert not (DataHome(home).dataset_dir(dataset) / "v1").exists(), "nothing is published"
    assert "nothing published" in str(info.value)
    return str(info.value)


@pytest.fixture(scope="module")
def imported_dilemmas(reference_data: Path) -> list[Dilemma]:
    """The real importer's dilemmas: actions with values and their five theory labels."""
    return import_path("dailydilemmas", reference_data / "daily_dilemmas").records["dilemma"]


@pytest.fixture
def small_run(home: Path, imported_dilemmas: list[Dilemma]) -> str:
    # the four dilemmas with actions, values and theory labels, and some without
    chosen = [d for d in imported_dilemmas if d.actions] + [d for d in imported_dilemmas if not d.actions][:16]
    stage_run(home, "small", {"dilemma": chosen})
    return "small"


def test_clean_run_publishes_with_its_validation_in_the_manifest(home: Path, dilemma_run: str) -> None:
    manifest = publish(home, dilemma_run, "dilemmas")
    v = manifest.validation
    assert set(v) == {"success", "suite", "suite_version", "expectations", "data_docs"}
    assert v["success"] is True and v["suite"] == "dilemmas" and v["suite_version"].startswith("1.")
    kinds = {e["kind"] for e in v["expectations"]}
    assert {"not_null", "type", "taxonomy", "text_length", "unique", "distribution"} <= kinds
    for e in v["expectations"]:
        assert set(e) == {"name", "kind", "column", "success", "observed", "threshold", "unexpected_ids"}
        assert e["success"] is True and e["unexpected_ids"] == []
        json.dumps(e)  # plain JSON
    assert (DataHome(home).root / v["data_docs"]).is_file()  # Data Docs beside the run
    on_disk = json.loads((DataHome(home).version_dir("dilemmas", 1) / "manifest.json").read_text())
    assert on_disk["validation"] == v
    # the dataset's suite file was made with the generated defaults, and a user can read them
    suite = (DataHome(home).dataset_dir("dilemmas") / SUITE_FILE).read_text()
    assert "dilemma_situation: {min: 1, max: 20000}" in suite and "stratum_max_ratio" in suite


CORRUPTIONS = {
    # kind of expectation: (what is broken, expectation name fragment)
    "not_null": ("basic_situation", "required fields not null"),
    "type": ("actions[].action_type", "action_type in ['to_do', 'not_to_do']"),
    "taxonomy": ("actions[].values[].name", "actions[].values[].name in taxonomy"),
    "text_length": ("dilemma_situation", "text at least its minimum length"),
    "unique": ("id", "id unique"),
}


def _corrupt(kind: str, rows: list[dict[str, Any]]) -> list[str]:
    with_actions = [r for r in rows if r["actions"]]
    if kind == "not_null":
        rows[3]["basic_situation"] = None
        return [rows[3]["id"]]
    if kind == "type":
        with_actions[1]["actions"][0]["action_type"] = "maybe"
        return [with_actions[1]["id"]]
    if kind == "taxonomy":
        with_actions[2]["actions"][1]["values"][0]["name"] = "not-a-value-of-the-taxonomy"
        return [with_actions[2]["id"]]
    if kind == "text_length":
        rows[5]["dilemma_situation"] = ""
        return [rows[5]["id"]]
    rows[7]["id"] = rows[6]["id"]
    return [rows[6]["id"]]


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_gate_refuses_each_corruption_naming_the_ids(home: Path, small_run: str, kind: str) -> None:
    rows = _rows(home, small_run)
    bad_ids = _corrupt(kind, rows)
    _rewrite(home, small_run, rows)
    message = _refused(home, small_run)
    field, name = CORRUPTIONS[kind]
    assert f"[{kind}]" in message and name in message and field in message, message
    for rid in bad_ids:
        assert rid in message
    result = validate(DataHome(home), run_target(DataHome(home).run(small_run)), "dd")
    failed = [e for e in result["expectations"] if not e["success"]]
    assert [e["kind"] for e in failed] == [kind]
    assert failed[0]["unexpected_ids"] == bad_ids


def test_suite_file_thresholds_are_read(home: Path, small_run: str) -> None:
    publish(home, small_run, "dd")  # writes the dataset's suite file with the defaults
    path = DataHome(home).dataset_dir("dd") / SUITE_FILE
    text = path.read_text()
    path.write_text(text.replace("dilemma_situation: {min: 1, max: 20000}", "dilemma_situation: {min: 1, max: 60}"))
    too_long = sorted(r["id"] for r in _rows(home, small_run) if len(r["dilemma_situation"]) > 60)
    message = _refused_again(home, small_run)
    assert "text at most its maximum length" in message and "dilemma_situation" in message
    assert f"ids: {', '.join(too_long[:5])};" in message  # up to five offending ids, smallest first
    path.write_text("suite: dd\ndistribution: {filtered_rate_max: 2}\n")
    with pytest.raises(Exception, match=r"suite.yaml: 'distribution.filtered_rate_max'"):
        publish(home, small_run, "dd")
    assert [v.version for v in list_versions(home, "dd")] == [1]


def _refused_again(home: Path, run: str) -> str:
    with pytest.raises(ValidationFailed) as info:
        publish(home, run, "dd")
    return str(info.value)


def test_agent_case_without_its_environment_is_refused(home: Path, reference_data: Path, tmp_path: Path) -> None:
    source = tmp_path / "avb"
    shutil.copytree(reference_data / "agent_valuebench", source)
    case = json.loads((source / "case" / "case_00001.json").read_text())
    environment = case.get("environment") or case.get("env_name")
    assert environment, "the reference case names its environment"
    (source / "environment" / f"{environment}.json").unlink()
    layout = stage_import(import_path("agent_valuebench", source), DataHome(home), "agent_valuebench", "avb-gap")
    message = _refused(home, layout.run_id, "avb")
    assert "[reference] agent_case.environment -> agent_environment.env_name" in message
    assert f"{case['case_name']}: '{environment}'" in message  # the case, by its name, and what it lacks


def test_clean_reference_corpora_pass(home: Path, reference_data: Path) -> None:
    for importer, folder in (("agent_valuebench", "agent_valuebench"), ("emergent_values", "emergent_values"),
                             ("moral_graph", "moral_graph"), ("dailydilemmas", "daily_dilemmas")):
        layout = stage_import(import_path(importer, reference_data / folder), DataHome(home), importer, importer)
        result = validate(DataHome(home), run_target(layout))
        assert result["success"], [e for e in result["expectations"] if not e["success"]]


def test_references_between_kinds_of_one_run(home: Path) -> None:
    from valuecorpus.schemas.records import Outcome

    outcomes = [Outcome(id=f"o{i}", outcome_set="s", category="c", index=i, description=f"outcome {i}")
                for i in range(3)]
    comparisons = [OutcomeComparison(id=f"c{i}", option_a=OutcomeRef(outcome_id=f"o{i}", description="a"),
                                     option_b=OutcomeRef(outcome_id=f"o{i + 1}", description="b"))
                   for i in range(3)]  # c2 points at o3, which is not in the run
    stage_run(home, "cmp", {"outcome": outcomes, "outcome_comparison": comparisons})
    message = _refused(home, "cmp", "cmp")
    assert "outcome_comparison.option_b.outcome_id -> outcome.id" in message and "c2" in message and "o3" in message
    stage_run(home, "cmp-alone", {"outcome_comparison": comparisons})  # the outcomes are not in this version
    assert publish(home, "cmp-alone", "cmp").validation["success"]


def _plan(home: Path, run: str, strata: dict[str, list[str]]) -> None:
    ids = [(sid, stratum) for stratum, sids in strata.items() for sid in sids]
    pq.write_table(pa.table({"index": list(range(len(ids))), "sample_id": [i for i, _ in ids],
                             "seed": [0] * len(ids), "stratum": [s for _, s in ids], "item": ["{}"] * len(ids)}),
                   DataHome(home).run(run).plan)


def test_distribution_bounds(home: Path, dilemmas: list[Dilemma]) -> None:
    # 40 planned items over two strata; stratum b lost most of its records: a is above its share
    chosen = [d.model_copy(update={"provenance": d.provenance.model_copy(update={"plan_item": f"item{i}"})})
              for i, d in enumerate(dilemmas[:40])]
    stage_run(home, "gen", {"dilemma": chosen[:20]}, origin="generate", filtered=20)
    _plan(home, "gen", {"topic=a": [f"item{i}" for i in range(20)], "topic=b": [f"item{i}" for i in range(20, 40)]})
    message = _refused(home, "gen")
    assert "no planned stratum above its share" in message and "topic=a" in message
    assert "filtered rate below its ceiling" not in message  # 20 of 40: under the 0.6 ceiling

    stage_run(home, "gen-dead", {"dilemma": chosen[:10]}, origin="generate", dead_letters=30)
    message = _refused(home, "gen-dead")
    assert "dead-letter rate below its ceiling" in message

    annotation = {"accepted": 3, "edited": 1, "rejected": 16,
                  "agreement": {"dilemma/b0001": {"verdict": {"krippendorff_alpha": 0.1}}}}
    stage_run(home, "cur", {"dilemma": chosen[:4]}, origin="curate", annotation=annotation)
    message = _refused(home, "cur")
    assert "acceptance rate above its floor" in message and "agreement above its floor" in message
    assert "dilemma/b0001" in message


def test_validate_command(home: Path, dilemma_run: str, small_run: str, cli) -> None:
    rows = _rows(home, small_run)
    rows[2]["basic_situation"] = None
    _rewrite(home, small_run, rows)
    bad = cli("validate", small_run)
    assert bad.code == 5, bad.stderr
    assert "FAILED [not_null]" in bad.stdout and rows[2]["id"] in bad.stdout
    assert bad.stderr.startswith("error: validation failed for run 'small'") and rows[2]["id"] in bad.stderr
    assert (DataHome(home).run(small_run).path / "validation" / "data_docs" / "index.html").is_file()
    published = cli("publish", dilemma_run, "--dataset", "dilemmas")
    assert published.code == 0 and "validated: suite 'dilemmas'" in published.stdout
    again = cli("validate", "dilemmas@v1", "--format", "json")
    assert again.code == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["success"] and result["data_docs"] == "warehouse/dilemmas/validation/v1/data_docs/index.html"
    missing = cli("validate", "nothing-here")
    assert missing.code != 0 and "neither a run" in missing.stderr
