"""Dataset cards in the Hugging Face format: front matter, sections, and every record kind of a version loading
offline through `datasets` — from the version directory (the card's `configs`) and from its Parquet files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from wh_kinds import stage_every_kind
from wh_staging import stage_run

from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import RECORD_TYPES, Dilemma, stable_id
from valuecorpus.warehouse import publish


def card_parts(vdir: Path) -> tuple[dict[str, Any], str]:
    text = (vdir / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


@pytest.fixture(scope="module")
def every_kind_version(tmp_path_factory: pytest.TempPathFactory, reference_data: Path) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("card") / "home"
    records = stage_every_kind(home, reference_data)
    publish(home, "every-kind", "everything")
    return DataHome(home).version_dir("everything", 1), records


def test_front_matter_of_a_version_with_every_kind(every_kind_version: tuple[Path, dict]) -> None:
    vdir, records = every_kind_version
    meta, body = card_parts(vdir)
    total = sum(len(v) for v in records.values())
    assert 1_000 <= total < 10_000 and meta["size_categories"] == ["1K<n<10K"]
    # one config per kind, each naming that kind's files; the first is the default
    assert [c["config_name"] for c in meta["configs"]] == sorted(RECORD_TYPES)
    for config in meta["configs"]:
        assert config["data_files"] == [{"split": "train", "path": f"data/{config['config_name']}/*.parquet"}]
    assert meta["configs"][0].get("default") is True and sum(1 for c in meta["configs"] if c.get("default")) == 1
    # licence per source: CC-BY-4.0 corpora, MIT emergent-values, Moral Graph data declares none
    by_source = {s["name"]: s["license"] for s in meta["valuecorpus"]["sources"]}
    assert by_source["daily_dilemmas"] == "CC-BY-4.0" and by_source["emergent_values"] == "MIT"
    assert {"cc-by-4.0", "mit", "unknown"} <= set(meta["license"])
    assert set(meta["language"]) == {"en", "zh"}  # value rules carry zh with an English translation
    assert {"multiple-choice", "text-generation", "text-classification"} <= set(meta["task_categories"])
    assert meta["valuecorpus"]["row_counts"] == {k: len(v) for k, v in sorted(records.items())}
    for heading in ("## Composition", "## How it was generated", "## How it was curated", "## Validation",
                    "## Provenance", "## Limitations", "## Changes since the previous version"):
        assert heading in body, heading
    assert "First version of everything." in body and "Not curated" in body
    assert meta["annotations_creators"] == ["found"]
    assert "declares no licence" in body  # the Moral Graph study data


def test_every_kind_loads_offline_with_datasets(every_kind_version: tuple[Path, dict], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    from datasets import load_dataset

    vdir, records = every_kind_version
    for kind, rows in sorted(records.items()):
        expected = sorted(r.id for r in rows)
        from_card = load_dataset(str(vdir), kind, split="train")
        files = sorted(str(p) for p in (vdir / "data" / kind).glob("*.parquet"))
        from_files = load_dataset("parquet", data_files={"train": files}, split="train")
        for loaded in (from_card, from_files):
            assert loaded.num_rows == len(rows), kind
            assert sorted(loaded["id"]) == expected, kind
            assert set(loaded.column_names) == set(pq.read_schema(files[0]).names), kind
    default = load_dataset(str(vdir), split="train")  # no config named: the card's default kind
    assert default.num_rows == len(records[sorted(records)[0]])


def test_card_shows_generation_validation_and_changes(home: Path, dilemmas: list[Dilemma]) -> None:
    first = dilemmas[:200]
    stage_run(home, "gen-1", {"dilemma": first}, origin="generate", models=["test-model"],
              prompt_versions={"dilemmas/situation": "0123456789ab"},
              tokens={"prompt_tokens": 1200, "completion_tokens": 340, "tokens": 1540}, cost_usd=0.0125)
    manifest = publish(home, "gen-1", "dilemmas")  # the gate's real result is what the card shows
    meta, body = card_parts(DataHome(home).version_dir("dilemmas", 1))
    assert meta["source_datasets"] == ["extended|daily_dilemmas"]
    assert meta["language_creators"] == ["machine-generated"] == meta["annotations_creators"]
    assert "Models: test-model." in body and "prompt_tokens 1200" in body and "0.0125 USD" in body
    assert "| `dilemmas/situation` | `0123456789ab` |" in body
    v = manifest.validation
    assert (f"Suite `dilemmas` version `{v['suite_version']}`: {len(v['expectations'])} expectation(s), 0 failed."
            in body)
    assert "| dilemma: id unique | unique | id | passed |" in body
    assert "| filtered rate below its ceiling | distribution | filtered_rate | passed |" in body
    assert f"Data Docs: `{v['data_docs']}`" in body and v["data_docs"] == "runs/gen-1/validation/data_docs/index.html"

    # v2: 10 removed, 5 changed (topic), 3 added
    changed = {d.id for d in first[10:15]}
    second = [d.model_copy(update={"topic": 99}) if d.id in changed else d for d in first[10:]]
    second += [Dilemma(id=stable_id("new", i), basic_situation="new", dilemma_situation="New?") for i in range(3)]
    stage_run(home, "gen-2", {"dilemma": second})
    publish(home, "gen-2", "dilemmas")
    _, body = card_parts(DataHome(home).version_dir("dilemmas", 2))
    changes = body.split("## Changes since the previous version", 1)[1]
    assert "Compared with v1" in changes
    assert "| dilemma | 3 | 10 | 5 | 185 | topic (5) |" in changes


def test_changes_of_large_versions_are_matched_by_id(home: Path, dilemmas: list[Dilemma],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from valuecorpus.warehouse import changelog

    monkeypatch.setattr(changelog, "FULL_DIFF_MAX_ROWS", 100)  # the bound, lowered so a small version passes it
    stage_run(home, "big-1", {"dilemma": dilemmas[:80]})
    publish(home, "big-1", "dilemmas")
    stage_run(home, "big-2", {"dilemma": dilemmas[20:100]})
    publish(home, "big-2", "dilemmas")
    _, body = card_parts(DataHome(home).version_dir("dilemmas", 2))
    assert "| dilemma | 20 | 20 | not compared | – |  |" in body
