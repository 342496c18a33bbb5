"""Staging: a run directory, built aside and renamed into place.

The run is assembled under `runs/.<run_id>.partial-<pid>` (hidden from `runs`), and renamed to
`runs/<run_id>` only once every file, the manifest last, is written. A killed run leaves at most a hidden
partial directory, removed by the next `generate`; the engine's cache makes the rerun cheap. On an object
store (no rename) the run is written in place and its manifest, written last, makes it a run.

`stage_run` writes tables the launcher holds; `stage_sharded` lets a pipeline's workers write them as shards
into the staging location and only adds the plan before and the manifest after.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest
from valuecorpus.schemas.records import Record, record_type
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample, SeedRow

LAUNCHER_SHARD = "launcher"  # the shard of a sharded table written by the launcher, not by a pipeline worker


@dataclass
class RunOutput:
    """Everything a generation produced, before staging."""

    records: list[Record] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    filtered: list[FilteredSample] = field(default_factory=list)
    seeds: list[SeedRow] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    models: list[str] = field(default_factory=list)
    prompt_versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def write_tables(layout: RunLayout, out: RunOutput, kinds: tuple[str, ...]) -> dict[str, int]:
    """records/<kind>.parquet (every kind the chain emits, empty ones too), plan, dead letters, filtered."""
    from valuecorpus.pipelines.planner import write_plan
    from valuecorpus.schemas.arrow import write_records

    layout.records_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for kind in kinds:
        rows = sorted((r for r in out.records if r.kind == kind), key=lambda r: r.id)
        counts[kind] = write_records(layout.records(kind), rows, record_type(kind))
    write_plan(out.plan, layout.plan)
    dead = sorted(out.dead_letters, key=lambda d: (d.plan_item or "", d.request_id))
    write_records(layout.dead_letters, dead, DeadLetter)
    write_records(layout.filtered, sorted(out.filtered, key=lambda f: f.sample_id), FilteredSample)
    if out.seeds:
        write_records(layout.seeds, out.seeds, SeedRow)
    return counts


def _manifest(run_id: str, recipe: Any, kinds: tuple[str, ...], out: RunOutput, counts: dict[str, int],
              dead_classes: Counter[str], filtered_by: Counter[str], taxonomy_versions: dict[str, str] | None,
              toolkit_version: str) -> RunManifest:
    return RunManifest(
        run_id=run_id, origin="generate", kinds=list(kinds), counts=counts,
        dead_letters=sum(dead_classes.values()), filtered=sum(filtered_by.values()),
        recipe=recipe.model_dump(mode="json"), models=out.models, prompt_versions=out.prompt_versions,
        taxonomy_versions=taxonomy_versions or {}, tokens=out.tokens, cost_usd=round(out.cost_usd, 6),
        timings={k: round(v, 3) for k, v in out.timings.items()}, toolkit_version=toolkit_version,
        plan_items=len(out.plan), dead_letter_classes=dict(dead_classes), filtered_by=dict(filtered_by),
        **out.extra,
    )


def stage_run(home: DataHome, run_id: str, recipe: Any, kinds: tuple[str, ...], out: RunOutput,
              taxonomy_versions: dict[str, str] | None = None, toolkit_version: str = "") -> RunLayout:
    """Write the run: tables first, the manifest last, then rename the directory into place."""
    for record in out.records:
        record.provenance.run_id = run_id
    with home.staging(run_id) as layout:
        counts = write_tables(layout, out, kinds)
        layout.write_manifest(_manifest(run_id, recipe, kinds, out, counts,
                                        Counter(d.error_class for d in out.dead_letters),
                                        Counter(f.filter for f in out.filtered), taxonomy_versions,
                                        toolkit_version))
    return home.run(run_id)


def column_counts(layout: RunLayout, table: str, column: str) -> Counter[str]:
    """How often each value of one column occurs in a (sharded) table, reading that column only."""
    import pyarrow.parquet as pq

    found: Counter[str] = Counter()
    for path in layout.table_files(table):
        with path.open("rb") as fh:
            found.update(pq.ParquetFile(fh).read(columns=[column]).column(column).to_pylist())
    return found


def add_spend(total: dict[str, dict[str, float]], part: dict[str, dict[str, float]]) -> None:
    """Sum per (step, endpoint, model) spend rows into `total` (states, or Beam's partial summaries)."""
    for key, row in part.items():
        into = total.setdefault(key, dict.fromkeys(row, 0))
        for field_name, value in row.items():
            into[field_name] = into.get(field_name, 0) + value


def kept_rows(layout: RunLayout, kinds: tuple[str, ...], fields: dict[str, str]) -> Iterator[Any]:
    """The staged records of a run, shard by shard, as light rows with only what `planner.kept_coverage`
    reads (`provenance.plan_item` and the chain's stratum fields): coverage counted from the records without
    holding them."""
    import pyarrow.parquet as pq

    wanted = set(fields.values())
    for kind in kinds:
        for path in layout.table_files(f"records/{kind}"):
            with path.open("rb") as fh:
                file = pq.ParquetFile(fh)
                columns = ["provenance", *sorted(wanted & set(file.schema_arrow.names))]
                for row in file.read(columns=columns).to_pylist():
                    prov = SimpleNamespace(plan_item=(row.pop("provenance") or {}).get("plan_item"))
                    yield SimpleNamespace(provenance=prov, **row)


def stage_sharded(home: DataHome, run_id: str, recipe: Any, kinds: tuple[str, ...], out: RunOutput,
                  produce: Callable[[RunLayout], dict[str, int]], taxonomy_versions: dict[str, str] | None = None,
                  toolkit_version: str = "", after: Callable[[RunOutput], None] | None = None) -> RunLayout:
    """Stage a run whose tables a pipeline writes: the plan (and the seed stage's seeds and dead letters) first,
    then `produce(layout)` (which writes the shards into the staging location and returns rows per table), then
    empty files for the tables no shard came to, then `after(out)` (to fill in what the produce step learned),
    and the manifest last."""
    from valuecorpus.pipelines.planner import write_plan
    from valuecorpus.schemas.arrow import write_records

    with home.staging(run_id) as layout:
        write_plan(out.plan, layout.plan)
        if out.seeds:
            write_records(layout.seeds, out.seeds, SeedRow)
        if out.dead_letters:  # the launcher's own (the seed stage's): a shard beside the pipeline's
            dead = sorted(out.dead_letters, key=lambda d: (d.plan_item or "", d.request_id))
            write_records(layout.path / "dead_letters" / f"part-{LAUNCHER_SHARD}.parquet", dead, DeadLetter)
        rows = produce(layout)
        empty = {f"records/{k}": record_type(k) for k in kinds} | {"dead_letters": DeadLetter,
                                                                   "filtered": FilteredSample}
        for table, model in empty.items():
            if not layout.table_files(table):
                write_records(layout.path / f"{table}.parquet", [], model)
        if after is not None:
            after(out)
        counts = {k: rows.get(f"records/{k}", 0) for k in kinds}
        layout.write_manifest(_manifest(run_id, recipe, kinds, out, counts,
                                        column_counts(layout, "dead_letters", "error_class"),
                                        column_counts(layout, "filtered", "filter"), taxonomy_versions,
                                        toolkit_version))
    return home.run(run_id)
