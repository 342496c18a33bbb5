"""The warehouse commands end to end, and their errors: one line, non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse import publish


def test_publish_versions_sql(dilemma_run: str, home: Path, cli) -> None:
    first = cli("publish", dilemma_run, "--dataset", "dilemmas")
    assert first.code == 0, first.stderr
    assert first.stdout.splitlines()[0] == "published dilemmas v1: dilemma=1360"
    by_path = cli("publish", str(DataHome(home).run(dilemma_run).path), "--dataset", "dilemmas")
    assert by_path.code == 0 and "published dilemmas v2: dilemma=1360" in by_path.stdout
    assert "note: same data as v1" in by_path.stdout
    listing = cli("versions", "dilemmas", "--format", "json")
    rows = json.loads(listing.stdout)
    assert [(r["version"], r["rows"], r["same_as"]) for r in rows] == [
        ("v1", "dilemma=1360", ""), ("v2", "dilemma=1360", "v1")]
    assert all(len(r["manifest_sha256"]) == 64 for r in rows)
    table = cli("versions", "dilemmas")
    assert table.code == 0 and "dilemma=1360" in table.stdout and "v2" in table.stdout
    query = cli("sql", "SELECT count(*) AS n FROM dilemmas__v2", "--format", "csv")
    assert query.stdout == "n\n1360\n"


@pytest.mark.parametrize("args, message", [
    (("publish", "no-such-run", "--dataset", "dilemmas"), "run 'no-such-run' not found"),
    (("publish", "import-dd", "--dataset", "Bad-Name"), "invalid dataset name 'Bad-Name'"),
    (("versions", "nope"), "dataset 'nope' not found"),
    (("diff", "dilemmas", "v1", "v9"), "dataset 'dilemmas' has no version v9 (versions: v1)"),
    (("diff", "dilemmas", "v1", "latest"), "invalid version 'latest'"),
    (("diff", "nope", "v1", "v2"), "dataset 'nope' not found"),
    (("sql", "SELECT * FROM nope"), "query failed: Catalog Error"),
    (("sql", "SELEC 1"), "bad SQL"),
    (("sql", "DELETE FROM dilemmas"), "DELETE statements are refused"),
])
def test_errors_are_one_line(home: Path, dilemma_run: str, cli, args: tuple[str, ...], message: str) -> None:
    publish(home, dilemma_run, "dilemmas")
    result = cli(*args)
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
