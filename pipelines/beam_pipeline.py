"""The chain as an Apache Beam pipeline: the same steps, the same semantics as `runner.run_chain`, on any runner.

    ReadPlan → for each step: Step[name] (BuildRequests → Generate → Join → Absorb) → Finish
             → Filter (filters/beam.py) → Judge → WriteTables → Done

Nothing passes through the launcher but the plan file's row-group numbers and one small summary: workers read
the plan from the run's staging location, filter by grouping on keys (text hashes, MinHash bands), run the
judge through the engine and write records, filtered samples and dead letters as Parquet shards into the run
(`beam_io.WriteTable`). Every branch ends in `Done`, one step that depends on every write and writes the
summary (shard row counts, tokens, cost, prompt versions): a runner that computes only the last step's
lineage, as the Dask runner does, still runs everything. The run becomes visible when the launcher writes
its manifest, after the pipeline succeeded (`generation.py`).

Runner: FnApiRunner in memory by default; options after `--` on the command line reach PipelineOptions
untouched (e.g. `--direct_running_mode=multi_processing --direct_num_workers=2`, the Dask runner, Dataflow).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from valuecorpus.pipelines.beam_io import ReadPlan, WriteTable
from valuecorpus.pipelines.beam_join import JoinOnKey
from valuecorpus.pipelines.chains.base import Chain, SampleState
from valuecorpus.pipelines.chains.runner import apply, finish, initial_state, prepare
from valuecorpus.pipelines.engine.beam import Generate, close_engines
from valuecorpus.pipelines.engine.types import GenerationResult
from valuecorpus.pipelines.filters.beam import FILTERED, KEPT, FilterRecords
from valuecorpus.pipelines.stage import add_spend
from valuecorpus.schemas import errors
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.engine.config import EngineConfig

SUMMARY = "summary.json"


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
        for state, request_ids in groups["state"]:
            outcomes = {o.request_id: o for o in groups["out"]}
            new_state, dead = apply(self.step, state, request_ids, outcomes)
            yield new_state
            for d in dead:
                yield beam.pvalue.TaggedOutput("dead", d)


class _Prepare(beam.DoFn):
    def __init__(self, chain: Chain, index: int) -> None:
        self.chain, self.index = chain, index

    def setup(self) -> None:
        self.step = self.chain.steps()[self.index]

    def process(self, state: SampleState) -> Any:
        yield prepare(self.step, state)


class RunStep(beam.PTransform):
    """One chain step over every sample: BuildRequests → Generate → Absorb."""

    def __init__(self, chain: Chain, index: int, config: EngineConfig, progress: bool = False,
                 batches: int = 0) -> None:
        super().__init__()
        self.chain, self.index, self.config, self.progress = chain, index, config, progress
        self.batches = batches

    def expand(self, states: Any) -> Any:
        chain, index = self.chain, self.index
        prepared = states | "BuildRequests" >> beam.ParDo(_Prepare(chain, index))
        outcomes = (prepared
                    | "Requests" >> beam.FlatMap(lambda p: p[1])
                    | "Generate" >> Generate(self.config, label=chain.step_names()[index], progress=self.progress,
                                             batches=self.batches))
        outcomes = ((outcomes.results, outcomes.dead_letters)
                    | "Outcomes" >> beam.Flatten()
                    | "KeyOutcomes" >> beam.Map(lambda o: (_sample_of(o), o)))
        # the requests themselves went to the model: the join needs only their ids (their order)
        keyed = prepared | "KeyStates" >> beam.Map(lambda p: (p[0].sample_id, (p[0], [r.request_id for r in p[1]])))
        return ({"state": keyed, "out": outcomes}
                | "Join" >> JoinOnKey()
                | "Absorb" >> beam.ParDo(_Absorb(chain, index)).with_outputs("dead", main="states"))


def _finish(state: SampleState, chain: Chain, run_id: str) -> Any:
    records, dead = finish(chain, state)
    language = state.plan_item.get("language", "en")
    for record in records:
        record.provenance.run_id = run_id
        yield record, language
    for d in dead:
        yield beam.pvalue.TaggedOutput("dead", d)


class _JudgeRequest(beam.DoFn):
    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def setup(self) -> None:
        from valuecorpus.pipelines.filters.judge import judge_request_maker

        self.make = judge_request_maker(self.chain)

    def process(self, record: Any) -> Any:
        yield self.make(record)


def _judged(element: tuple[str, dict[str, list[Any]]], chain: Chain) -> Any:
    from valuecorpus.pipelines.filters.judge import judge_verdict

    _rid, joined = element
    for record in joined["record"]:
        kept, filtered, dead = judge_verdict(chain, record, joined["out"][0])
        if kept:
            yield record
        if filtered is not None:
            yield beam.pvalue.TaggedOutput(FILTERED, filtered)
        if dead is not None:
            yield beam.pvalue.TaggedOutput("dead", dead)


class Judge(beam.PTransform):
    """The recipe's LLM judge through the engine: kept records → `kept`, `filtered` and `dead` outputs."""

    def __init__(self, chain: Chain, config: EngineConfig, progress: bool = False, batches: int = 0) -> None:
        super().__init__()
        self.chain, self.config, self.progress, self.batches = chain, config, progress, batches

    def expand(self, records: Any) -> Any:
        from valuecorpus.pipelines.filters.judge import judge_request_id

        chain = self.chain
        outcomes = (records
                    | "JudgeRequests" >> beam.ParDo(_JudgeRequest(chain))
                    | "Generate" >> Generate(self.config, label="judge", progress=self.progress,
                                             batches=self.batches))
        keyed_out = ((outcomes.results, outcomes.dead_letters)
                     | "JudgeOutcomes" >> beam.Flatten()
                     | "KeyJudgeOutcomes" >> beam.Map(lambda o: (o.request_id, o)))
        keyed = records | "KeyRecords" >> beam.Map(lambda r: (judge_request_id(r), r))
        return ({"record": keyed, "out": keyed_out}
                | "JoinVerdicts" >> JoinOnKey()
                | "Verdicts" >> beam.FlatMap(_judged, chain).with_outputs(FILTERED, "dead", main=KEPT))


class _StateSummary(beam.CombineFn):
    """Tokens, cost, prompt versions, models and failed samples over the final states (what the manifest
    says of the whole run), without gathering the states."""

    def create_accumulator(self) -> dict[str, Any]:
        return {"tokens": {}, "cost_usd": 0.0, "prompt_versions": {}, "models": [], "failed": 0, "samples": 0,
                "spend": {}}

    def add_input(self, acc: dict[str, Any], state: SampleState) -> dict[str, Any]:
        for k, v in state.tokens.items():
            acc["tokens"][k] = acc["tokens"].get(k, 0) + v
        acc["cost_usd"] += state.cost_usd
        acc["prompt_versions"].update(state.prompt_versions)
        acc["models"] = sorted(set(acc["models"]) | set(state.models))
        acc["failed"] += int(bool(state.failed))
        acc["samples"] += 1
        add_spend(acc["spend"], state.spend)
        return acc

    def merge_accumulators(self, accs: Any) -> dict[str, Any]:
        out = self.create_accumulator()
        for acc in accs:
            for k, v in acc["tokens"].items():
                out["tokens"][k] = out["tokens"].get(k, 0) + v
            out["cost_usd"] += acc["cost_usd"]
            out["prompt_versions"].update(acc["prompt_versions"])
            out["models"] = sorted(set(out["models"]) | set(acc["models"]))
            out["failed"] += acc["failed"]
            out["samples"] += acc["samples"]
            add_spend(out["spend"], acc["spend"])
        return out

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return acc


def _table_of(item: Any) -> str:
    if isinstance(item, DeadLetter):
        return "dead_letters"
    if isinstance(item, FilteredSample):
        return "filtered"
    return f"records/{item.kind}"


def _id_of(item: Any) -> str:
    if isinstance(item, DeadLetter):
        return f"{item.plan_item}|{item.request_id}"
    if isinstance(item, FilteredSample):
        return item.sample_id
    return item.id


def _sort_key(item: Any) -> Any:
    """The order `stage.write_tables` gives each table."""
    if isinstance(item, DeadLetter):
        return (item.plan_item or "", item.request_id)
    if isinstance(item, FilteredSample):
        return (item.sample_id, "")
    return (item.id, "")


def _model_of(table: str) -> Any:
    from valuecorpus.schemas.records import record_type

    if table == "dead_letters":
        return DeadLetter
    if table == "filtered":
        return FilteredSample
    return record_type(table.removeprefix("records/"))


def _write_summary(parts: list[tuple[str, Any]], url: str) -> str:
    from valuecorpus.schemas.storage import as_path, write_bytes

    counts: dict[str, int] = {}
    summary: dict[str, Any] = _StateSummary().create_accumulator()
    for tag, value in parts:
        if tag == "written":
            counts[value[0]] = counts.get(value[0], 0) + value[1]
        elif tag == "summary":
            summary = value
    write_bytes(as_path(url), json.dumps({**summary, "counts": counts}, sort_keys=True).encode())
    return url


def _published_texts(url: str, chain: Chain) -> Any:
    from valuecorpus.pipelines.filters.stored_texts import stored_texts

    yield from stored_texts(chain, [url])


class ChainPipeline(beam.PTransform):
    """Plan file → shards of records, filtered samples and dead letters under `out_url`, and the summary."""

    def __init__(self, chain: Chain, config: EngineConfig, plan_url: str, out_url: str, shards: int,
                 published_files: list[str] | None = None, published: list[tuple[str, str]] | None = None,
                 progress: bool = False, run_id: str = "", batches: int = 0) -> None:
        super().__init__()
        self.run_id, self.batches = run_id, batches
        self.chain, self.config, self.plan_url, self.out_url = chain, config, plan_url, out_url.rstrip("/")
        self.shards, self.progress = shards, progress
        self.published_files, self.published = published_files or [], published or []

    def _published(self, pbegin: Any) -> Any:
        parts = []
        if self.published_files:
            parts.append(pbegin
                         | "PublishedFiles" >> beam.Create(self.published_files)
                         | "SpreadFiles" >> beam.Reshuffle()
                         | "PublishedTexts" >> beam.FlatMap(_published_texts, self.chain))
        if self.published:
            parts.append(pbegin | "PublishedPairs" >> beam.Create(self.published))
        if not parts:
            return None
        return tuple(parts) | "Published" >> beam.Flatten()

    def expand(self, pbegin: Any) -> Any:
        chain = self.chain
        states = (pbegin
                  | "Plan" >> ReadPlan(self.plan_url)
                  | "States" >> beam.Map(initial_state))
        dead_parts = []
        for i, step in enumerate(chain.steps()):
            out = states | f"Step[{step.name}]" >> RunStep(chain, i, self.config, self.progress, self.batches)
            states = out.states
            dead_parts.append(out.dead)
        finished = states | "Finish" >> beam.FlatMap(_finish, chain, self.run_id).with_outputs("dead", main="records")
        dead_parts.append(finished.dead)
        kept, filtered = finished.records | "Filter" >> FilterRecords(chain, self._published(pbegin))
        filtered_parts = [filtered]
        if chain.recipe.filters.judge is not None:
            judged = kept | "Judge" >> Judge(chain, self.config, self.progress, self.batches)
            kept = judged[KEPT]
            filtered_parts.append(judged[FILTERED])
            dead_parts.append(judged.dead)
        shared = []
        if type(chain).shared_records is not Chain.shared_records:  # records the kept ones refer to, once each
            shared.append(kept
                          | "SharedOf" >> beam.FlatMap(lambda r: chain.shared_records([r]))
                          | "KeyShared" >> beam.Map(lambda r: (r.id, r))
                          | "GroupShared" >> beam.GroupByKey()
                          | "OneEach" >> beam.Map(lambda kv: next(iter(kv[1]))))
        rows = ((kept, *shared, *filtered_parts, *dead_parts)
                | "AllRows" >> beam.Flatten()
                | "ByTable" >> beam.Map(lambda item: (_table_of(item), item)))
        written = rows | "WriteTables" >> WriteTable(self.out_url, self.shards, _id_of, _sort_key, _model_of)
        # combines without defaults: a default would be a side input, which the Dask runner computes inside a
        # task, waiting on the cluster from one of its own workers (a deadlock with single-thread workers)
        summary = states | "Summary" >> beam.CombineGlobally(_StateSummary()).without_defaults()
        tagged = tuple[str, Any]  # one coder for the three inputs (else the in-memory runner re-encodes them)
        start = pbegin | "Start" >> beam.Create([("start", None)]).with_output_types(tagged)  # runs on empty runs
        return ((start,
                 written | "TagWritten" >> beam.Map(lambda tr: ("written", tr)).with_output_types(tagged),
                 summary | "TagSummary" >> beam.Map(lambda s: ("summary", s)).with_output_types(tagged))
                | "Everything" >> beam.Flatten()
                | "Gather" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
                | "Done" >> beam.Map(_write_summary, f"{self.out_url}/_work/{SUMMARY}"))


def pipeline_options(beam_args: list[str]) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    args = [_our_dask_runner(a) for a in beam_args]
    if not any(a.startswith("--runner") for a in args):
        # the default DirectRunner tries to download the Prism binary first; FnApiRunner honours
        # --direct_running_mode and --direct_num_workers
        args.append("--runner=FnApiRunner")
    return PipelineOptions(args)


def request_batches(options: Any, plan_rows: int) -> int:
    """0 (requests stream through the engine, outcomes of a bundle's tail emitted in finish_bundle) on runners
    that keep what finish_bundle emits; on the Dask runner, which drops it, the number of batches (about 512
    samples each, at least 2) whose outcomes are emitted within process()."""
    from apache_beam.options.pipeline_options import StandardOptions

    runner = str(options.view_as(StandardOptions).runner or "")
    if "dask" not in runner.lower():
        return 0
    return max(2, -(-plan_rows // 512))


def _our_dask_runner(arg: str) -> str:
    """Beam's Dask runner, named by its path or as `DaskRunner`, becomes ours (bounded partitions)."""
    if arg in ("--runner=DaskRunner", "--runner=apache_beam.runners.dask.dask_runner.DaskRunner"):
        return "--runner=valuecorpus.pipelines.dask_runner.DaskRunner"
    return arg


def for_workers(config: EngineConfig) -> EngineConfig:
    """Ask the endpoint once, here, what every worker would ask (dialect, key and model), and hand the
    answers over; the key stays out of the pickled pipeline (workers read it from `credential_env`, which local
    worker processes inherit from this one)."""
    from valuecorpus.pipelines.engine.core import Engine

    if config.backend != "local":
        with Engine(config.model_copy(update={"progress": False, "max_cost_usd": None,
                                              "max_tokens_total": None})) as engine:
            dialect, verified = engine.check_endpoint()
        config = config.model_copy(update={"dialect": dialect or config.dialect, "endpoint_verified": verified})
        key = config.api_key.get_secret_value() if config.api_key is not None else None
        if key and not os.environ.get(config.credential_env):
            os.environ[config.credential_env] = key
    return config.worker_copy()


def run_beam(chain: Chain, config: EngineConfig, beam_args: list[str], plan_url: str, out_url: str,
             shards: int = 1, published_files: list[str] | None = None,
             published: list[tuple[str, str]] | None = None, progress: bool = False,
             run_id: str = "", plan_rows: int = 0, debug: bool = False) -> dict[str, Any]:
    """Run the pipeline; the tables land as shards under `out_url`. Returns the summary (row counts per table,
    tokens, cost, prompt versions, models, failed samples) and the engine's counters (`engine`)."""
    from valuecorpus.schemas.storage import as_path

    config = for_workers(config)
    options = pipeline_options(beam_args)
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "Chain" >> ChainPipeline(chain, config, plan_url, out_url, shards, published_files, published,
                                            progress, run_id, request_batches(options, plan_rows))
    try:
        with _quiet_beam(debug, options):
            result = pipeline.run()
            result.wait_until_finish()
    except Exception as exc:
        user_error = _user_error(exc)
        if user_error is None or debug:
            raise
        raise user_error.with_traceback(None) from None
    finally:
        close_engines()  # the in-memory runner's engines: flush the cache, free the model
    summary = json.loads(as_path(f"{out_url.rstrip('/')}/_work/{SUMMARY}").read_text(encoding="utf-8"))
    summary["engine"] = _engine_stats(result)
    return summary


_STEP_NOTE = re.compile(r" \[while running '[^']*'\]")
_WORKER_ERROR = re.compile(r"valuecorpus\.schemas\.errors\.(\w+): (.+)")


@contextmanager
def _quiet_beam(debug: bool, options: Any) -> Iterator[None]:
    """Beam logs a failing DoFn's traceback before it re-raises, and multi-processing workers write their INFO
    logs to the inherited stderr: the user gets one `error:` line instead (the CLI prints it). Everything
    shows with --debug; a failure that is not the user's replays the workers' output."""
    from apache_beam.options.pipeline_options import DirectOptions

    logger = logging.getLogger("apache_beam")
    level = logger.level
    capture, saved = None, None
    if not debug:
        logger.setLevel(logging.CRITICAL + 1)
        if options.view_as(DirectOptions).direct_running_mode == "multi_processing":
            sys.stderr.flush()
            capture, saved = tempfile.TemporaryFile(), os.dup(2)  # noqa: SIM115 (closed in finally)
            os.dup2(capture.fileno(), 2)  # the worker processes inherit descriptor 2
    try:
        yield
    except Exception as exc:
        if capture is not None and saved is not None and _user_error(exc) is None:
            capture.seek(0)
            os.write(saved, capture.read()[-20000:])
        raise
    finally:
        logger.setLevel(level)
        if capture is not None and saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.close()


def _user_error(exc: BaseException) -> ValueCorpusError | None:
    """The error a user can fix behind Beam's wrapping: the same exception (in-memory runner, its message
    tagged with the step), one chained to it, or the text a worker process sent back (multi-processing)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ValueCorpusError):
            seen.args = (_STEP_NOTE.sub("", str(seen)),)
            return seen
        seen = seen.__cause__ or seen.__context__
    match = _WORKER_ERROR.search(str(exc))
    if match:
        kind = getattr(errors, match[1], None)
        if isinstance(kind, type) and issubclass(kind, ValueCorpusError):
            found = ValueCorpusError.__new__(kind)
            found.args = (_STEP_NOTE.sub("", match[2]).strip(),)
            return found
    return None


def _engine_stats(result: Any) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    try:
        for counter in result.metrics().query()["counters"]:
            if counter.key.metric.namespace == "engine":
                name = counter.key.metric.name
                stats[name] = stats.get(name, 0) + int(counter.committed or counter.attempted or 0)
    except Exception:  # metrics are informative only; some runners (Dask) do not report them
        pass
    return stats
