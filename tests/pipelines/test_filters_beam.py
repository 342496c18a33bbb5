"""The duplicate filters' Beam form (GroupByKey on text hashes, MinHash bands as keys) keeps and drops exactly
what `apply_filters` does on the same input, reasons and matches included: within the run and against
published texts."""

from __future__ import annotations

import random

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.filters.beam import FilterRecords
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.schemas.records import Dilemma, Provenance, stable_id


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
    recipe = load_recipe("dilemmas", {"filters": {"language": {"enabled": False}, "leakage": False,
                                                  "length": {"min_chars": 1, "max_chars": 100000}}})
    chain = chain_class(recipe.kind)(recipe)
    records, published = _records(240, seed=3)
    expected = apply_filters(chain, records, published)
    reasons = {f.filter for f in expected.filtered}
    assert {"exact_duplicate", "near_duplicate"} <= reasons  # the input exercises both
    assert any((f.reason or "").endswith(")") and "published" in f.reason for f in expected.filtered)
    with beam.Pipeline(runner="FnApiRunner") as p:
        pub = p | "Published" >> beam.Create(published)
        kept, filtered = p | beam.Create([(r, "en") for r in records]) | FilterRecords(chain, pub)
        assert_that(kept | "KeptIds" >> beam.Map(lambda r: r.id), equal_to([r.id for r in expected.kept]),
                    label="kept")
        assert_that(filtered | "Why" >> beam.Map(lambda f: (f.sample_id, f.filter, f.matched_id, f.reason)),
                    equal_to([(f.sample_id, f.filter, f.matched_id, f.reason) for f in expected.filtered]),
                    label="filtered")
