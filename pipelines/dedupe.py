"""Re-check a staged run for duplicates against a version published after it was generated, by column.

Two runs of one recipe that publish to one dataset: the second was filtered against the version before the
first was published, so its records may repeat the first's. `dedupe_run` checks the run's records again —
exact and near-duplicates within the run and against the given published files, with the run's own recipe
filters (`filters/duplicates.py`, the same code and decision as `apply_filters`' duplicate stage) — and stages
the result as a new run, without building a model of a record:

- texts: `id` and the chain's `text_fields` columns only (`filters/stored_texts.py`), of the run and of the
  published files;
- records: each records file streamed batch by batch (`ParquetFile.iter_batches` → `ParquetWriter`), the
  dropped ids filtered out; dependents of a dropped record (an agent case's rubrics) go with it, as in
  `apply_filters`, which is the one place records of a kind are read whole (only for chains that have them);
- the filtered table is the run's old rows plus the new ones (filter, reason, matched id, score);
- plan, dead letters, seeds, curation files: copied as they are;
- the manifest last: counts and filter counts updated, `parent_runs` = the source run, and `deduped` (the
  source run, the version checked against, what was dropped). Staged through `DataHome.staging` (a hidden
  partial directory renamed into place; on an object store, written in place with the manifest last), so a
  kill leaves no half-written run.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecorpus.pipelines.filters.duplicates import DuplicateSettings, HashedTexts, duplicate_drops
from valuecorpus.pipelines.filters.stored_texts import BATCH_ROWS, text_batches
from valuecorpus.schemas import storage
from valuecorpus.schemas.arrow import arrow_schema, read_records, to_table
from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest, utc_now
from valuecorpus.schemas.run_tables import FilteredSample

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

_REWRITTEN = ("records", "filtered", "filtered.parquet", "manifest.json", "_work")  # not copied as they are


def run_chain(layout: RunLayout) -> Chain:
    """The chain of a generated run, from the recipe its manifest holds."""
    from valuecorpus.pipelines.chains import chain_class
    from valuecorpus.pipelines.recipes import parse_recipe

    manifest = layout.read_manifest()
    if not manifest.recipe:
        raise ValueCorpusError(f"run '{layout.run_id}' has no recipe in its manifest (origin '{manifest.origin}'): "
                               "dedupe re-applies the duplicate filters of the recipe a run was generated with")
    recipe = parse_recipe(manifest.recipe, f"{layout.manifest_path} (recipe)")
    return chain_class(recipe.kind)(recipe, None)


def dedupe_run(home: DataHome, source: RunLayout, new_run_id: str, published_files: list[str],
               published_ref: str | None) -> tuple[RunLayout, dict[str, Any]]:
    """Stage `new_run_id`: `source` without its duplicates (see the module docstring); (layout, summary)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    manifest = source.read_manifest()
    chain = run_chain(source)
    settings = DuplicateSettings.of(chain.recipe.filters)
    kinds = [k for k in manifest.kinds if source.has_table(f"records/{k}")]

    run = HashedTexts(settings)
    text_kinds: list[tuple[str, int]] = []  # (kind, texts) per chunk of `run`
    for kind in kinds:
        for path in source.table_files(f"records/{kind}"):
            for ids, texts in text_batches(chain, storage.url_of(path), BATCH_ROWS):
                run.add(ids, texts)
                text_kinds.append((kind, len(texts)))
    timings["run_texts_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    published = None
    nd = chain.recipe.filters.near_duplicate
    if settings.near and nd.against_published and published_files:
        published = HashedTexts(settings, exact_keys=False)
        for url in published_files:
            for ids, texts in text_batches(chain, url, BATCH_ROWS):
                published.add(ids, texts)
    timings["published_texts_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    drops = duplicate_drops(run, published)
    kind_names = [k for k, _n in text_kinds]
    kind_of = np.repeat(np.arange(len(text_kinds)), [n for _k, n in text_kinds]) if text_kinds else np.empty(0, int)
    dropped_ids = run.id_column().take(pa.array([d.position for d in drops], pa.int64())).to_pylist() if drops else []
    new_rows = [FilteredSample(sample_id=rid, kind=kind_names[int(kind_of[d.position])], filter=d.filter,
                               reason=d.reason, matched_id=d.matched, score=d.score)
                for rid, d in zip(dropped_ids, drops, strict=True)]
    new_rows += _dependents(chain, source, kinds, new_rows)
    checked, published_rows = run.rows, published.rows if published is not None else 0
    del run, published, drops  # the texts and keys are done with before the records are streamed
    timings["decide_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    by_kind: dict[str, list[str]] = {}
    for row in new_rows:
        by_kind.setdefault(row.kind, []).append(row.sample_id)
    with home.staging(new_run_id) as layout:
        counts = {kind: _copy_records(source, layout, kind, by_kind.get(kind, [])) for kind in kinds}
        _copy_other_files(source, layout)
        filtered = _filtered_table(source, new_rows)
        _write_table(layout.filtered, filtered)
        filtered_by = Counter(filtered.column("filter").to_pylist())
        new_by = Counter(r.filter for r in new_rows)
        timings["stage_s"] = time.perf_counter() - t0
        summary = {
            "source_run": source.run_id, "against": published_ref,
            "published_texts": published_rows, "texts_checked": checked,
            "dropped": sum(new_by.values()), "dropped_by": dict(sorted(new_by.items())),
            "settings": {"exact_duplicate": settings.exact,
                         "near_duplicate": None if settings.near is None else {
                             "threshold": settings.near[0], "num_perm": settings.near[1]}},
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        data = manifest.model_dump(mode="json")
        data.update(run_id=new_run_id, created_at=utc_now(), counts={**manifest.counts, **counts},
                    filtered=filtered.num_rows, filtered_by=dict(filtered_by), parent_runs=[source.run_id],
                    deduped=summary)
        layout.write_manifest(RunManifest.model_validate(data))
    return home.run(new_run_id), summary


def _dependents(chain: Chain, source: RunLayout, kinds: list[str], dropped: list[FilteredSample]
                ) -> list[FilteredSample]:
    """A record that is part of a dropped one goes with it (`core._drop_dependents`); only chains that have
    such parts (`Chain.depends_on`) read their records whole."""
    from valuecorpus.pipelines.chains.base import Chain as BaseChain

    if type(chain).depends_on is BaseChain.depends_on or not dropped:
        return []
    why = {f.sample_id: f for f in dropped}
    out = []
    for kind in kinds:
        for path in source.table_files(f"records/{kind}"):
            for record in read_records(storage.url_of(path)):
                parent = chain.depends_on(record)
                if parent is not None and parent in why and record.id not in why:
                    w = why[parent]
                    out.append(FilteredSample(
                        sample_id=record.id, kind=record.kind, filter="dependent",
                        reason=f"part of {w.kind} {parent}, filtered by {w.filter}: {w.reason}", matched_id=parent))
    return out


def _copy_records(source: RunLayout, layout: RunLayout, kind: str, dropped: list[str]) -> int:
    """Stream a kind's records file(s) into one file without the dropped ids; the rows written."""
    drop = pa.array(sorted(set(dropped)), pa.string())
    rows = 0
    layout.records_dir.mkdir(parents=True, exist_ok=True)
    with storage.as_path(layout.records(kind)).open("wb") as sink:
        writer: pq.ParquetWriter | None = None
        for path in source.table_files(f"records/{kind}"):
            with path.open("rb") as fh:
                file = pq.ParquetFile(fh)
                if writer is None:
                    writer = pq.ParquetWriter(sink, file.schema_arrow, compression="zstd")
                for batch in file.iter_batches(batch_size=BATCH_ROWS):
                    if len(drop):
                        batch = batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=drop)))
                    if batch.num_rows:
                        writer.write_batch(batch)
                        rows += batch.num_rows
        if writer is None:  # no file: an empty one of the kind's schema
            from valuecorpus.schemas.records import record_type

            writer = pq.ParquetWriter(sink, arrow_schema(record_type(kind)), compression="zstd")
        writer.close()
    return rows


def _copy_other_files(source: RunLayout, layout: RunLayout) -> None:
    """Everything of the run but its records, filtered table and manifest (plan, dead letters, seeds,
    curation files, ...), byte for byte."""
    fs = storage.filesystem(source.path)
    root = storage.fs_path(source.path).rstrip("/")
    for name in sorted(fs.find(root)):
        rel = name[len(root) + 1:]
        if rel.split("/", 1)[0] in _REWRITTEN:
            continue
        target = layout.path / rel
        if not storage.is_remote(target):
            target.parent.mkdir(parents=True, exist_ok=True)
        with (source.path / rel).open("rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _filtered_table(source: RunLayout, new_rows: list[FilteredSample]) -> pa.Table:
    schema = arrow_schema(FilteredSample)
    parts = [to_table(new_rows, FilteredSample)]
    if source.has_table("filtered"):
        old = source.read_table("filtered")
        parts.insert(0, old.select(schema.names).cast(schema))
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table, sort_keys=[("sample_id", "ascending")]))


def _write_table(path: Any, table: pa.Table) -> None:
    with storage.as_path(path).open("wb") as sink:
        pq.write_table(table, sink, compression="zstd")
