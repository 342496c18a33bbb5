"""The Beam pipeline's joins: `JoinOnKey` groups what `CoGroupByKey` groups, and no Flatten of the chain's
pipeline makes the in-memory runner re-encode its inputs (a Flatten whose inputs' coders differ from its own
gets a transcode stage per input: every element decoded and pickled again)."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.runners import pipeline_context
from apache_beam.testing.util import assert_that, equal_to

from valuecorpus.pipelines.beam_join import JoinOnKey
from valuecorpus.pipelines.beam_pipeline import ChainPipeline, pipeline_options
from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.engine.config import EngineConfig
from valuecorpus.pipelines.planner import make_plan, write_plan
from valuecorpus.pipelines.recipes import load_recipe


def _normalised(element: tuple[str, dict[str, list]]) -> tuple[str, tuple]:
    key, grouped = element
    return key, tuple((tag, tuple(sorted(map(repr, values)))) for tag, values in sorted(grouped.items()))


def test_join_on_key_groups_as_cogroupbykey() -> None:
    left = [("a", 1), ("a", 2), ("b", {"x": [1]}), ("only-left", None)]
    right = [("a", "r"), ("b", ("t", 1)), ("only-right", 3.5), ("b", "s")]
    with beam.Pipeline(options=pipeline_options([])) as p:
        pcolls = {"left": p | "L" >> beam.Create(left), "right": p | "R" >> beam.Create(right)}
        ours = pcolls | "Ours" >> JoinOnKey() | "NormOurs" >> beam.Map(_normalised)
        beams = pcolls | "Beams" >> beam.CoGroupByKey() | "NormBeams" >> beam.Map(_normalised)
        expected = [_normalised(("a", {"left": [1, 2], "right": ["r"]})),
                    _normalised(("b", {"left": [{"x": [1]}], "right": [("t", 1), "s"]})),
                    _normalised(("only-left", {"left": [None], "right": []})),
                    _normalised(("only-right", {"left": [], "right": [3.5]}))]
        assert_that(ours, equal_to(expected), label="OursAsExpected")
        assert_that(beams, equal_to(expected), label="BeamsAsExpected")


def test_no_flatten_of_the_chain_pipeline_reencodes_its_inputs(tmp_path: Path) -> None:
    recipe = load_recipe("dilemmas", {"count": 4, "filters": {"judge": {"template": "dilemmas/judge",
                                                                         "min_score": 5}}})
    chain = chain_class(recipe.kind)(recipe)
    write_plan(make_plan(recipe), tmp_path / "plan.parquet")
    pipeline = beam.Pipeline(options=pipeline_options([]))
    _ = pipeline | ChainPipeline(chain, EngineConfig(base_url="http://127.0.0.1:9/v1", model="m"),
                                 str(tmp_path / "plan.parquet"), str(tmp_path / "out"), 1,
                                 published=[("p1", "a published text")])
    proto = pipeline.to_runner_api()
    components = proto.components
    coders = pipeline_context.PipelineContext(components).coders
    flattens = [t for t in components.transforms.values() if t.spec.urn == "beam:transform:flatten:v1"]
    assert len(flattens) >= 10  # the steps' joins, the filters' joins, the tables, the summary
    mismatched = []
    for t in flattens:
        out = components.pcollections[next(iter(t.outputs.values()))].coder_id
        for pcoll in t.inputs.values():
            coder = components.pcollections[pcoll].coder_id
            if coder != out:
                mismatched.append((t.unique_name, repr(coders.get_by_id(coder)), repr(coders.get_by_id(out))))
    assert mismatched == []
