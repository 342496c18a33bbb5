"""Exports of a published version: every format, as JSONL and as Parquet, loads in `datasets`; the DPO rows
have TRL's documented conversational preference shape; the same version gives the same bytes; and the rows are
the ones the records call for (counted here from the records, not by the exporter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wh_kinds import stage_every_kind

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.warehouse import publish
from valuecorpus.warehouse.exports import FORMATS, export

ROLES = {"system", "user", "assistant"}


def is_messages(value: Any) -> bool:
    """TRL's conversational format (docs: dataset_formats): a list of {"role", "content"} messages."""
    return (isinstance(value, list) and len(value) > 0 and all(
        isinstance(m, dict) and set(m) == {"role", "content"} and m["role"] in ROLES
        and isinstance(m["content"], str) for m in value))


def check_trl_preference(row: dict[str, Any]) -> None:
    """Conversational preference with an explicit prompt: prompt messages ending with the user's turn, chosen
    and rejected the assistant's answer to it."""
    for column in ("prompt", "chosen", "rejected"):
        assert is_messages(row[column]), (column, row[column])
    assert row["prompt"][-1]["role"] == "user"
    assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    assert row["chosen"][0]["content"] != row["rejected"][0]["content"]


def expected_rows(records: dict[str, list[Any]]) -> dict[str, int]:
    """What each format must hold, counted from the records the version was published from."""
    cases = records["agent_case"]
    environments = {e.env_name for e in records["agent_environment"]}
    choice = [c for c in cases if c.option_a_value and c.option_b_value]
    return {
        "dpo": len(records["preference_pair"]), "sft": len(records["preference_pair"]),
        "dilemma-choice": sum(1 for d in records["dilemma"]
                              if sorted(a.action_type for a in d.actions) == ["not_to_do", "to_do"]),
        "clash": sum(1 for p in records["perspective"] for q in ("general", "discomfort", "previous", "current")
                     if getattr(p.gold, q) is not None),
        "cvc-abc": len(records["rule_pair_dilemma"]),
        "avb-choice": len(choice),
        "avb-bundle": sum(1 for c in cases if c not in choice and c.environment in environments),
        "outcome-pairs": len(records["outcome_comparison"]),
    }


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory, reference_data: Path) -> tuple[Path, dict[str, list[Any]]]:
    home = tmp_path_factory.mktemp("exports") / "home"
    records = stage_every_kind(home, reference_data)
    publish(home, "every-kind", "everything")
    return home, records


def test_every_format_loads_in_datasets_and_is_deterministic(version: tuple[Path, dict], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    from datasets import load_dataset

    home, records = version
    expected = expected_rows(records)
    assert set(expected) == set(FORMATS)
    for name, spec in FORMATS.items():
        assert expected[name] > 0, name
        loaded = {}
        for suffix, builder in ((".jsonl", "json"), (".parquet", "parquet")):
            out = tmp_path / f"{name}{suffix}"
            result = export(home, "everything", "v1", name, out)
            again = export(home, "everything", 1, name, tmp_path / f"again-{name}{suffix}")
            assert out.read_bytes() == again.path.read_bytes(), (name, suffix)  # same version, same bytes
            assert result.rows == expected[name], (name, result.skipped)
            ds = load_dataset(builder, data_files={"train": str(out)}, split="train")
            assert ds.num_rows == expected[name] and ds.column_names == spec.schema.names, (name, suffix)
            loaded[suffix] = ds.to_list()
        assert loaded[".jsonl"] == loaded[".parquet"], name  # both file types hold the same rows
        rows = loaded[".parquet"]
        assert len({r["id"] for r in rows}) == len(rows), name
        if name == "dpo":
            for row in rows:
                check_trl_preference(row)
        if name == "sft":
            assert all(is_messages(r["messages"]) and [m["role"] for m in r["messages"]] == ["user", "assistant"]
                       for r in rows)


def test_rows_say_what_the_records_say(version: tuple[Path, dict], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    home, records = version

    def rows(fmt: str) -> list[dict[str, Any]]:
        return pq.read_table(export(home, "everything", None, fmt, tmp_path / f"{fmt}.parquet").path).to_pylist()

    pairs = {p.id: p for p in records["preference_pair"]}
    for row in rows("dpo"):
        pair = pairs[row["id"]]
        assert (row["prompt"][0]["content"], row["chosen"][0]["content"], row["rejected"][0]["content"]) == (
            pair.prompt, pair.chosen, pair.rejected)
    dilemmas = {d.id: d for d in records["dilemma"]}
    for row in rows("dilemma-choice"):
        d = dilemmas[row["id"]]
        to_do = next(a for a in d.actions if a.action_type == "to_do")
        not_to_do = next(a for a in d.actions if a.action_type == "not_to_do")
        assert (row["action_1"], row["action_2"]) == (to_do.action, not_to_do.action)
        assert d.dilemma_situation in row["prompt"] and f"Action 1: {to_do.action}" in row["prompt"]
        assert row["choices"] == ["Action 1", "Action 2"]
    perspectives = {p.id: p for p in records["perspective"]}
    for row in rows("clash"):
        p = perspectives[row["perspective_id"]]
        assert row["gold"].lower() == getattr(p.gold, row["question"])
        assert row["gold"] in row["choices"] and p.description in row["prompt"]
        assert row["has_situation"] == (p.dilemma_id in dilemmas)
        if row["has_situation"]:
            assert dilemmas[p.dilemma_id].dilemma_situation in row["prompt"]
    rule_pairs = {d.id: d for d in records["rule_pair_dilemma"]}
    for row in rows("cvc-abc"):
        d = rule_pairs[row["id"]]
        follows = {o.follows: o.letter for o in d.options}
        assert (row["answer_rule_1"], row["answer_rule_2"], row["distractor"]) == (
            follows["rule_1"], follows["rule_2"], follows["distractor"])
        assert [o["letter"] for o in row["options"]] == ["A", "B", "C"] and d.scene in row["prompt"]
    bundles = rows("avb-bundle")
    environments = {e.env_name: e for e in records["agent_environment"]}
    for row in bundles:
        assert row["environment"]["env_name"] == row["case"]["environment"] == row["environment_name"]
        env = environments[row["environment_name"]]
        tools = row["environment"]["tools"]
        assert [t["name"] for t in tools] == [t.name for t in env.tools]
        # free-form JSON (tool parameter schemas) travels as JSON text, as in the warehouse
        assert [json.loads(t["parameters"]) if t["parameters"] else None for t in tools] == [
            t.parameters for t in env.tools]
    choice = rows("avb-choice")
    assert all(r["prompt"].strip() and r["choices"] == ["A", "B"] for r in choice)


def test_cli_export_and_its_errors(version: tuple[Path, dict], tmp_path: Path, cli) -> None:
    from valuecorpus.cli.outputs import FORMATS_HELP

    assert all(name in FORMATS_HELP for name in FORMATS)  # --help names every format without importing them
    home, records = version
    env = {"VALUECORPUS_HOME": str(home)}
    out = tmp_path / "pairs.jsonl"
    result = cli("export", "everything@v1", "--format", "dpo", "--out", str(out), env=env)
    assert result.code == 0, result.stderr
    assert f"{len(records['preference_pair'])} rows (jsonl)" in result.stdout
    assert len(out.read_text().splitlines()) == len(records["preference_pair"])
    skipped = cli("export", "everything", "--format", "avb-choice", "--out", str(tmp_path / "c.parquet"), env=env)
    assert skipped.code == 0 and "skipped" in skipped.stdout  # cases that are not forced-choice are named

    listed = cli("export", "--list", env=env)
    assert listed.code == 0 and all(name in listed.stdout for name in FORMATS)
    for args, message in (
        (["--format", "nope", "--out", "x.jsonl"], "unknown export format 'nope'"),
        (["--format", "dpo"], "export needs --out"),
        (["--format", "dpo", "--out", "x.csv"], "must end in .jsonl or .parquet"),
    ):
        bad = cli("export", "everything", *args, env=env)
        assert bad.code == 2 and bad.stderr.startswith("error: ") and message in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_export_of_a_kind_the_version_lacks(home: Path, dilemma_run: str, tmp_path: Path) -> None:
    publish(home, dilemma_run, "dilemmas")
    with pytest.raises(ValueCorpusError, match="has no preference_pair records, which the dpo export reads"):
        export(home, "dilemmas", None, "dpo", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
