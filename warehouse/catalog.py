"""A read-only DuckDB catalog over the warehouse: one view per dataset and kind, for the latest version and
for every version.

View names: a dataset that has only ever held one kind gets `<dataset>` (latest) and `<dataset>__v<N>`; a
dataset with several kinds gets `<dataset>_<kind>` and `<dataset>_<kind>__v<N>`. Each of those views of a kind
with value labels has a flat companion `<view>__values` (id, label, taxonomy, value: `value_labels.py`), so a
value count is `SELECT value, count(*) FROM <dataset>__values GROUP BY value`. The table
`warehouse_versions` lists every version and kind with its row count and view name (NULL in the rare case
of a name clash: the dataset that sorts first keeps the name).

Read-only, three ways: only SELECT / EXPLAIN statements are accepted; after the views are made, DuckDB's
external access is switched off except for the exact Parquet files of the warehouse (reading them needs no
write access, and DuckDB writes through temp files that this forbids), and the configuration is locked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse.value_labels import SUFFIX, companion_kind
from valuecorpus.warehouse.versions import as_home, kind_files, list_datasets, list_versions

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

ALLOWED_STATEMENTS = ("SELECT", "EXPLAIN")


class QueryError(ValueCorpusError):
    """A query that does not parse, fails, or would write."""


@dataclass(frozen=True)
class View:
    name: str
    dataset: str
    kind: str
    version: int
    latest: bool


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def plan_views(home: DataHome | str | Path) -> tuple[list[View], dict[View, list[Path]]]:
    views: list[View] = []
    files: dict[View, list[Path]] = {}
    used: set[str] = set()
    for dataset in list_datasets(home):
        versions = list_versions(home, dataset)
        all_kinds = sorted({k for v in versions for k in v.manifest.kinds})
        single = len(all_kinds) == 1
        for info in versions:
            latest = info is versions[-1]
            for kind in info.manifest.kinds:
                base = dataset if single else f"{dataset}_{kind}"
                names = [(f"{base}__v{info.version}", False)] + ([(base, True)] if latest else [])
                companion = kind_files(info, companion_kind(kind))
                for name, is_latest in names:
                    if name in used:  # e.g. dataset `a_b` vs kind `b` of dataset `a`: the first (sorted) wins
                        continue
                    used.add(name)
                    view = View(name, dataset, kind, info.version, is_latest)
                    views.append(view)
                    files[view] = kind_files(info, kind)
                    label_name = name + SUFFIX  # the flat value labels (`value_labels.py`), when published
                    if companion and label_name not in used:
                        used.add(label_name)
                        label_view = View(label_name, dataset, companion_kind(kind), info.version, is_latest)
                        views.append(label_view)
                        files[label_view] = companion
    return views, files


def connect(home: DataHome | str | Path) -> tuple[duckdb.DuckDBPyConnection, list[View]]:
    """An in-memory DuckDB connection with the warehouse's views, unable to touch any other file."""
    import duckdb

    home = as_home(home)
    views, files = plan_views(home)
    con = duckdb.connect(":memory:")
    if home.remote:
        # DuckDB reads the store through fsspec (its own httpfs extension would be downloaded at run time)
        con.register_filesystem(home.root.fs)
    con.execute("CREATE TABLE warehouse_versions (dataset VARCHAR, version INTEGER, kind VARCHAR, "
                "rows BIGINT, created_at VARCHAR, view_name VARCHAR)")
    allowed: list[str] = []
    for dataset in list_datasets(home):
        for info in list_versions(home, dataset):
            for kind in info.manifest.kinds:
                name = next((v.name for v in views if v.dataset == dataset and v.version == info.version
                             and v.kind == kind and not v.latest), None)
                con.execute("INSERT INTO warehouse_versions VALUES (?, ?, ?, ?, ?, ?)",
                            [dataset, info.version, kind, info.manifest.row_counts.get(kind),
                             info.manifest.created_at, name])
    for view in views:
        paths = [str(p) if home.remote else str(p.resolve()) for p in files[view]]
        allowed.extend(paths)
        listing = ", ".join(_sql_str(p) for p in paths)
        con.execute(f"CREATE VIEW {_quote(view.name)} AS SELECT * FROM read_parquet([{listing}])")
    if allowed:
        con.execute(f"SET allowed_paths = [{', '.join(_sql_str(p) for p in sorted(set(allowed)))}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con, views


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryError(f"bad SQL: {err}") from None
    if not statements:
        raise QueryError("no SQL statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in ALLOWED_STATEMENTS:
            raise QueryError(f"{kind} statements are refused: the warehouse is read-only "
                             f"(allowed: {', '.join(ALLOWED_STATEMENTS)})")


def query(home: DataHome | str | Path, sql: str) -> pa.Table:
    """Run read-only SQL over the warehouse and return the result of the last statement as an Arrow table."""
    import duckdb

    con, _views = connect(home)
    try:
        check_read_only(con, sql)
        try:
            statements = con.extract_statements(sql)
            for statement in statements[:-1]:
                con.execute(statement.query)
            return con.sql(statements[-1].query).to_arrow_table()
        except duckdb.Error as err:
            raise QueryError(f"query failed: {err}") from None
    finally:
        con.close()
