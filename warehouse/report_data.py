"""The figures of a version's report, gathered with DuckDB over the version's Parquet files and from the runs of
its lineage that are still under the data home (plans, dead letters, filtered samples, curation results).

Every figure is aggregated here (counts, histogram bins), so the page stays small however many rows a version
holds. Which columns hold value labels, value conflicts and texts is said per record kind below."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome, RunLayout
from valuecorpus.warehouse.lineage import lineage_runs
from valuecorpus.warehouse.versions import VersionInfo, kind_files

# The value names of one action of a dilemma: its annotated values, or the raw direct / indirect lists.
_ACTION_VALUES = ("CASE WHEN len(a.\"values\") > 0 THEN list_transform(a.\"values\", lambda x: x.name) "
                  "ELSE list_filter(list_concat(a.values_direct, a.values_indirect), lambda x: x IS NOT NULL) END")

# Per kind: SQL over the view `t` giving one value label per row (`label`).
LABELS_SQL = {
    "dilemma": f"SELECT unnest({_ACTION_VALUES}) AS label FROM (SELECT unnest(actions) AS a FROM t)",
    "value_rule": "SELECT unnest(list_concat(core_values, derived_values)) AS label FROM t",
    "rule_pair_dilemma": "SELECT unnest(list_concat(rule_1.core_values, rule_2.core_values)) AS label FROM t",
    "agent_case": "SELECT unnest(value_items) AS label FROM t",
    "preference_pair": "SELECT unnest([chosen_value, rejected_value]) AS label FROM t",
}
# Per kind: SQL giving the two sides of each value conflict (`a`, `b`).
CONFLICTS_SQL = {
    "dilemma": (f"WITH acts AS (SELECT id, a.action_type AS side, {_ACTION_VALUES} AS vals "
                "FROM (SELECT id, unnest(actions) AS a FROM t)), "
                "v AS (SELECT id, side, unnest(vals) AS value FROM acts) "
                "SELECT x.value AS a, y.value AS b FROM v x JOIN v y ON x.id = y.id "
                "AND x.side = 'to_do' AND y.side = 'not_to_do'"),
    "rule_pair_dilemma": ("SELECT a, unnest(bs) AS b FROM (SELECT unnest(rule_1.core_values) AS a, "
                          "rule_2.core_values AS bs FROM t)"),
    "agent_case": "SELECT value_items[1] AS a, value_items[2] AS b FROM t WHERE len(value_items) = 2",
    "preference_pair": "SELECT chosen_value AS a, rejected_value AS b FROM t",
}
# Per kind: the text columns whose lengths (characters) are plotted.
TEXT_COLUMNS = {
    "dilemma": ["dilemma_situation"], "perspective": ["description"], "value_rule": ["rule"],
    "rule_pair_dilemma": ["scene"], "preference_pair": ["prompt", "chosen", "rejected"],
    "values_card": ["description"], "moral_graph_vote": ["story"], "agent_case": ["task_description"],
    "outcome": ["description"], "moral_graph_question": ["question"],
}
LENGTH_BINS = 30


@dataclass
class ReportData:
    info: VersionInfo
    labels: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, label) -> count
    coverage: list[dict[str, Any]] = field(default_factory=list)  # taxonomy, used, total
    conflicts: Counter[tuple[str, str]] = field(default_factory=Counter)  # unordered value pair -> count
    lengths: dict[str, dict[str, Any]] = field(default_factory=dict)  # "kind.column" -> {edges, counts, ...}
    agreement: list[dict[str, Any]] = field(default_factory=list)  # batch, field, statistic, value
    acceptance: dict[str, Counter[str]] = field(default_factory=dict)  # stratum -> outcome -> count
    dead_letters: Counter[str] = field(default_factory=Counter)  # "stage: error_class" -> count
    filtered: Counter[str] = field(default_factory=Counter)  # filter -> count
    cost: list[dict[str, Any]] = field(default_factory=list)  # run_id, cost_usd, prompt/completion tokens
    runs_found: list[str] = field(default_factory=list)
    runs_missing: list[str] = field(default_factory=list)


def _read_table(layout: Any, table: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """A run table's rows, whether one file or a pipeline's shards."""
    return [row for path in layout.table_files(table) for row in _read(path, columns)]


def _read(path: Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return pq.ParquetFile(path).read(columns=columns).to_pylist()


def _version_figures(data: ReportData, con: Any) -> None:
    import numpy as np

    for kind in data.info.manifest.kinds:
        # A view cannot take bound parameters: the version's own file paths, quoted as SQL literals.
        files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in kind_files(data.info, kind))
        con.execute(f"CREATE OR REPLACE VIEW t AS SELECT * FROM read_parquet([{files}])")
        if kind in LABELS_SQL:
            for label, n in con.execute(f"SELECT label, count(*) FROM ({LABELS_SQL[kind]}) "
                                        "WHERE label IS NOT NULL GROUP BY ALL").fetchall():
                data.labels[(kind, label)] += n
        if kind in CONFLICTS_SQL:
            for a, b, n in con.execute(f"SELECT a, b, count(*) FROM ({CONFLICTS_SQL[kind]}) "
                                       "WHERE a IS NOT NULL AND b IS NOT NULL AND a <> b GROUP BY ALL").fetchall():
                data.conflicts[tuple(sorted((a, b)))] += n
        for column in TEXT_COLUMNS.get(kind, []):
            values = np.array([v for (v,) in con.execute(
                f'SELECT length("{column}") FROM t WHERE "{column}" IS NOT NULL').fetchall()])
            if values.size:
                counts, edges = np.histogram(values, bins=LENGTH_BINS)
                data.lengths[f"{kind}.{column}"] = {
                    "counts": counts.tolist(), "edges": edges.tolist(), "rows": int(values.size),
                    "median": float(np.median(values)), "max": int(values.max())}


def _coverage(data: ReportData) -> None:
    """Distinct labels found in each taxonomy the version names, against the nodes at the levels they hit."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    labels = {label for _, label in data.labels}
    for name, version in sorted(data.info.manifest.taxonomy_versions.items()):
        try:
            taxonomy = load_taxonomy(name)
        except ValueCorpusError:
            continue
        nodes = set()
        for label in labels:
            try:
                node = taxonomy.get(label)
            except ValueCorpusError:  # ambiguous across nodes: counted by none
                node = None
            if node is not None:
                nodes.add(node.id)
        if nodes:
            levels = {taxonomy.nodes[n].level for n in nodes}
            total = sum(len(taxonomy.nodes_at(level)) for level in levels)
            data.coverage.append({"taxonomy": f"{name}@{version}", "used": len(nodes), "total": total})


def _agreement(data: ReportData) -> None:
    agreement = (data.info.manifest.annotation or {}).get("agreement")
    if not isinstance(agreement, dict):
        return
    for batch, fields in sorted(agreement.items()):
        if not isinstance(fields, dict):
            continue
        for name, stats in sorted(fields.items()):
            if not isinstance(stats, dict):
                continue
            for statistic in ("krippendorff_alpha", "fleiss_kappa", "cohen_kappa"):
                if isinstance(stats.get(statistic), int | float):
                    data.agreement.append({"batch": batch, "field": name, "statistic": statistic,
                                           "value": float(stats[statistic])})
                    break


def _plan_items(files: list[Path]) -> dict[str, str]:
    """Record id -> the plan item it was generated for; only those two values are read (DuckDB projects the
    nested field), so a large run costs two columns, not its records."""
    import duckdb

    out: dict[str, str] = {}
    con = duckdb.connect()
    try:
        for path in files:
            quoted = "'" + str(path).replace("'", "''") + "'"
            for rid, item in con.execute(f"SELECT id, provenance.plan_item FROM read_parquet({quoted}) "
                                         "WHERE provenance.plan_item IS NOT NULL").fetchall():
                out.setdefault(rid, item)
    finally:
        con.close()
    return out


def _run_figures(data: ReportData, home: DataHome) -> None:
    strata: dict[str, str] = {}  # plan sample id -> stratum
    plan_item: dict[str, str] = {}  # record id -> plan sample id
    resolutions: list[dict[str, Any]] = []
    record_files: list[Path] = []
    for _depth, entry in lineage_runs(data.info.manifest.lineage):
        run_id = entry.get("run_id", "")
        try:
            layout = home.run(run_id)
        except ValueCorpusError:
            layout = RunLayout(home.runs_dir / "missing")
        if entry.get("missing") or not layout.exists():
            data.runs_missing.append(run_id)
            continue
        data.runs_found.append(run_id)
        tokens = entry.get("tokens") or {}
        data.cost.append({"run_id": run_id, "cost_usd": float(entry.get("cost_usd") or 0.0),
                          "prompt_tokens": int(tokens.get("prompt_tokens", 0)),
                          "completion_tokens": int(tokens.get("completion_tokens", 0))})
        for row in _read_table(layout, "dead_letters", ["stage", "error_class"]):
            data.dead_letters[f"{row['stage']}: {row['error_class']}"] += 1
        for row in _read_table(layout, "filtered", ["filter"]):
            data.filtered[row["filter"]] += 1
        for row in _read(layout.plan, ["sample_id", "stratum"]):
            strata.setdefault(row["sample_id"], row["stratum"] or "(no strata)")
        resolutions.extend(_read(layout.resolutions, ["sample_id", "kind", "batch", "status", "verdict"]))
        record_files.extend(p for kind in layout.kinds() for p in layout.table_files(f"records/{kind}"))
    if resolutions:
        plan_item = _plan_items(record_files)
    seen: set[str] = set()
    for res in resolutions:  # a curated run holds a copy of its source's resolutions: count each sample once
        if res["sample_id"] in seen:
            continue
        seen.add(res["sample_id"])
        stratum = strata.get(plan_item.get(res["sample_id"], res["sample_id"])) or f"{res['kind']}/{res['batch']}"
        done = res["status"] in ("resolved", "adjudicated") and res["verdict"]
        data.acceptance.setdefault(stratum, Counter())[res["verdict"] if done else res["status"]] += 1


def gather(home: DataHome, info: VersionInfo) -> ReportData:
    import duckdb

    data = ReportData(info)
    con = duckdb.connect()
    try:
        _version_figures(data, con)
    finally:
        con.close()
    _coverage(data)
    _agreement(data)
    _run_figures(data, home)
    return data
