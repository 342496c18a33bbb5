"""The chain as an Apache Beam pipeline: the same steps, the same semantics as `runner.run_chain`.

    Plan → for each step: Step[name] (BuildRequests → Generate → Absorb) → Finish → Filter → WriteShards

`BuildRequests` and `Absorb` call `runner.prepare` / `runner.apply`, the plain loop's own halves; outcomes
find their sample through the request's `plan_item` metadata (results) or the dead letter's `plan_item`.
Filtering needs every record at once (duplicates keep the smallest id), so it runs as one global step; the
result is written as Parquet shards of JSON envelopes into a work directory, which the stage step reads.

Runner: FnApiRunner in memory by default; options after `--` on the command line reach PipelineOptions
untouched (e.g. `--direct_running_mode=multi_processing --direct_num_workers=2`, or a Dataflow runner).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from valuecorpus.pipelines.chains.base import Chain, SampleState
from valuecorpus.pipelines.chains.runner import apply, finish, initial_state, prepare
from valuecorpus.pipelines.engine.beam import Generate, close_engines
from valuecorpus.pipelines.engine.types import GenerationResult
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.schemas.records import RECORD_TYPES
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.engine.config import EngineConfig



def _sample_of(outcome: GenerationResult | DeadLetter) -> str:
    if isinstance(outcome, DeadLetter):
        return outcome.plan_item or ""
    return str(outcome.metadata.get("plan_item", ""))


class _Absorb(beam.DoFn):
    def __init__(self, chain: Chain, index: int) -> None:
        self.chain, self.index = chain, index

    def setup(self) -> None:
        self.step = self.chain.steps()[self.index]

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Any:
        _key, groups = element
        for state, reqs in groups["state"]:
            outcomes = {o.request_id: o for o in groups["out"]}
            new_state, dead = apply(self.step, state, reqs, outcomes)
            yield new_state
            for d in dead:
                yield beam.pvalue.TaggedOutput("dead", d)


class RunStep(beam.PTransform):
    """One chain step over every sample: BuildRequests → Generate → Absorb."""

    def __init__(self, chain: Chain, index: int, config: EngineConfig, progress: bool = False) -> None:
        super().__init__()
        self.chain, self.index, self.config, self.progress = chain, index, config, progress

    def expand(self, states: Any) -> Any:
        chain, index = self.chain, self.index
        prepared = states | "BuildRequests" >> beam.Map(lambda s: prepare(chain.steps()[index], s))
        outcomes = (prepared
                    | "Requests" >> beam.FlatMap(lambda p: p[1])
                    | "Generate" >> Generate(self.config, redistribute=False, label=chain.step_names()[index],
                                             progress=self.progress))
        outcomes = ((outcomes.results, outcomes.dead_letters)
                    | "Outcomes" >> beam.Flatten()
                    | "KeyOutcomes" >> beam.Map(lambda o: (_sample_of(o), o)))
        keyed = prepared | "KeyStates" >> beam.Map(lambda p: (p[0].sample_id, p))
        return ({"state": keyed, "out": outcomes}
                | "Join" >> beam.CoGroupByKey()
                | "Absorb" >> beam.ParDo(_Absorb(chain, index)).with_outputs("dead", main="states"))


def _finish(chain: Chain, state: SampleState) -> Any:
    records, dead = finish(chain, state)
    yield from records
    for d in dead:
        yield beam.pvalue.TaggedOutput("dead", d)


def _filter(records: list[Any], chain: Chain, published: list[tuple[str, str]],
            languages: dict[str, str]) -> Any:
    result = apply_filters(chain, records, published, languages)
    yield from result.kept
    for f in result.filtered:
        yield beam.pvalue.TaggedOutput("filtered", f)


def _envelope(table: str) -> Any:
    def wrap(item: Any) -> dict[str, str]:
        kind = getattr(item, "kind", "") if table == "records" else table
        return {"table": table, "kind": kind, "payload": item.model_dump_json()}
    return wrap


class ChainPipeline(beam.PTransform):
    """Plan items → records, filtered samples, dead letters and final states, as envelopes."""

    def __init__(self, chain: Chain, plan: list[dict[str, Any]], config: EngineConfig,
                 published: list[tuple[str, str]], languages: dict[str, str], progress: bool = False) -> None:
        super().__init__()
        self.chain, self.plan, self.config = chain, plan, config
        self.published, self.languages, self.progress = published, languages, progress

    def expand(self, pbegin: Any) -> Any:
        chain = self.chain
        states = (pbegin
                  | "Plan" >> beam.Create(self.plan)
                  | "States" >> beam.Map(initial_state))
        dead_parts = []
        for i, step in enumerate(chain.steps()):
            out = states | f"Step[{step.name}]" >> RunStep(chain, i, self.config, self.progress)
            states = out.states
            dead_parts.append(out.dead)
        finished = states | "Finish" >> beam.FlatMap(lambda s: _finish(chain, s)).with_outputs("dead", main="records")
        dead_parts.append(finished.dead)
        filtered = (finished.records
                    | "Gather" >> beam.combiners.ToList()
                    | "Filter" >> beam.FlatMap(_filter, chain, self.published, self.languages)
                    .with_outputs("filtered", main="kept"))
        return (
            filtered.kept | "WrapRecords" >> beam.Map(_envelope("records")),
            filtered.filtered | "WrapFiltered" >> beam.Map(_envelope("filtered")),
            tuple(dead_parts) | "AllDead" >> beam.Flatten() | "WrapDead" >> beam.Map(_envelope("dead")),
            states | "WrapStates" >> beam.Map(_envelope("states")),
        ) | "Envelopes" >> beam.Flatten()


def pipeline_options(beam_args: list[str]) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        # the default DirectRunner tries to download the Prism binary first; FnApiRunner honours
        # --direct_running_mode and --direct_num_workers
        args.append("--runner=FnApiRunner")
    return PipelineOptions(args)


def run_beam(chain: Chain, plan: list[dict[str, Any]], config: EngineConfig, beam_args: list[str],
             work_dir: Path, published: list[tuple[str, str]] | None = None,
             languages: dict[str, str] | None = None, progress: bool = False,
             ) -> tuple[list[Any], list[Any], list[Any], list[Any], dict]:
    """Run the pipeline; returns (kept records, filtered samples, dead letters, final states, engine stats)."""
    import pyarrow as pa

    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    schema = pa.schema([("table", pa.string()), ("kind", pa.string()), ("payload", pa.string())])
    options = pipeline_options(beam_args)
    pipeline = beam.Pipeline(options=options)
    _ = (pipeline
         | "Chain" >> ChainPipeline(chain, plan, config, published or [], languages or {}, progress)
         | "WriteShards" >> beam.io.WriteToParquet(str(work_dir / "part"), schema, file_name_suffix=".parquet"))
    result = pipeline.run()
    result.wait_until_finish()
    close_engines()  # the in-memory runner's engines: flush the cache, free the model
    stats = _engine_stats(result)
    tables = _read_shards(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    return tables["records"], tables["filtered"], tables["dead"], tables["states"], stats


def _engine_stats(result: Any) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    try:
        for counter in result.metrics().query()["counters"]:
            if counter.key.metric.namespace == "engine":
                name = counter.key.metric.name
                stats[name] = stats.get(name, 0) + int(counter.committed or counter.attempted or 0)
    except Exception:  # metrics are informative only; some runners do not report them
        pass
    return stats


def _read_shards(work_dir: Path) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    out: dict[str, list[Any]] = {"records": [], "filtered": [], "dead": [], "states": []}
    for shard in sorted(work_dir.glob("part*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            payload = json.loads(row["payload"])
            table = row["table"]
            if table == "records":
                out[table].append(RECORD_TYPES[row["kind"]].model_validate(payload))
            elif table == "filtered":
                out[table].append(FilteredSample.model_validate(payload))
            elif table == "dead":
                out[table].append(DeadLetter.model_validate(payload))
            else:
                out[table].append(SampleState.model_validate(payload))
    return out
