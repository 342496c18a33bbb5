"""Synthetic DailyDilemmas-shaped rows for the warehouse benchmark, made by DuckDB (not by an LLM).

Each row is a valid `dilemma` record: two actions with two or three values each, drawn from the
`dailydilemmas_values` taxonomy with their five theory labels, situations built from a 1,024-word vocabulary by
hashing the row number (so texts differ and near-duplicates are rare), a topic group per row, and provenance
pointing at a plan item. The run is staged like a generated run: records, a plan with one stratum per topic
group, empty dead letters and filtered tables, and the manifest last.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from valuecorpus.schemas.arrow import arrow_schema, write_records
from valuecorpus.schemas.layout import DataHome, RunLayout, RunManifest
from valuecorpus.schemas.records import Dilemma
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

TOPIC_GROUPS = ["career", "family", "friendship", "health", "money", "school", "community", "work", "romance",
                "neighbours"]
CHUNK = 100_000


def _words() -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "we", "zu", "pa", "be", "do", "fi", "gu", "ho"]
    return [a + b + c for a in syllables for b in syllables for c in syllables[:4]]  # 1,024 words


def _sentence(seed: str, k: int, words: int) -> str:
    picks = " || ' ' || ".join(f"w[1 + (hash({seed} || '{k}:{j}') % 1024)::INT]" for j in range(words))
    return picks


def _sql(start: int, stop: int) -> str:
    action = ("{{'action_type': {t}, 'action': 'To ' || {act}, 'negative_consequence': 'Then ' || {neg}, "
              "'parties_direct': ['You'], 'parties_indirect': ['a neighbour'], "
              "'values_direct': [v[{a}].name], 'values_indirect': [v[{b}].name], "
              "'reason_direct': ['because ' || {rd}], 'reason_indirect': ['because ' || {ri}], "
              "'values': [{va}, {vb}], 'background': NULL, 'model_answers': []}}")

    def val(i: str, typ: str) -> str:
        return (f"{{'name': v[{i}].name, 'type': '{typ}', 'wvs': v[{i}].wvs, 'mft': v[{i}].mft, "
                f"'virtue': v[{i}].virtue, 'emotion': v[{i}].emotion, 'maslow': v[{i}].maslow}}")

    s = "i::VARCHAR"
    acts = []
    for n, kind in enumerate(("'to_do'", "'not_to_do'")):
        a, b = f"1 + (hash(i, {2 * n}) % 301)::INT", f"1 + (hash(i, {2 * n + 1}) % 301)::INT"
        acts.append(action.format(t=kind, act=_sentence(s, 10 + n, 6), neg=_sentence(s, 20 + n, 12),
                                  rd=_sentence(s, 30 + n, 5), ri=_sentence(s, 40 + n, 5), a=a, b=b,
                                  va=val(a, "direct"), vb=val(b, "indirect")))
    return f"""
        SELECT substr(md5('synthetic:' || i), 1, 24) AS id,
          {{'origin': 'generate', 'source_dataset': NULL, 'source_file': NULL, 'source_key': NULL,
            'recipe': 'synthetic', 'run_id': NULL, 'plan_item': substr(md5('synthetic:' || i), 1, 24),
            'seed': i, 'generator_model': 'synthetic', 'endpoint_kind': NULL, 'prompt_templates': [],
            'taxonomy_versions': ['dailydilemmas_values@1.0.0'], 'cache_keys': [], 'annotations': [], 'edits': [],
            'validation': NULL}} AS provenance,
          NULL::BIGINT AS source_idx,
          {_sentence(s, 1, 4)} AS basic_situation,
          'You are ' || {_sentence(s, 2, 30)} || '. What do you do?' AS dilemma_situation,
          (i % 10)::BIGINT AS topic,
          g[1 + (i % 10)::INT] AS topic_group,
          [{acts[0]}, {acts[1]}] AS actions
        FROM range({start}, {stop}) t(i), (SELECT list(word) AS w FROM words), (SELECT list(value ORDER BY k) AS v
             FROM vals), (SELECT {TOPIC_GROUPS!r}::VARCHAR[] AS g)
    """


def stage_synthetic(home: DataHome, run_id: str, rows: int, offset: int = 0, dataset: str = "bench") -> RunLayout:
    """Stage `rows` synthetic dilemmas (row numbers from `offset`) as a run, streamed in chunks of 100,000. Its
    manifest holds the shipped `dilemmas` recipe (output: `dataset`), whose filters `valuecorpus dedupe`
    applies."""
    import duckdb

    from valuecorpus.pipelines.recipes import load_recipe

    recipe = load_recipe("dilemmas", {"count": rows}).model_dump(mode="json")
    recipe["output"]["dataset"] = dataset

    tax = load_taxonomy("dailydilemmas_values")
    values = [{"k": i, "name": n.name, **{f: n.labels.get(f) for f in ("wvs", "mft", "virtue", "emotion", "maslow")}}
              for i, n in enumerate(tax.nodes_at(None))]
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 2")
    words = pa.table({"word": _words()})
    vals = pa.Table.from_pylist([{"k": v["k"], "value": {k: v[k] for k in v if k != "k"}} for v in values])
    con.register("words", words)
    con.register("vals", vals)
    schema = arrow_schema(Dilemma)
    with home.staging(run_id) as layout:
        layout.records_dir.mkdir(parents=True)
        writer = pq.ParquetWriter(layout.records("dilemma"), schema, compression="zstd")
        plan_writer = None
        for start in range(offset, offset + rows, CHUNK):
            stop = min(offset + rows, start + CHUNK)
            table = con.sql(_sql(start, stop)).to_arrow_table().cast(schema)
            writer.write_table(table)
            plan = con.sql(f"SELECT (i)::BIGINT AS index, substr(md5('synthetic:' || i), 1, 24) AS sample_id, "
                           f"i::BIGINT AS seed, 'topic_group=' || g[1 + (i % 10)::INT] AS stratum, "
                           f"g[1 + (i % 10)::INT] AS topic_group, '{{}}' AS item FROM range({start}, {stop}) t(i), "
                           f"(SELECT {TOPIC_GROUPS!r}::VARCHAR[] AS g)"
                           ).to_arrow_table()
            if plan_writer is None:
                plan_writer = pq.ParquetWriter(layout.plan, plan.schema)
            plan_writer.write_table(plan)
        writer.close()
        if plan_writer is not None:
            plan_writer.close()
        write_records(layout.dead_letters, [], DeadLetter)
        write_records(layout.filtered, [], FilteredSample)
        layout.write_manifest(RunManifest(run_id=run_id, origin="generate", kinds=["dilemma"],
                                          counts={"dilemma": rows}, models=["synthetic"], recipe=recipe,
                                          taxonomy_versions={tax.name: tax.version}, plan_items=rows))
    return home.run(run_id)

