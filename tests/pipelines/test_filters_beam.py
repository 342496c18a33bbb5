"""The filters' Beam form (GroupByKey on text hashes, MinHash bands as keys) keeps and drops exactly what
`apply_filters` does on the same input, reasons and matches included: duplicates within the run and against
published texts, and the echo filter (the prompt's own text, the same text twice in a record, a field repeated
across samples, records of one sample sharing a field)."""

from __future__ import annotations

import itertools
import json
import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from valuecorpus.pipelines.beam_pipeline import pipeline_options
from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.filters.beam import FilterRecords
from valuecorpus.pipelines.prompts import load_template
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.schemas.records import Dilemma, Provenance, stable_id
from valuecorpus.schemas.records.dilemmas import DilemmaAction

RECIPE = {"filters": {"language": {"enabled": False}, "leakage": False,
                      "length": {"min_chars": 1, "max_chars": 100000}}}


def _records(n: int, seed: int) -> tuple[list[Dilemma], list[tuple[str, str]]]:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(400)]
    texts: list[str] = []
    for _ in range(n):
        r = rng.random()
        if texts and r < 0.25:  # a near copy: one or two words changed
            base = rng.choice(texts).split()
            for _ in range(rng.choice([1, 2])):
                base[rng.randrange(len(base))] = rng.choice(words)
            texts.append(" ".join(base))
        elif texts and r < 0.35:
            texts.append(rng.choice(texts).upper())  # the same normalised text
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(30)))
    records = [Dilemma(id=stable_id("t", str(seed), str(i)), basic_situation="s", dilemma_situation=t, actions=[],
                       provenance=Provenance(origin="import", plan_item=str(i))) for i, t in enumerate(texts)]
    published = [(f"pub{i}", t) for i, t in enumerate(rng.sample(texts, 8))]
    return records, published


def test_beam_filters_give_the_loop_result() -> None:
    recipe = load_recipe("dilemmas", RECIPE)
    chain = chain_class(recipe.kind)(recipe)
    records, published = _records(240, seed=3)
    expected = apply_filters(chain, records, published)
    reasons = {f.filter for f in expected.filtered}
    assert {"exact_duplicate", "near_duplicate"} <= reasons  # the input exercises both
    assert any((f.reason or "").endswith(")") and "published" in f.reason for f in expected.filtered)
    _assert_beam_gives(chain, records, published, expected)


def _echoing(records: list[Dilemma], seed: int) -> list[Dilemma]:
    """The same dilemmas with actions whose texts echo: a consequence that is the prompt's example, one of a few
    consequences repeated across samples, both actions with the same text, and pairs of records of one sample
    sharing a consequence; the rest write text of their own."""
    rng = random.Random(seed)
    words = [f"term{i}" for i in range(300)]
    examples = [e["story"] for e in load_template("dilemmas/consequence").examples]
    repeated = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(4)]
    out: list[Dilemma] = []
    for i, rec in enumerate(records):
        own = [" ".join(rng.choice(words) for _ in range(14)) for _ in range(3)]
        r = rng.random()
        consequence = (rng.choice(examples) if r < 0.1 else rng.choice(repeated) if r < 0.45 else own[0])
        other = rng.choice(repeated) if rng.random() < 0.2 else own[1]
        to_do = "go ahead with the plan" if rng.random() < 0.1 else "tell the neighbour " + own[2][:20]
        plan_item = str(i)
        if i % 17 == 1:  # every 17th record is a second record of the sample before it, with its consequence
            plan_item, consequence = out[-1].provenance.plan_item, out[-1].actions[0].negative_consequence
        actions = [DilemmaAction(action_type="to_do", action=to_do, negative_consequence=consequence),
                   DilemmaAction(action_type="not_to_do", action="go ahead with the plan", negative_consequence=other)]
        prov = Provenance(origin="import", plan_item=plan_item)
        out.append(rec.model_copy(update={"actions": actions, "provenance": prov}))
    return out


def test_beam_echo_filter_gives_the_loop_result() -> None:
    recipe = load_recipe("dilemmas", RECIPE)
    chain = chain_class(recipe.kind)(recipe)
    records, published = _records(240, seed=5)
    records = _echoing(records, seed=5)
    expected = apply_filters(chain, records, published)
    echo = [f.reason for f in expected.filtered if f.filter == "echo"]
    # the input exercises every echo check beside the duplicate filters
    assert any("repeats the text of another sample" in r for r in echo)
    assert any("the prompt's own text" in r for r in echo)
    assert any(r == "action (to_do) and action (not_to_do) have the same text" for r in echo)
    assert {"exact_duplicate", "near_duplicate"} <= {f.filter for f in expected.filtered}
    # two records of one sample with one consequence, neither dropped for it (the second is no echo of the first)
    by_id = {r.id: r for r in records}
    kept = {r.id for r in expected.kept}
    pairs = [(a, b) for a, b in itertools.pairwise(records)
             if a.provenance.plan_item == b.provenance.plan_item]
    assert any(a.id in kept and b.id in kept for a, b in pairs)
    assert all(by_id[f.matched_id].provenance.plan_item != by_id[f.sample_id].provenance.plan_item
               for f in expected.filtered if f.filter == "echo" and f.matched_id)
    _assert_beam_gives(chain, records, published, expected)


def test_beam_echo_filter_off_gives_the_loop_result() -> None:
    recipe = load_recipe("dilemmas", {**RECIPE, "filters": {**RECIPE["filters"], "echo": {"enabled": False}}})
    chain = chain_class(recipe.kind)(recipe)
    records, published = _records(120, seed=7)
    records = _echoing(records, seed=7)
    expected = apply_filters(chain, records, published)
    assert all(f.filter != "echo" for f in expected.filtered)
    _assert_beam_gives(chain, records, published, expected)


@pytest.mark.parametrize("duplicates", [{"exact_duplicate": False}, {"near_duplicate": {"enabled": False}},
                                        {"exact_duplicate": False, "near_duplicate": {"enabled": False}}],
                         ids=["near-only", "exact-only", "neither"])
def test_beam_filters_with_duplicate_filters_off_give_the_loop_result(duplicates: dict) -> None:
    recipe = load_recipe("dilemmas", {**RECIPE, "filters": {**RECIPE["filters"], **duplicates}})
    chain = chain_class(recipe.kind)(recipe)
    records, published = _records(150, seed=9)
    records = _echoing(records, seed=9)
    expected = apply_filters(chain, records, published)
    assert "echo" in {f.filter for f in expected.filtered}
    _assert_beam_gives(chain, records, published, expected)


class _PartsChain(chain_class("dilemmas")):  # type: ignore[misc]
    """Dilemmas of which some are part of another (as an agent case's rubric is of its case)."""

    def depends_on(self, record: Dilemma) -> str | None:
        situation = record.basic_situation
        return situation.removeprefix("part of ") if situation.startswith("part of ") else None


def test_beam_drops_the_parts_of_filtered_records_as_the_loop() -> None:
    chain = _PartsChain(load_recipe("dilemmas", RECIPE))
    records, published = _records(240, seed=11)
    records = _echoing(records, seed=11)
    # every fourth record is part of an earlier one (which the filters may drop), and one record comes twice
    parted = [r.model_copy(update={"basic_situation": f"part of {records[i // 2].id}"}) if i % 4 == 3 else r
              for i, r in enumerate(records)]
    parted.append(parted[10])
    expected = apply_filters(chain, parted, published)
    filtered = {f.sample_id: f for f in expected.filtered}
    assert any(f.filter == "dependent" for f in expected.filtered)
    parent_of = {r.id: chain.depends_on(r) for r in parted}
    # a part the echo filter dropped whose parent was filtered too: dropped once, for the echo
    assert any(f.filter == "echo" and parent_of[f.sample_id] in filtered for f in expected.filtered)
    assert len(expected.kept) + len(expected.filtered) == len(parted)
    _assert_beam_gives(chain, parted, published, expected)


def test_beam_filters_on_the_dask_cluster_give_the_loop_result(dask_cluster, tmp_path) -> None:
    """The same composite on Beam's Dask runner against two worker processes: every tagged output reaches only
    its own consumers (kept, filtered, the echo checks' splits), row for row as the loop."""
    recipe = load_recipe("dilemmas", RECIPE)
    chain = chain_class(recipe.kind)(recipe)
    records, published = _records(240, seed=5)
    records = _echoing(records, seed=5)
    expected = apply_filters(chain, records, published)
    out = tmp_path / "result.json"
    # the Dask runner computes the pipeline's last leaf only: one sink gathers both outputs
    p = beam.Pipeline(options=pipeline_options(dask_cluster.beam_args))
    pub = p | "Published" >> beam.Create(published)
    kept, filtered = p | beam.Create([(r, "en") for r in records]) | FilterRecords(chain, pub)
    _ = ((kept | "KeptIds" >> beam.Map(lambda r: ["kept", r.id]),
          filtered | "Why" >> beam.Map(lambda f: ["filtered", f.sample_id, f.filter, f.matched_id, f.reason]))
         | beam.Flatten()
         | beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
         | beam.Map(lambda rows: out.write_text(json.dumps(rows))))
    p.run().wait_until_finish()
    rows = json.loads(out.read_text())
    assert sorted(r[1] for r in rows if r[0] == "kept") == sorted(r.id for r in expected.kept)
    assert sorted(tuple(r[1:]) for r in rows if r[0] == "filtered") == sorted(
        (f.sample_id, f.filter, f.matched_id, f.reason) for f in expected.filtered)


def _assert_beam_gives(chain, records: list[Dilemma], published: list[tuple[str, str]], expected) -> None:
    with beam.Pipeline(runner="FnApiRunner") as p:
        pub = p | "Published" >> beam.Create(published)
        kept, filtered = p | beam.Create([(r, "en") for r in records]) | FilterRecords(chain, pub)
        assert_that(kept | "KeptIds" >> beam.Map(lambda r: r.id), equal_to([r.id for r in expected.kept]),
                    label="kept")
        assert_that(filtered | "Why" >> beam.Map(lambda f: (f.sample_id, f.filter, f.matched_id, f.reason)),
                    equal_to([(f.sample_id, f.filter, f.matched_id, f.reason) for f in expected.filtered]),
                    label="filtered")
