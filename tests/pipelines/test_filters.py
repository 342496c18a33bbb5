"""Filters: every drop recorded with its reason; near-duplicates of an already published version dropped."""

from __future__ import annotations

from pathlib import Path

from canned import Responder

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.filters.text import language_confidence, text_hash
from valuecorpus.pipelines.recipes import parse_recipe
from valuecorpus.schemas.arrow import read_records
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma, Perspective
from valuecorpus.schemas.run_tables import FilteredSample

BASE = ("You manage a small bakery in a busy town. A regular customer asks you to keep a secret about a "
        "neighbour's unpaid debts, and the neighbour is your friend. Should you tell your friend?")


def _chain(kind: str = "dilemmas", **filters: object) -> object:
    recipe = parse_recipe({"kind": kind, "count": 1, "output": {"dataset": "d"}, "filters": filters}, "f.yaml")
    return chain_class(kind)(recipe)


def _dilemma(i: str, text: str) -> Dilemma:
    return Dilemma(id=i, basic_situation="keeping a secret", dilemma_situation=text)


def test_exact_near_length_language_and_order_independence() -> None:
    chain = _chain(near_duplicate={"threshold": 0.6}, length={"min_chars": 40, "max_chars": 400})
    records = [
        _dilemma("a1", BASE),
        _dilemma("a0", BASE.upper().replace(".", " .")),  # same normalised text, smaller id: it is kept
        _dilemma("b", BASE.replace("busy town", "busy little town")),  # near duplicate
        _dilemma("c", "Too short?"),
        _dilemma("d", "Teacher balance duty question answer privacy balance mercy kindness law autonomy?"),
        _dilemma("e", "You coach a youth football team before a final. The best player skipped training to care "
                      "for a sick parent. Should you let the player start the match?"),
    ]
    out = apply_filters(chain, records)
    why = {f.sample_id: (f.filter, f.matched_id) for f in out.filtered}
    assert [r.id for r in out.kept] == ["a0", "e"]
    assert why == {"a1": ("exact_duplicate", "a0"), "b": ("near_duplicate", "a0"), "c": ("length", None),
                   "d": ("language", None)}
    assert apply_filters(chain, list(reversed(records))).kept == out.kept  # arrival order does not matter
    assert text_hash("Hello,  World!") == text_hash("hello world")
    assert language_confidence("这是一个关于诚实的两难问题。", "zh") == 1.0
    assert language_confidence(BASE, "zh") == 0.0


def test_leakage_and_schema() -> None:
    chain = _chain("perspectives")
    good = "Character A believes that honesty matters. Character A values their team. They feel torn. Fine."
    rec = Perspective(id="p1", dilemma_id="d", action="Reporting it", acceptable="Honesty", unacceptable="Loyalty",
                      category="shift", variant="S->O", description=good)
    leaky = rec.model_copy(update={"id": "p2", "description": good.replace("torn", "swayed and torn")})
    broken = rec.model_copy(update={"id": "p3", "description": good + " Extra.", "category": "sideways"})
    out = apply_filters(chain, [rec, leaky, broken])
    assert [r.id for r in out.kept] == ["p1"]
    reasons = {f.sample_id: (f.filter, f.reason) for f in out.filtered}
    assert reasons["p2"] == ("leakage", "names 'swayed'")
    assert reasons["p3"][0] == "schema" and "category" in reasons["p3"][1]


def test_near_duplicates_of_the_published_version_are_filtered(cli, home: Path, fake_llm,
                                                               responder: Responder, tmp_path: Path) -> None:
    from valuecorpus.warehouse import latest_version, publish

    recipe = tmp_path / "dd.yaml"
    recipe.write_text("kind: dilemmas\ncount: 6\nseed: 5\ntaxonomy: dailydilemmas_values\n"
                      "strata: {topic_groups: [workplace, family, school]}\n"
                      "filters: {near_duplicate: {threshold: 0.6}}\noutput: {dataset: dd_test}\n", encoding="utf-8")
    common = ("--base-url", fake_llm.base_url, "--model", "fake-model", "--no-progress", "--executor", "loop")
    assert cli("generate", str(recipe), "--run-id", "first", *common).code == 0
    first = read_records(DataHome(home).run("first").records("dilemma"))
    assert first
    publish(home, "first", "dd_test")
    assert latest_version(home, "dd_test") == 1

    responder.variant = "rather"  # the same prompts now get answers one word apart
    res = cli("generate", str(recipe), "--run-id", "second", "--refresh", *common)
    assert res.code == 0, res.stderr
    layout = DataHome(home).run("second")
    kept = read_records(layout.records("dilemma"))
    filtered = read_records(layout.filtered, FilteredSample)
    assert kept == []
    near = [f for f in filtered if f.filter == "near_duplicate"]
    # same recipe and seed: the same plan ids; each published dilemma's new near-copy is dropped, and every
    # match is a published record
    published_ids = {r.id for r in first}
    assert published_ids <= {f.sample_id for f in near}
    assert {f.matched_id for f in near} <= published_ids
    assert all("in the published version" in f.reason for f in near)
    assert layout.read_manifest().model_extra["published_compared"] == {"ref": "dd_test@v1", "files": 1,
                                                                        "rows": len(first)}


def test_llm_judge_drops_low_scores_through_the_engine(cli, home: Path, fake_llm, tmp_path: Path) -> None:
    recipe = tmp_path / "judged.yaml"
    recipe.write_text("kind: dilemmas\ncount: 8\nseed: 2\ntaxonomy: dailydilemmas_values\n"
                      "filters: {judge: {template: dilemmas/judge, min_score: 5}}\noutput: {dataset: judged}\n",
                      encoding="utf-8")
    res = cli("generate", str(recipe), "--run-id", "judged", "--base-url", fake_llm.base_url, "--model",
              "fake-model", "--no-progress", "--executor", "loop")
    assert res.code == 0, res.stderr
    layout = DataHome(home).run("judged")
    kept = read_records(layout.records("dilemma"))
    judged = [f for f in read_records(layout.filtered, FilteredSample) if f.filter == "judge"]
    assert kept and judged  # the fixed rule scores some 9 and some 3
    assert all(f.score == 3.0 and f.reason.startswith("judge score 3 < 5") for f in judged)
    assert len(kept) + len(read_records(layout.filtered, FilteredSample)) == 8
    # the judge as a step of the Beam pipeline, through the engine: the same verdicts
    res = cli("generate", str(recipe), "--run-id", "judged-beam", "--base-url", fake_llm.base_url, "--model",
              "fake-model", "--no-progress", "--executor", "beam")
    assert res.code == 0, res.stderr
    on_beam = DataHome(home).run("judged-beam")
    assert sorted(r.id for r in on_beam.read_records("records/dilemma")) == sorted(r.id for r in kept)
    assert sorted((f.sample_id, f.filter, f.reason) for f in on_beam.read_records("filtered")) == sorted(
        (f.sample_id, f.filter, f.reason) for f in read_records(layout.filtered, FilteredSample))
