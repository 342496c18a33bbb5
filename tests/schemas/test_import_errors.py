"""Corrupted copies of the reference files: every error names the file and the row or key, and through the
CLI ends with one line on stderr, a non-zero exit and no run directory."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from valuecorpus.schemas.errors import InputFileError, TaxonomyError, ValueCorpusError
from valuecorpus.schemas.importers import import_path
from valuecorpus.schemas.importers.literals import LiteralListError, parse_list

DETAIL = "daily_dilemmas/dilemmas_with_detail_by_action_test.csv"


def copy(reference_data: Path, rel: str, tmp_path: Path) -> Path:
    target = tmp_path / "src" / Path(rel).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reference_data / rel, target)
    return target


def edit_csv(path: Path, change: Callable[[list[list[str]]], None]) -> None:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    change(rows)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def set_cell(column: str, row: int, value: str) -> Callable[[list[list[str]]], None]:
    def change(rows: list[list[str]]) -> None:
        rows[row][rows[0].index(column)] = value
    return change


def drop_column(column: str) -> Callable[[list[list[str]]], None]:
    def change(rows: list[list[str]]) -> None:
        i = rows[0].index(column)
        for r in rows:
            del r[i]
    return change


def edit_json(path: Path, change: Callable[[object], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def truncate(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")


# Each case: (corpus, reference file, corruption, error type, words the one-line message must contain).
CASES = {
    "truncated-case-json": ("agent_valuebench", "agent_valuebench/case/case_00001.json", truncate,
                            InputFileError, ["case_00001.json", "line 89 column", "not valid JSON"]),
    "truncated-votes-json": ("moral_graph", "moral_graph/dft_edge_first300.json", truncate,
                             InputFileError, ["dft_edge_first300.json", "not valid JSON"]),
    "truncated-outcomes-json": ("emergent_values", "emergent_values/options_hierarchical.json", truncate,
                                InputFileError, ["options_hierarchical.json", "not valid JSON"]),
    "missing-column-situations": (
        "dailydilemmas", "daily_dilemmas/dilemma.csv",
        lambda p: edit_csv(p, drop_column("dilemma_situation")),
        InputFileError, ["dilemma.csv", "header", "missing column(s) 'dilemma_situation'"]),
    "missing-column-detail": (
        "dailydilemmas", DETAIL, lambda p: edit_csv(p, drop_column("wvs")),
        InputFileError, ["dilemmas_with_detail_by_action_test.csv", "header", "'wvs'"]),
    "unexpected-column": (
        "dailydilemmas", "daily_dilemmas/dilemma.csv",
        lambda p: edit_csv(p, lambda rows: [r.append("x") for r in rows]),
        InputFileError, ["dilemma.csv", "unexpected column(s) 'x'"]),
    "bad-idx": (
        "dailydilemmas", "daily_dilemmas/dilemma.csv", lambda p: edit_csv(p, set_cell("idx", 7, "fifty")),
        InputFileError, ["dilemma.csv", "row 7", "'fifty' is not an integer"]),
    "unknown-value-name": (
        "dailydilemmas", DETAIL,
        lambda p: edit_csv(p, set_cell("values_names", 3, "['courage', 'teamwrok', 'responsibility', 'care', "
                                                          "'loyalty', 'support']")),
        TaxonomyError, ["dilemmas_with_detail_by_action_test.csv", "row 3", "'teamwrok'",
                        "dailydilemmas_values", "teamwork"]),
    "malformed-list-literal": (
        "dailydilemmas", DETAIL, lambda p: edit_csv(p, set_cell("parties_direct", 2, "['You', 'The colleague'")),
        InputFileError, ["dilemmas_with_detail_by_action_test.csv", "row 2", "parties_direct", "not a list"]),
    "code-in-list-literal": (
        "dailydilemmas", DETAIL,
        lambda p: edit_csv(p, set_cell("reason_direct", 5, "[__import__('os').getcwd()]")),
        InputFileError, ["row 5", "reason_direct", "only strings and nan"]),
    "misaligned-value-lists": (
        "dailydilemmas", DETAIL, lambda p: edit_csv(p, set_cell("wvs", 6, "['Survival', nan]")),
        InputFileError, ["row 6", "not aligned", "wvs=2"]),
    "topic-disagrees": (
        "dailydilemmas", DETAIL, lambda p: edit_csv(p, set_cell("topic_group", 4, "somewhere_else")),
        InputFileError, ["row 4 (idx 107)", "topic_group", "differs from row 3"]),
    "bad-action-type": (
        "dailydilemmas", DETAIL, lambda p: edit_csv(p, set_cell("action_type", 8, "maybe")),
        InputFileError, ["row 8", "action_type"]),
    "missing-json-key-case": (
        "agent_valuebench", "agent_valuebench/case/case_00490.json",
        lambda p: edit_json(p, lambda d: d.pop("value_b_checkpoint_list")),
        InputFileError, ["case_00490.json", "top level", "missing key(s) 'value_b_checkpoint_list'"]),
    "missing-json-key-checkpoint": (
        "agent_valuebench", "agent_valuebench/case/case_00059.json",
        lambda p: edit_json(p, lambda d: d["value_a_checkpoint_list"][1].pop("expected_signal")),
        InputFileError, ["case_00059.json", "value_a_checkpoint_list[1]", "'expected_signal'"]),
    "missing-json-key-rubric-item": (
        "agent_valuebench", "agent_valuebench/rubric/case_00001_rubric.json",
        lambda p: edit_json(p, lambda d: d["VALUE_B_ITEMS"][0].pop("WEIGHT")),
        InputFileError, ["case_00001_rubric.json", "VALUE_B_ITEMS[0]", "'WEIGHT'"]),
    "unexpected-json-key-env": (
        "agent_valuebench", "agent_valuebench/environment/OpenDataPortalAPI.json",
        lambda p: edit_json(p, lambda d: d["tools"][2].update(returns={"type": "object"})),
        InputFileError, ["OpenDataPortalAPI.json", "tools[2]", "unexpected key(s) 'returns'"]),
    "unknown-value-item": (
        "agent_valuebench", "agent_valuebench/case/case_00952.json",
        lambda p: edit_json(p, lambda d: d.update(value_items=["Care", "Fairnes"])),
        TaxonomyError, ["case_00952.json", "value_items[1]", "'Fairnes'", "mft08", "Fairness"]),
    "unknown-value-system": (
        "agent_valuebench", "agent_valuebench/case/case_00001.json",
        lambda p: edit_json(p, lambda d: d.update(value_system="nfcc1994")),
        TaxonomyError, ["case_00001.json", "value_system", "'nfcc1994'"]),
    "missing-json-key-vote": (
        "moral_graph", "moral_graph/dft_edge_first300.json", lambda p: edit_json(p, lambda d: d[7].pop("toId")),
        InputFileError, ["dft_edge_first300.json", "[7]", "missing key(s) 'toId'"]),
    "bad-relationship": (
        "moral_graph", "moral_graph/dft_edge_first300.json",
        lambda p: edit_json(p, lambda d: d[12].update(relationship="wiser")),
        InputFileError, ["dft_edge_first300.json", "[12]", "relationship"]),
    "missing-json-key-edge-counts": (
        "moral_graph", "moral_graph/dft_moral_graph_all_participants.json",
        lambda p: edit_json(p, lambda d: d["edges"][3]["counts"].pop("impressions")),
        InputFileError, ["dft_moral_graph_all_participants.json", "edges[3].counts", "'impressions'"]),
    "missing-json-key-card": (
        "moral_graph", "moral_graph/dft_canonicalValuesCard.json",
        lambda p: edit_json(p, lambda d: d[40].pop("title")),
        InputFileError, ["dft_canonicalValuesCard.json", "[40]", "'title'"]),
    "outcome-not-a-sentence": (
        "emergent_values", "emergent_values/policy_options.json",
        lambda p: edit_json(p, lambda d: d["Education"].append(3)),
        InputFileError, ["policy_options.json", "Education[", "expected an outcome sentence"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupted_copy_names_file_and_row(reference_data: Path, tmp_path: Path, case: str) -> None:
    corpus, rel, corrupt, error, words = CASES[case]
    path = copy(reference_data, rel, tmp_path)
    import_path(corpus, path)  # the intact copy imports
    corrupt(path)
    with pytest.raises(error) as info:
        import_path(corpus, path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message, (word, message)


def test_list_literals() -> None:
    assert parse_list("['a', nan, \"b's\"]") == ["a", None, "b's"]
    assert parse_list("[]") == [] and parse_list("") == [] and parse_list("nan") == []
    assert parse_list("('x',)") == ["x"]
    for bad in ("['a'", "{'a': 1}", "[1]", "[['a']]", "[os.system('x')]", "'a'", "[nan + 'a']"):
        with pytest.raises(LiteralListError):
            parse_list(bad)


def test_missing_path_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueCorpusError, match="no such file"):
        import_path("moral_graph", tmp_path / "nope.json")
    with pytest.raises(ValueCorpusError, match="unknown import kind 'cvc'"):
        import_path("cvc", tmp_path)
    with pytest.raises(ValueCorpusError, match=r"no \.json files found"):
        import_path("emergent_values", tmp_path)


def test_conflicting_situation_between_files(reference_data: Path, tmp_path: Path) -> None:
    situations = copy(reference_data, "daily_dilemmas/dilemma.csv", tmp_path)
    copy(reference_data, DETAIL, tmp_path)
    edit_csv(situations, set_cell("dilemma_situation", 2, "Something else entirely?"))
    with pytest.raises(InputFileError, match=r"idx 107: dilemma_situation differs from the one in dilemma.csv, row 2"):
        import_path("dailydilemmas", situations.parent)


def test_same_record_twice_is_an_error(reference_data: Path, tmp_path: Path) -> None:
    first = copy(reference_data, "agent_valuebench/case/case_00001.json", tmp_path)
    shutil.copyfile(first, first.with_name("case_copy.json"))
    with pytest.raises(ValueCorpusError, match="same record id"):
        import_path("agent_valuebench", first.parent)


def _runs_left(home: Path) -> list[str]:
    runs = home / "runs"
    return sorted(p.name for p in runs.iterdir()) if runs.exists() else []


@pytest.mark.parametrize("case", ["truncated-case-json", "missing-column-detail", "unknown-value-name",
                                  "malformed-list-literal", "missing-json-key-vote"])
def test_cli_error_is_one_line_and_stages_nothing(reference_data: Path, tmp_path: Path, home: Path, cli,
                                                  case: str) -> None:
    corpus, rel, corrupt, _error, words = CASES[case]
    path = copy(reference_data, rel, tmp_path)
    corrupt(path)
    result = cli("import", corpus, str(path.parent), "--run-id", "broken")
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0] and all(w in lines[0] for w in words)
    assert "Traceback" not in result.stderr
    assert _runs_left(home) == []


@pytest.mark.parametrize("kind,source", [("dailydilemmas", "daily_dilemmas/values.csv"),
                                         ("agent_valuebench", "agent_valuebench/value_systems.json")])
def test_a_taxonomy_source_asked_for_alone_is_an_error(reference_data: Path, kind: str, source: str) -> None:
    with pytest.raises(InputFileError, match="source of the taxonomy") as err:
        import_path(kind, reference_data / source)
    assert source.split("/")[-1] in str(err.value)
