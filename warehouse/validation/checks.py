"""The checks of a suite, generated from the record model (`fields.leaves`), the declarations in
`schemas.constraints` and the taxonomies: for each, a flat table computed in DuckDB and the Great Expectations
expectation run on it.

Flat tables, so that GE expects on plain columns and the cost of nesting and joins stays in DuckDB:
- `<kind>`: one row per record — `id`, each top-level scalar, and per nested leaf a marker that is NULL when any
  item on the path lacks it, plus min/max lengths and numeric ranges over the items;
- `<kind>:values:<path>`: the distinct values at a path with their count and five example ids (Literal domains
  and taxonomy membership are per value, so checking distinct values is the same check, and cheap);
- `<kind>:ref:<path>`: every reference with the target it joins to (NULL when there is none);
- `run:strata`, `run:rates`, `run:agreement`: the run's plan and counts (distribution bounds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from valuecorpus.schemas.constraints import DISPLAY_FIELDS, Reference, ValueLabel, labels_of, references_of
from valuecorpus.schemas.taxonomies.loader import Taxonomy, load_taxonomy, normalise
from valuecorpus.warehouse.validation.fields import leaves
from valuecorpus.warehouse.validation.sql import list_expr, quote, scalar_expr, sql_str
from valuecorpus.warehouse.validation.suite import SuiteSettings, text_leaves


@dataclass
class Check:
    name: str
    kind: str                       # not_null | type | taxonomy | text_length | unique | reference | distribution
    column: str | None
    expectation: str                # GE expectation class name
    kwargs: dict[str, Any]
    threshold: Any = None
    ids_column: str = "id"          # the column naming offending rows (a list column: example ids)
    values_column: str | None = None


@dataclass
class Table:
    name: str
    sql: str
    checks: list[Check] = field(default_factory=list)
    # Columns added after DuckDB (taxonomy keys): name -> function of the row
    derived: dict[str, Any] = field(default_factory=dict)
    build: Any = None  # instead of `sql`: a function of the connection returning the frame


def records_view(kind: str) -> str:
    return quote(f"rec_{kind}")


# --- per-record table and field profiles ------------------------------------------------------------------

def level_of(path: str) -> tuple[str, str]:
    """(`actions[].values[]`, `name`) for `actions[].values[].name`; ("", path) at the record's top level;
    (`core_values[]`, "") for the items of a list of strings."""
    cut = path.rfind("[]")
    if cut < 0:
        return "", path
    return path[:cut + 2], path[cut + 3:]


def level_view(kind: str, level: str) -> str:
    return quote(f"lvl_{kind}_{level}")


def field_sql(level: str, rest: str) -> str:
    base = "it" if level else None
    if not rest:
        return "it"
    parts = [quote(p) for p in rest.split(".")]
    return ".".join([base, *parts]) if base else ".".join(parts)


def level_tables(kind: str) -> dict[str, str]:
    """SQL creating one temp table `(id, it)` per list level of a kind, each unnested from its parent level's
    table, so nesting is decoded from Parquet once and every profile and distinct-value query reads plain rows."""
    levels = {level_of(leaf.path)[0] for leaf in leaves(kind)} - {""}
    out = {}
    for level in sorted(levels, key=lambda lv: (lv.count("[]"), lv)):
        parent, rest = level_of(level[:-2])
        source = records_view(kind) if not parent else level_view(kind, parent)
        out[level] = (f"CREATE TEMP TABLE {level_view(kind, level)} AS "
                      f"SELECT id, unnest({field_sql(parent, rest)}) AS it FROM {source}")
    return out


def _col(kind: str, leaf_path: str) -> tuple[str, str]:
    """(table, column expression) to read a leaf from: the record view at the top level, else its level table."""
    level, rest = level_of(leaf_path)
    return (level_view(kind, level) if level else records_view(kind)), field_sql(level, rest)


def record_table(kind: str) -> Table:
    """Unique, present ids: one row per id that is NULL or held by more than one record, with how many hold it
    (grouped in DuckDB, so GE sees the offending ids rather than a million-row frame; a clean run gives none).
    `n` counts the records behind each row (reported as `unexpected_records`); `records` is NULL for the NULL id,
    which the not-null check reports rather than the uniqueness one."""
    checks = [Check(f"{kind}: id unique", "unique", "id", "ExpectColumnValuesToBeBetween",
                    {"column": "records", "max_value": 1}, threshold="one record per id"),
              Check(f"{kind}: id not null", "not_null", "id", "ExpectColumnValuesToNotBeNull", {"column": "id"})]
    sql = (f"SELECT id, CASE WHEN id IS NOT NULL THEN count(*) END AS records, count(*) AS n "
           f"FROM {records_view(kind)} GROUP BY id HAVING count(*) > 1 OR id IS NULL ORDER BY id NULLS FIRST")
    return Table(kind, sql, checks)


def profile_table(kind: str, settings: SuiteSettings) -> Table:
    """One row per field path of the kind: nulls (required fields), min/max text length and numeric range, each
    beside the bound it must meet and the ids of up to five records that miss it. Computed in one aggregate
    query per level (and a second one for the ids, only at levels where a bound is missed); GE compares each
    figure with its bound."""
    # Per level table: the figures (always computed), and the example-id aggregates, each with the condition on
    # the figures under which it can find anything; those run in a second query only when a bound is missed.
    selects: dict[str, list[str]] = {}
    id_aggs: dict[str, list[tuple[str, str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for leaf in leaves(kind):
        if leaf.path == "id":
            continue
        table, expr = _col(kind, leaf.path)
        row: dict[str, Any] = {"field": leaf.path}
        aggs = selects.setdefault(table, [])
        ids = id_aggs.setdefault(table, [])
        tag = len(rows)
        if leaf.required:
            aggs.append(f"count(*) FILTER (WHERE {expr} IS NULL) AS n{tag}")
            ids.append((f"min(id, 5) FILTER (WHERE {expr} IS NULL) AS n{tag}_ids", f"n{tag}", lambda v: v > 0))
            row["nulls"] = f"n{tag}"
        if leaf.text:
            b = settings.length_bounds(kind, leaf.path)
            row.update(min_len_allowed=b.min, max_len_allowed=b.max)
            aggs += [f"min(length({expr})) AS lo{tag}", f"max(length({expr})) AS hi{tag}"]
            ids += [(f"min(id, 5) FILTER (WHERE length({expr}) < {b.min}) AS lo{tag}_ids", f"lo{tag}",
                     lambda v, m=b.min: v < m),
                    (f"min(id, 5) FILTER (WHERE length({expr}) > {b.max}) AS hi{tag}_ids", f"hi{tag}",
                     lambda v, m=b.max: v > m)]
            row.update(min_len=f"lo{tag}", max_len=f"hi{tag}")
        if leaf.lower is not None or leaf.upper is not None:
            row.update(min_allowed=leaf.lower, max_allowed=leaf.upper)
            aggs += [f"min({expr})::DOUBLE AS vlo{tag}", f"max({expr})::DOUBLE AS vhi{tag}"]
            if leaf.lower is not None:
                ids.append((f"min(id, 5) FILTER (WHERE {expr} < {leaf.lower}) AS vlo{tag}_ids", f"vlo{tag}",
                            lambda v, m=leaf.lower: v < m))
            if leaf.upper is not None:
                ids.append((f"min(id, 5) FILTER (WHERE {expr} > {leaf.upper}) AS vhi{tag}_ids", f"vhi{tag}",
                            lambda v, m=leaf.upper: v > m))
            row.update(min_value=f"vlo{tag}", max_value=f"vhi{tag}")
        if len(row) > 1:
            rows.append(row)

    def build(con: Any) -> Any:
        import pandas as pd

        got: dict[str, Any] = {}
        for table, aggs in selects.items():
            if aggs:
                cur = con.execute(f"SELECT {', '.join(aggs)} FROM {table}")
                names = [d[0] for d in cur.description]
                got.update(zip(names, cur.fetchall()[0], strict=True))
        for table, ids in id_aggs.items():  # the offending ids of a missed bound (a passing suite needs none)
            wanted = [sql for sql, figure, missed in ids if got.get(figure) is not None and missed(got[figure])]
            if wanted:
                cur = con.execute(f"SELECT {', '.join(wanted)} FROM {table}")
                names = [d[0] for d in cur.description]
                got.update(zip(names, cur.fetchall()[0], strict=True))
        out = []
        for row in rows:
            entry: dict[str, Any] = {"field": row["field"]}
            for key, ids_key in (("nulls", "null_ids"), ("min_len", "short_ids"), ("max_len", "long_ids"),
                                 ("min_value", "low_ids"), ("max_value", "high_ids")):
                alias = row.get(key)
                entry[key] = got.get(alias) if alias else None
                entry[ids_key] = list(got.get(f"{alias}_ids") or []) if alias else []
            for key in ("min_len_allowed", "max_len_allowed", "min_allowed", "max_allowed"):
                entry[key] = row.get(key)
            out.append(entry)
        frame = pd.DataFrame(out, columns=["field", "nulls", "null_ids", "min_len", "short_ids", "max_len",
                                           "long_ids", "min_value", "low_ids", "max_value", "high_ids",
                                           "min_len_allowed", "max_len_allowed", "min_allowed", "max_allowed"])
        for c in ("nulls", "min_len", "max_len", "min_len_allowed", "max_len_allowed"):
            frame[c] = frame[c].astype("Int64")
        for c in ("min_value", "max_value", "min_allowed", "max_allowed"):
            frame[c] = frame[c].astype("Float64")
        return frame

    pair = {"ignore_row_if": "either_value_is_missing", "or_equal": True}
    bounds = {k: {"min": v.min, "max": v.max} for k, v in
              ((leaf.path, settings.length_bounds(kind, leaf.path)) for leaf in text_leaves(kind))}
    checks = [
        Check(f"{kind}: required fields not null", "not_null", None, "ExpectColumnValuesToBeBetween",
              {"column": "nulls", "max_value": 0}, threshold={"nulls": 0}, ids_column="null_ids",
              values_column="field"),
        Check(f"{kind}: text at least its minimum length", "text_length", None,
              "ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "min_len", "column_B": "min_len_allowed", **pair},
              threshold={k: v["min"] for k, v in bounds.items()}, ids_column="short_ids", values_column="field"),
        Check(f"{kind}: text at most its maximum length", "text_length", None,
              "ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "max_len_allowed", "column_B": "max_len", **pair},
              threshold={k: v["max"] for k, v in bounds.items()}, ids_column="long_ids", values_column="field"),
    ]
    ranged = [leaf for leaf in leaves(kind) if leaf.lower is not None or leaf.upper is not None]
    if any(leaf.lower is not None for leaf in ranged):
        checks.append(Check(f"{kind}: numbers at or above the model's minimum", "type", None,
                            "ExpectColumnPairValuesAToBeGreaterThanB",
                            {"column_A": "min_value", "column_B": "min_allowed", **pair},
                            threshold={x.path: x.lower for x in ranged if x.lower is not None}, ids_column="low_ids",
                            values_column="field"))
    if any(leaf.upper is not None for leaf in ranged):
        checks.append(Check(f"{kind}: numbers at or below the model's maximum", "type", None,
                            "ExpectColumnPairValuesAToBeGreaterThanB",
                            {"column_A": "max_allowed", "column_B": "max_value", **pair},
                            threshold={x.path: x.upper for x in ranged if x.upper is not None},
                            ids_column="high_ids", values_column="field"))
    return Table(f"{kind}:fields", "", checks, build=build)


def json_table(kind: str) -> Table | None:
    cols = [leaf.path for leaf in leaves(kind) if leaf.json and not level_of(leaf.path)[0]]
    if not cols:
        return None
    checks = [Check(f"{kind}: {c} is JSON", "type", c, "ExpectColumnValuesToBeJsonParseable", {"column": c})
              for c in cols]
    return Table(f"{kind}:json", f"SELECT id, {', '.join(quote(c) for c in cols)} FROM {records_view(kind)}", checks)


# --- distinct values: Literal domains and taxonomy membership ------------------------------------------------

def _values_sql(kind: str, path: str, extra: str | None = None) -> str:
    """Distinct values at `path` (optionally with a per-record scope column) and five example ids."""
    if extra is None:
        table, expr = _col(kind, path)
        return (f"SELECT {expr} AS value, count(*) AS n, min(id, 5) AS example_ids FROM {table} "
                f"WHERE {expr} IS NOT NULL GROUP BY ALL ORDER BY value")
    return (f"SELECT value, scope, count(*) AS n, min(id, 5) AS example_ids FROM ("
            f"SELECT id, {extra} AS scope, unnest({list_expr(path)}) AS value FROM {records_view(kind)}) "
            f"WHERE value IS NOT NULL GROUP BY ALL ORDER BY value")


def literal_tables(kind: str) -> list[Table]:
    out = []
    for leaf in leaves(kind):
        if not leaf.literal:
            continue
        name = f"{kind}:values:{leaf.path}"
        check = Check(f"{kind}: {leaf.path} in {list(leaf.literal)}", "type", leaf.path,
                      "ExpectColumnValuesToBeInSet", {"column": "value", "value_set": list(leaf.literal)},
                      threshold=list(leaf.literal), ids_column="example_ids", values_column="value")
        out.append(Table(name, _values_sql(kind, leaf.path), [check]))
    return out


def _aliases(node: Any) -> set[str]:
    return {normalise(a) for a in (node.name, node.id, *node.names.values(), *node.synonyms)}


def _label_keys(tax: Taxonomy, level: str | None) -> set[str]:
    return {a for node in tax.nodes_at(level) for a in _aliases(node)}


def _system_keys(tax: Taxonomy) -> tuple[set[str], dict[str, str]]:
    """Allowed `<system id>/<value alias>` keys, and system alias → system id."""
    systems = {a: node.id for node in tax.nodes_at("system") for a in _aliases(node)}
    keys = {f"{node.id}/{a}" for node in tax.nodes_at("system") for v in tax.children(node.id) for a in _aliases(v)}
    return keys, systems


def taxonomy_table(label: ValueLabel) -> Table:
    name = f"{label.kind}:values:{label.path}"
    common = {"ids_column": "example_ids", "values_column": "value"}
    if label.taxonomy_path is not None:  # the record names its taxonomy
        scope = scalar_expr(label.taxonomy_path)
        table = Table(name, f"SELECT * FROM ({_values_sql(label.kind, label.path, scope)}) WHERE scope IS NOT NULL")
        allowed: set[str] = set()
        known: dict[str, Taxonomy] = {}
        from valuecorpus.schemas.taxonomies.loader import available

        for tname in available():
            known[tname] = load_taxonomy(tname)
            allowed |= {f"{tname}/{a}" for a in _label_keys(known[tname], None)}
        table.derived["key"] = lambda row: f"{row['scope']}/{normalise(str(row['value']))}"
        threshold: Any = f"the taxonomy named by {label.taxonomy_path}"
    elif label.system_path is not None:
        tax = load_taxonomy(label.taxonomy or "")
        allowed, systems = _system_keys(tax)
        table = Table(name, _values_sql(label.kind, label.path, scalar_expr(label.system_path)))
        table.derived["key"] = lambda row, s=systems: (
            f"{s.get(normalise(str(row['scope'])), '?')}/{normalise(str(row['value']))}")
        threshold = f"{tax.ref} values of the record's {label.system_path}"
    else:
        tax = load_taxonomy(label.taxonomy or "")
        allowed = _label_keys(tax, label.level)
        table = Table(name, _values_sql(label.kind, label.path))
        table.derived["key"] = lambda row: normalise(str(row["value"]))
        threshold = f"{tax.ref}" + (f" level {label.level}" if label.level else "")
    table.checks.append(Check(f"{label.kind}: {label.path} in taxonomy", "taxonomy", label.path,
                              "ExpectColumnValuesToBeInSet", {"column": "key", "value_set": sorted(allowed)},
                              threshold=threshold, **common))
    return table


# --- references ----------------------------------------------------------------------------------------------

def reference_table(ref: Reference, kinds: set[str]) -> Table | None:
    present = [(k, p) for k, p in ref.targets if k in kinds]
    if not present and not ref.required:
        return None
    name = f"{ref.kind}:ref:{ref.path}"
    display = DISPLAY_FIELDS.get(ref.kind)
    label = scalar_expr(display) if display else "id"
    scope_src = f", {scalar_expr(ref.scope[0])} AS scope" if ref.scope else ""
    scope_tgt = f", {scalar_expr(ref.scope[1])} AS scope" if ref.scope else ""
    on = "r.value = t.value" + (" AND r.scope IS NOT DISTINCT FROM t.scope" if ref.scope else "")
    if present:  # any of the target tables will do
        targets = "SELECT DISTINCT * FROM (" + " UNION ALL ".join(
            f"SELECT unnest({list_expr(tpath)})::VARCHAR AS value{scope_tgt} FROM {records_view(tkind)}"
            for tkind, tpath in present) + ")"
    else:  # required and absent: every reference is dangling
        targets = "SELECT NULL::VARCHAR AS value" + (", NULL::VARCHAR AS scope" if ref.scope else "") + " LIMIT 0"
    sql = (f"WITH r AS (SELECT id, {label} AS label{scope_src}, unnest({list_expr(ref.path)})::VARCHAR AS value "
           f"FROM {records_view(ref.kind)}), t AS ({targets}) "
           f"SELECT r.id, r.label, r.value, t.value AS target FROM r LEFT JOIN t ON {on} "
           f"WHERE r.value IS NOT NULL ORDER BY r.id")
    wanted = " or ".join(f"{k}.{p}" for k, p in ref.targets)
    check = Check(f"{ref.name}", "reference", ref.path, "ExpectColumnValuesToNotBeNull", {"column": "target"},
                  threshold=wanted + (f" of the same {ref.scope[1]}" if ref.scope else "")
                  + (" (required)" if ref.required else ""),
                  values_column="value")
    return Table(name, sql, [check])


# --- the whole suite -------------------------------------------------------------------------------------------

def kind_tables(kinds: list[str], settings: SuiteSettings) -> list[Table]:
    present = set(kinds)
    tables: list[Table] = []
    for kind in kinds:
        tables.append(record_table(kind))
        tables.append(profile_table(kind, settings))
        if (json_checks := json_table(kind)) is not None:
            tables.append(json_checks)
        tables.extend(literal_tables(kind))
        tables.extend(taxonomy_table(label) for label in labels_of(kind))
        tables.extend(t for ref in references_of(kind) if (t := reference_table(ref, present)) is not None)
    return tables


def distribution_tables(settings: SuiteSettings, plan_sql: str | None, records_sql: str,
                        rates: dict[str, float] | None, curation: dict[str, Any] | None) -> list[Table]:
    d = settings.distribution
    out: list[Table] = []
    if plan_sql is not None:
        sql = (f"WITH plan AS ({plan_sql}), recs AS ({records_sql}), "
               f"planned AS (SELECT stratum, count(*) AS planned FROM plan GROUP BY stratum), "
               f"got AS (SELECT p.stratum, count(*) AS records FROM recs JOIN plan p ON recs.plan_item = p.sample_id "
               f"GROUP BY p.stratum), "
               f"totals AS (SELECT (SELECT count(*) FROM plan) AS n_plan, (SELECT sum(records) FROM got) AS n_rec) "
               f"SELECT planned.stratum, planned, coalesce(got.records, 0) AS records, "
               f"planned / n_plan AS planned_share, coalesce(got.records, 0) / nullif(n_rec, 0) AS share, "
               f"ceil(planned / n_plan * coalesce(n_rec, 0) * {d.stratum_max_ratio}) + {d.stratum_slack_rows} "
               f"AS allowed FROM planned LEFT JOIN got USING (stratum), totals ORDER BY stratum")
        out.append(Table("run:strata", sql, [Check(
            "no planned stratum above its share", "distribution", "stratum",
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": "allowed", "column_B": "records", "or_equal": True},
            threshold={"stratum_max_ratio": d.stratum_max_ratio, "stratum_slack_rows": d.stratum_slack_rows},
            ids_column="stratum", values_column="records")]))
    if rates is not None:
        cols = ", ".join(f"{float(v)}::DOUBLE AS {quote(k)}" for k, v in rates.items())
        checks = [
            Check("dead-letter rate below its ceiling", "distribution", "dead_letter_rate",
                  "ExpectColumnValuesToBeBetween", {"column": "dead_letter_rate", "max_value": d.dead_letter_rate_max},
                  threshold={"max": d.dead_letter_rate_max}, ids_column="run", values_column="dead_letter_rate"),
            Check("filtered rate below its ceiling", "distribution", "filtered_rate",
                  "ExpectColumnValuesToBeBetween", {"column": "filtered_rate", "max_value": d.filtered_rate_max},
                  threshold={"max": d.filtered_rate_max}, ids_column="run", values_column="filtered_rate"),
        ]
        if curation is not None and curation.get("acceptance_rate") is not None:
            cols += f", {float(curation['acceptance_rate'])}::DOUBLE AS acceptance_rate"
            checks.append(Check("acceptance rate above its floor", "distribution", "acceptance_rate",
                                "ExpectColumnValuesToBeBetween",
                                {"column": "acceptance_rate", "min_value": d.acceptance_rate_min},
                                threshold={"min": d.acceptance_rate_min}, ids_column="run",
                                values_column="acceptance_rate"))
        out.append(Table("run:rates", f"SELECT 'run' AS run, {cols}", checks))
    if curation is not None and curation.get("agreement"):
        rows = " UNION ALL ".join(
            f"SELECT {sql_str(batch)} AS batch, {'NULL' if a is None else float(a)}::DOUBLE AS alpha"
            for batch, a in sorted(curation["agreement"].items()))
        out.append(Table("run:agreement", rows, [Check(
            "agreement above its floor", "distribution", "alpha", "ExpectColumnValuesToBeBetween",
            {"column": "alpha", "min_value": d.agreement_min}, threshold={"min": d.agreement_min},
            ids_column="batch", values_column="alpha")]))
    return out
