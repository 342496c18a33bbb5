"""The DuckDB catalog: views per dataset, kind and version; nested columns; output formats; read-only."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from wh_staging import stage_run, tree_bytes, with_value_labels

from valuecorpus.schemas.constraints import labels_of
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma, Perspective
from valuecorpus.warehouse import publish, verify_version
from valuecorpus.warehouse.catalog import QueryError, connect, query


@pytest.fixture
def warehouse(home: Path, dilemma_run: str, dilemmas: list[Dilemma]) -> Path:
    publish(home, dilemma_run, "dilemmas")
    stage_run(home, "first-100", {"dilemma": dilemmas[:100]})
    publish(home, "first-100", "dilemmas")
    # seven perspectives on the three dilemmas of the run (the gate checks perspectives → dilemmas)
    perspectives = [Perspective(id=f"p{i}", dilemma_id=dilemmas[i % 3].id, action="telling the truth",
                                acceptable="honesty", unacceptable="kindness", category="simple_contrast",
                                variant="S>O", description="Character A values honesty over kindness.")
                    for i in range(7)]
    stage_run(home, "mixed", {"dilemma": dilemmas[:3], "perspective": perspectives})
    publish(home, "mixed", "clash")
    return home


def test_views_per_dataset_kind_and_version(warehouse: Path) -> None:
    con, views = connect(warehouse)
    con.close()
    assert sorted(v.name for v in views) == [
        "clash_dilemma", "clash_dilemma__v1", "clash_dilemma__v1__values", "clash_dilemma__values",
        "clash_perspective", "clash_perspective__v1", "dilemmas", "dilemmas__v1", "dilemmas__v1__values",
        "dilemmas__v2", "dilemmas__v2__values", "dilemmas__values"]  # perspectives carry no value labels
    counts = query(warehouse, "SELECT (SELECT count(*) FROM dilemmas) AS latest, (SELECT count(*) FROM "
                              "dilemmas__v1) AS v1, (SELECT count(*) FROM clash_perspective) AS p").to_pylist()
    assert counts == [{"latest": 100, "v1": 1360, "p": 7}]
    listing = query(warehouse, "SELECT dataset, version, kind, rows, view_name FROM warehouse_versions "
                               "ORDER BY ALL").to_pylist()
    assert [tuple(r.values()) for r in listing] == [
        ("clash", 1, "dilemma", 3, "clash_dilemma__v1"), ("clash", 1, "perspective", 7, "clash_perspective__v1"),
        ("dilemmas", 1, "dilemma", 1360, "dilemmas__v1"), ("dilemmas", 2, "dilemma", 100, "dilemmas__v2")]


def test_nested_columns_are_queryable(warehouse: Path, dilemmas: list[Dilemma]) -> None:
    rows = query(warehouse, "SELECT id, a.action_type, a.action, len(a.values_direct) AS nv "
                            "FROM (SELECT id, unnest(actions) AS a FROM dilemmas__v1) ORDER BY 1, 2")
    expected = sorted((d.id, a.action_type, a.action, len(a.values_direct)) for d in dilemmas for a in d.actions)
    assert [tuple(r.values()) for r in rows.to_pylist()] == expected and len(expected) == 8
    by_group = query(warehouse, "SELECT topic_group, count(*) AS n FROM dilemmas__v1 WHERE topic_group IS NOT NULL "
                                "GROUP BY ALL ORDER BY ALL").to_pylist()
    assert by_group == [{"topic_group": g, "n": sum(d.topic_group == g for d in dilemmas)}
                        for g in sorted({d.topic_group for d in dilemmas if d.topic_group})]
    assert query(warehouse, "SELECT provenance.source_dataset AS s, count(*) AS n FROM dilemmas__v1 GROUP BY 1"
                 ).to_pylist() == [{"s": "daily_dilemmas", "n": 1360}]


def test_value_label_companion_counts_what_the_records_hold(home: Path, dilemmas: list[Dilemma]) -> None:
    """The flat `__values` view of a version holds every value label of its records, derived at publish, and is
    a file of the version like any other (listed with its checksum; outside the card's configs)."""
    labelled = with_value_labels(dilemmas, per_action=5)
    stage_run(home, "labelled", {"dilemma": labelled})
    manifest = publish(home, "labelled", "labelled")
    expected: Counter = Counter()
    taxonomy_of = {label.path: label.taxonomy for label in labels_of("dilemma")}
    for d in labelled:
        for a in d.actions:
            for v in a.values:
                for path in taxonomy_of:
                    if (value := getattr(v, path.rsplit(".", 1)[1])) is not None:
                        expected[(d.id, path, taxonomy_of[path], value)] += 1
    assert sum(expected.values()) > 100 and len({k[1] for k in expected}) == len(taxonomy_of)  # every label path
    for view in ("labelled__v1__values", "labelled__values"):
        rows = query(home, f"SELECT id, label, taxonomy, value, count(*) AS n FROM {view} GROUP BY ALL").to_pylist()
        assert {(r["id"], r["label"], r["taxonomy"], r["value"]): r["n"] for r in rows} == dict(expected), view
    entry = next(f for f in manifest.files if f.path == "data/dilemma__values/part-0000.parquet")
    assert entry.rows == sum(expected.values()) and manifest.row_counts == {"dilemma": len(dilemmas)}
    assert verify_version(home, "labelled", 1) == []
    card = (DataHome(home).version_dir("labelled", 1) / "README.md").read_text()
    front = yaml.safe_load(card[4:].split("\n---\n", 1)[0])
    assert [c["data_files"] for c in front["configs"]] == [[{"split": "train", "path": "data/dilemma/*.parquet"}]]


@pytest.mark.parametrize("sql, refused", [
    ("COPY dilemmas TO 'out.csv'", "COPY statements are refused"),
    ("SELECT 1; COPY (SELECT 1) TO '{wh}/dilemmas/v1/data/dilemma/part-0000.parquet'", "COPY statements"),
    ("EXPORT DATABASE '{wh}/dump'", "EXPORT statements are refused"),
    ("ATTACH '{wh}/x.duckdb' AS x", "ATTACH statements are refused"),
    ("INSTALL httpfs", "LOAD statements are refused"),
    ("LOAD parquet", "LOAD statements are refused"),
    ("SET enable_external_access = true", "SET statements are refused"),
    ("CREATE TABLE t AS SELECT * FROM dilemmas", "CREATE statements are refused"),
    ("DROP VIEW dilemmas", "DROP statements are refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", "Cannot access file"),
    ("SELECT * FROM read_text('{wh}/dilemmas/v1/manifest.json')", "Cannot access file"),
    ("SELECT * FROM nope", "query failed: Catalog Error"),
    ("SELEC 1", "bad SQL"),
])
def test_writes_and_outside_files_are_refused(warehouse: Path, sql: str, refused: str) -> None:
    root = warehouse / "warehouse"
    before = tree_bytes(root)
    with pytest.raises(QueryError, match=refused):
        query(warehouse, sql.format(wh=root))
    assert tree_bytes(root) == before
    assert not Path("out.csv").exists()


def test_sql_cli_formats(warehouse: Path, cli) -> None:
    sql = "SELECT source_idx, topic_group, actions[1].action AS first FROM dilemmas__v1 WHERE len(actions) > 0 " \
          "ORDER BY source_idx LIMIT 3"
    as_json = cli("sql", sql, "--format", "json")
    assert as_json.code == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [r["first"] for r in rows] and len(rows) == 3 and all(r["topic_group"] for r in rows)
    as_csv = cli("sql", sql, "--format", "csv")
    assert list(csv.DictReader(io.StringIO(as_csv.stdout))) == [
        {k: str(v) for k, v in r.items()} for r in rows]
    table = cli("sql", sql)
    assert table.code == 0 and all(r["first"] in table.stdout for r in rows)
    nested = cli("sql", "SELECT actions FROM dilemmas__v1 WHERE len(actions) > 0 LIMIT 1", "--format", "csv")
    assert json.loads(list(csv.reader(io.StringIO(nested.stdout)))[1][0])[0]["action_type"] in ("to_do", "not_to_do")
    refused = cli("sql", "COPY dilemmas TO 'x.csv'")
    assert refused.code != 0 and refused.stderr.strip().count("\n") == 0
    assert refused.stderr.startswith("error: COPY statements are refused")
