"""Recipes: shipped ones load; bad ones fail with one message naming the file and the key (and, through the
CLI, a non-zero exit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuecorpus.pipelines.prompts import load_template, shipped_templates
from valuecorpus.pipelines.recipes import load_recipe, shipped_recipes
from valuecorpus.schemas.errors import RecipeError

GOOD = """\
kind: dilemmas
count: 4
taxonomy: dailydilemmas_values
strata:
  topic_groups: [workplace]
  taxonomy_nodes: [honesty, trust]
output: {dataset: demo}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_recipes_and_templates_load() -> None:
    assert {"dilemmas", "perspectives", "demo"} <= set(shipped_recipes())
    for name in ("dilemmas", "perspectives", "demo"):
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.count >= 1
    assert {"dilemmas/situation", "perspectives/description"} <= set(shipped_templates())


@pytest.mark.parametrize(("edit", "message"), [
    (GOOD + "colour: blue\n", "unknown key 'colour'"),
    (GOOD.replace("count: 4", "count: -1"), "key 'count': Input should be greater than or equal to 1"),
    (GOOD.replace("count: 4", "count: many"), "key 'count'"),
    (GOOD.replace("[honesty, trust]", "[honesty, trustworthyness]"),
     "key 'strata.taxonomy_nodes[1]': 'trustworthyness' is not in taxonomy 'dailydilemmas_values"),
    (GOOD.replace("[workplace]", "[workplace, moon]"), "key 'strata.topic_groups[1]': unknown topic group 'moon'"),
    (GOOD + "model: {temperature: 9}\n", "key 'model.temperature'"),
    (GOOD + "model: {speed: 9}\n", "unknown key 'model.speed'"),
    (GOOD + "filters: {near_duplicate: {threshold: 2}}\n", "key 'filters.near_duplicate.threshold'"),
    (GOOD + "prompts: {nosuchstep: dilemmas/situation}\n", "key 'prompts.nosuchstep': no such step"),
    (GOOD + "prompts: {situation: dilemmas/missing}\n", "key 'prompts.situation': prompt template"),
    (GOOD + "params: {max_parties: 0}\n", "key 'params.max_parties'"),
    (GOOD + "params: {wings: 2}\n", "unknown key 'params.wings'"),
    (GOOD.replace("kind: dilemmas", "kind: sonnets"), "key 'kind': unknown kind 'sonnets'"),
    (GOOD.replace("output: {dataset: demo}", ""), "missing key 'output'"),
    (GOOD + "strata: {taxonomy_nodes: from taxonomy nowhere}\n", "unknown taxonomy 'nowhere'"),
    ("kind: [dilemmas\n", "not valid YAML at line"),
])
def test_bad_recipe_names_file_and_key(tmp_path: Path, edit: str, message: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value).startswith(str(path)), str(err.value)
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"recipe file .*nope.yaml not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="recipe 'nope' not found"):
        load_recipe("nope")


def test_bad_recipe_through_the_cli(cli, tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("[honesty, trust]", "[honesty, trustworthyness]"))
    res = cli("generate", str(path), "--executor", "loop")
    assert res.code != 0
    assert res.stderr.startswith(f"error: {path}: key 'strata.taxonomy_nodes[1]'"), res.stderr
    assert "Traceback" not in res.stderr
    res = cli("generate", str(tmp_path / "missing.yaml"))
    assert res.code != 0 and "missing.yaml not found" in res.stderr


def test_templates_are_strict_and_versioned(tmp_path: Path) -> None:
    tmpl = load_template("dilemmas/situation")
    example = tmpl.example(1)  # worked examples rotate: the n-th request of a plan shows the n-th (cyclically)
    assert len(tmpl.examples) >= 2 and example != tmpl.example(0) and example == tmpl.example(1 + len(tmpl.examples))
    messages = tmpl.render(topic="work", seed_action="taking initiative", language="en", example=example)
    assert [m["role"] for m in messages] == ["system", "user"] and "taking initiative" in messages[1]["content"]
    assert example["answer"]["background"] in messages[1]["content"]
    assert example["answer"]["background"] in tmpl.literal_texts()  # what the echo filter compares against
    with pytest.raises(RecipeError, match="'seed_action' is undefined"):
        tmpl.render(topic="work", language="en", example=example)
    own = tmp_path / "mine.yaml"
    own.write_text("user: Hello {{ name }}\n", encoding="utf-8")
    first = load_template(str(own)).version
    own2 = tmp_path / "mine2.yaml"
    own2.write_text("user: Hello, {{ name }}\n", encoding="utf-8")
    assert load_template(str(own2)).version != first
    recipe_path = _write(tmp_path, GOOD + "prompts: {situation: mine.yaml}\n")
    assert load_recipe(recipe_path).prompts == {"situation": "mine.yaml"}
