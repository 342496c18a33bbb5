"""Staging: a run directory, built aside and renamed into place.

The run is assembled under `runs/.<run_id>.partial-<pid>` (hidden from `runs`), and renamed to
`runs/<run_id>` only once every file, the manifest last, is written. A killed run leaves at most a hidden
partial directory, removed by the next `generate`; the engine's cache makes the rerun cheap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest
from valuecorpus.schemas.records import Record, record_type
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample, SeedRow


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


def stage_run(home: DataHome, run_id: str, recipe: Any, kinds: tuple[str, ...], out: RunOutput,
              taxonomy_versions: dict[str, str] | None = None, toolkit_version: str = "") -> RunLayout:
    """Write the run: tables first, the manifest last, then rename the directory into place."""
    for record in out.records:
        record.provenance.run_id = run_id
    with home.staging(run_id) as layout:
        counts = write_tables(layout, out, kinds)
        manifest = RunManifest(
            run_id=run_id, origin="generate", kinds=list(kinds), counts=counts,
            dead_letters=len(out.dead_letters), filtered=len(out.filtered),
            recipe=recipe.model_dump(mode="json"), models=out.models, prompt_versions=out.prompt_versions,
            taxonomy_versions=taxonomy_versions or {}, tokens=out.tokens, cost_usd=round(out.cost_usd, 6),
            timings={k: round(v, 3) for k, v in out.timings.items()}, toolkit_version=toolkit_version,
            plan_items=len(out.plan),
            dead_letter_classes=dict(Counter(d.error_class for d in out.dead_letters)),
            filtered_by=dict(Counter(f.filter for f in out.filtered)),
            **out.extra,
        )
        layout.write_manifest(manifest)
    return home.run(run_id)
