"""The generic CLI features the DAGs (or cron) rely on: `--skip-existing`, `publish --once`, `runs --json`,
`run check` with the recipe's quality thresholds, and run ids derived from a scheduler's run id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valuecorpus.scheduling import derived_run_id, permanent
from valuecorpus.schemas.layout import RUN_ID_RE, DataHome, RunManifest


def _one_error(result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_import_skip_existing_and_publish_once(cli, home: Path, reference_data: Path) -> None:
    path = str(reference_data / "daily_dilemmas")
    first = cli("import", "dailydilemmas", path, "--run-id", "dd-1", "--skip-existing")
    assert first.code == 0, first.stderr
    again = cli("import", "dailydilemmas", path, "--run-id", "dd-1", "--skip-existing")
    assert again.code == 0 and "already staged" in again.stderr and again.stdout.strip() == "dd-1"
    plain = cli("import", "dailydilemmas", path, "--run-id", "dd-1")  # without the flag: refused, as before
    _one_error(plain, "run 'dd-1' already exists")
    _one_error(cli("import", "dailydilemmas", path, "--skip-existing"), "--skip-existing needs --run-id")

    listed = json.loads(cli("runs", "--json").stdout)
    assert [(r["run_id"], r["origin"], r["curation_batches"]) for r in listed] == [("dd-1", "import", [])]
    assert listed[0]["counts"] == DataHome(home).run("dd-1").read_manifest().counts

    once = [json.loads(cli("publish", "dd-1", "--dataset", "dd", "--once", "--json").stdout) for _ in range(2)]
    assert [(o["version"], o["already_published"]) for o in once] == [(1, False), (1, True)]
    text = cli("publish", "dd-1", "--dataset", "dd", "--once")
    assert text.code == 0 and text.stdout.startswith("already published: dd v1 is run dd-1")
    assert "published dd v2" in cli("publish", "dd-1", "--dataset", "dd").stdout  # without --once: a new version
    assert json.loads(cli("publish", "dd-1", "--dataset", "dd", "--once", "--json").stdout)["version"] == 2


def _staged(home: Path, run_id: str, recipe: dict, requests: int, dead: dict[str, int]) -> None:
    layout = DataHome(home).run(run_id)
    layout.path.mkdir(parents=True)
    layout.write_manifest(RunManifest(run_id=run_id, origin="generate", recipe=recipe,
                                      dead_letters=sum(dead.values()), engine={"requests": requests},
                                      dead_letter_classes=dead))


def test_run_check_applies_the_recipe_thresholds(cli, home: Path) -> None:
    strict = {"name": "strict", "quality": {"min_schema_valid_rate": 0.95, "max_dead_letter_rate": 0.05}}
    _staged(home, "bad", strict, requests=100, dead={"schema": 6, "timeout": 2})
    bad = cli("run", "check", "bad")
    assert bad.code == 6
    _one_error(bad, "schema-valid rate 94.0% is below the recipe's minimum 95.0%",
               "dead-letter rate 8.0% is above the recipe's maximum 5.0%")
    result = json.loads(cli("run", "check", "bad", "--json").stdout)
    assert (result["passed"], result["schema_valid_rate"], result["dead_letter_rate"]) == (False, 0.94, 0.08)
    # a recipe without a quality section gets the defaults (min 90 % valid, max 10 % dead letters)
    _staged(home, "ok", {"name": "plain"}, requests=100, dead={"timeout": 9})
    ok = cli("run", "check", "ok", "--json")
    assert ok.code == 0 and json.loads(ok.stdout)["thresholds"] == {"min_schema_valid_rate": 0.9,
                                                                   "max_dead_letter_rate": 0.1}


def test_recipe_quality_thresholds_are_validated(tmp_path: Path) -> None:
    from valuecorpus.pipelines.recipes import load_recipe, recipes_dir
    from valuecorpus.schemas.errors import RecipeError

    text = (recipes_dir() / "demo.yaml").read_text() + "name: demo\nquality: {max_dead_letter_rate: 1.5}\n"
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(RecipeError, match=r"quality\.max_dead_letter_rate"):
        load_recipe(tmp_path / "r.yaml")
    # thresholds do not decide samples: they leave the recipe's identity (and every sample id) unchanged
    (tmp_path / "r.yaml").write_text(text.replace("1.5", "0.5"))
    assert load_recipe(tmp_path / "r.yaml").identity() == load_recipe("demo").identity()


def test_generate_skip_existing_finds_the_same_recipe_only(cli, home: Path) -> None:
    _staged(home, "gen-1", {"name": "demo", "count": 10}, requests=10, dead={})
    same = cli("generate", "demo", "--run-id", "gen-1", "--skip-existing", "--no-progress")
    assert same.code == 0 and "already staged: nothing generated" in same.stderr
    other = cli("generate", "demo", "--n", "4", "--run-id", "gen-1", "--skip-existing", "--no-progress")
    _one_error(other, "run 'gen-1' already exists from recipe 'demo' (count 10)", "choose another --run-id")
    _one_error(cli("generate", "demo", "--skip-existing"), "--skip-existing needs --run-id")


def test_derived_run_ids_are_stable_valid_and_distinct() -> None:
    ids = {derived_run_id("demo", f"scheduled__2026-12-0{d}T00:00:00+00:00") for d in range(1, 8)}
    assert len(ids) == 7 and all(RUN_ID_RE.match(i) for i in ids)
    assert derived_run_id("demo", "manual__x") == derived_run_id("demo", "manual__x") == "demo-manual__x"
    long = derived_run_id("r" * 120, "scheduled__" + "9" * 60)
    assert RUN_ID_RE.match(long) and len(long) <= 128 and long != derived_run_id("r" * 120, "scheduled__" + "8" * 60)
    assert [permanent(c) for c in (0, 1, 2, 3, 4, 5, 6, 137)] == [False, False, True, False, True, True, True, False]
