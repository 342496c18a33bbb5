"""Every reference file imports with zero loss: each documented field of the source is compared with the
record, for every row, after a round trip through Parquet (the records checked are the ones read back)."""

from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from valuecorpus.schemas.arrow import read_records, write_records
from valuecorpus.schemas.importers import import_path
from valuecorpus.schemas.importers.moral_graph import voter_pseudonym
from valuecorpus.schemas.records import Record, stable_id
from valuecorpus.schemas.taxonomies.loader import load_taxonomy


def round_trip(records: list[Record], tmp_path: Path) -> list[Record]:
    """Write and read back one kind; the read-back records must equal the imported ones."""
    path = tmp_path / f"{records[0].kind}.parquet"
    write_records(path, records)
    back = read_records(path)
    assert [r.model_dump() for r in back] == [r.model_dump() for r in records]
    return back


def imported(kind: str, path: Path, tmp_path: Path) -> dict[str, list[Any]]:
    result = import_path(kind, path)
    return {k: round_trip(rows, tmp_path) for k, rows in result.records.items()}


def check_provenance(record: Record, dataset: str, file: str, key: str, taxonomies: list[str] = (),
                     natural_id: bool = False) -> None:
    """`natural_id`: the record's id must not depend on the file's name or the row's position."""
    p = record.provenance
    if natural_id:
        assert record.id not in {stable_id(dataset, file, key)}
    assert (p.origin, p.source_dataset, p.source_file, p.source_key) == ("import", dataset, file, key)
    assert p.taxonomy_versions == [load_taxonomy(t).ref for t in taxonomies]


def py_list(text: str) -> list[str | None]:
    """The test's own reading of a pandas list cell: `nan` → None, then a literal."""
    return ast.literal_eval(re.sub(r"\bnan\b", "None", text)) if text else []


# --- DailyDilemmas -----------------------------------------------------------------------------------------

def test_dailydilemmas_all_situations(reference_data: Path, tmp_path: Path) -> None:
    path = reference_data / "daily_dilemmas" / "dilemma.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["", "idx", "basic_situation", "dilemma_situation"]
    dilemmas = imported("dailydilemmas", path, tmp_path)["dilemma"]
    assert len(dilemmas) == len(rows) == 1360
    for number, (row, d) in enumerate(zip(rows, dilemmas, strict=True), start=1):
        assert row[""] == str(number - 1)  # the pandas index: the row position, kept as source_key
        assert d.source_idx == int(row["idx"])
        assert d.basic_situation == row["basic_situation"]
        assert d.dilemma_situation == row["dilemma_situation"]
        assert d.actions == [] and d.topic is None and d.topic_group is None
        assert d.id == stable_id("daily_dilemmas", "idx", int(row["idx"]))
        check_provenance(d, "daily_dilemmas", "dilemma.csv", f"row {number}")
    assert len({d.id for d in dilemmas}) == 1360


DETAIL_COLUMNS = {
    "idx", "basic_situation", "dilemma_situation", "action_type", "action", "negative_consequence",
    "parties_direct", "parties_indirect", "values_direct", "values_indirect", "reason_direct", "reason_indirect",
    "model_resp_gpt35_clean", "model_resp_gpt4_clean", "values_names", "values_types", "wvs", "mft", "virtue",
    "emotion", "maslow", "background", "topic", "topic_group",
}


def test_dailydilemmas_detail_every_column(reference_data: Path, tmp_path: Path) -> None:
    path = reference_data / "daily_dilemmas" / "dilemmas_with_detail_by_action_test.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == DETAIL_COLUMNS  # a column this test does not compare would go unchecked
    dilemmas = {d.source_idx: d for d in imported("dailydilemmas", path, tmp_path)["dilemma"]}
    assert sorted(dilemmas) == [55, 107, 176, 257]
    taxonomy = load_taxonomy("dailydilemmas_values")
    nan_items = 0
    for number, row in enumerate(rows, start=1):
        d = dilemmas[int(row["idx"])]
        assert (d.basic_situation, d.dilemma_situation) == (row["basic_situation"], row["dilemma_situation"])
        assert (d.topic, d.topic_group) == (int(row["topic"]), row["topic_group"])
        numbers = [n for n, r in enumerate(rows, start=1) if r["idx"] == row["idx"]]
        check_provenance(d, "daily_dilemmas", path.name, "rows " + ",".join(map(str, numbers)),
                         ["dailydilemmas_values"])
        (action,) = [a for a in d.actions if a.action_type == row["action_type"]]
        assert action.action == row["action"]
        assert action.negative_consequence == row["negative_consequence"]
        assert action.background == row["background"]
        for column in ("parties_direct", "parties_indirect", "values_direct", "values_indirect",
                       "reason_direct", "reason_indirect"):
            assert getattr(action, column) == py_list(row[column]), (number, column)
        columns = ("values_names", "values_types", "wvs", "mft", "virtue", "emotion", "maslow")
        expected = [dict(zip(columns, items, strict=True))
                    for items in zip(*(py_list(row[c]) for c in columns), strict=True)]
        got = [{"values_names": v.name, "values_types": v.type, "wvs": v.wvs, "mft": v.mft, "virtue": v.virtue,
                "emotion": v.emotion, "maslow": v.maslow} for v in action.values]
        assert got == expected, number
        nan_items += sum(v is None for e in expected for v in e.values())
        for v in action.values:
            node = taxonomy.lookup(v.name)
            assert node.name == v.name  # stored verbatim, and it is the canonical name
            # the row's theory labels are the taxonomy's mapping of that value (values.csv)
            assert {k: getattr(v, k) for k in ("wvs", "mft", "virtue", "emotion", "maslow")} == {
                k: node.labels.get(k) for k in ("wvs", "mft", "virtue", "emotion", "maslow")}
        assert {(a.model, a.answer) for a in action.model_answers} == {
            ("gpt35", row["model_resp_gpt35_clean"]), ("gpt4", row["model_resp_gpt4_clean"])}
    assert nan_items > 0  # the nan → None path was exercised
    assert all([a.action_type for a in d.actions] == ["to_do", "not_to_do"] for d in dilemmas.values())


def test_dailydilemmas_directory_merges_detail_into_situations(reference_data: Path, tmp_path: Path) -> None:
    result = import_path("dailydilemmas", reference_data / "daily_dilemmas")
    dilemmas = result.records["dilemma"]
    assert len(dilemmas) == 1360 and len({d.id for d in dilemmas}) == 1360
    detailed = {d.source_idx: d for d in dilemmas if d.actions}
    assert sorted(detailed) == [55, 107, 176, 257]
    assert all(d.provenance.source_file == "dilemmas_with_detail_by_action_test.csv" for d in detailed.values())
    assert [p.name for p, _ in result.skipped] == ["values.csv"]
    assert [p.name for p in result.source_files] == ["dilemma.csv", "dilemmas_with_detail_by_action_test.csv"]
    round_trip(dilemmas, tmp_path)


# --- Agent-ValueBench --------------------------------------------------------------------------------------

def _json_files(reference_data: Path, folder: str) -> list[Path]:
    files = sorted((reference_data / "agent_valuebench" / folder).glob("*.json"))
    assert files
    return files


def test_agent_environments(reference_data: Path, tmp_path: Path) -> None:
    for path in _json_files(reference_data, "environment"):
        src = json.loads(path.read_text(encoding="utf-8"))
        assert set(src) == {"env_name", "description", "initial_parameter_schema", "tool_state_dependencies",
                            "tools"}
        (env,) = imported("agent_valuebench", path, tmp_path)["agent_environment"]
        assert env.env_name == src["env_name"] and env.description == src["description"]
        assert env.state_schema == src["initial_parameter_schema"]
        assert [(d.tool, d.state_keys) for d in env.tool_state_dependencies] == list(
            src["tool_state_dependencies"].items())
        assert [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in env.tools] \
            == src["tools"]
        assert all(t.effects == [] for t in env.tools)  # spec only: no behaviour is invented
        check_provenance(env, "agent_valuebench", path.name, "$")


CASE_FIELDS = {  # source key -> record field
    "case_name": "case_name", "environment": "environment", "value_system": "value_system",
    "value_items": "value_items", "task_description": "task_description",
    "env_initial_parameters": "initial_state", "function_list": "function_list",
}


def test_agent_cases(reference_data: Path, tmp_path: Path) -> None:
    for path in _json_files(reference_data, "case"):
        src = json.loads(path.read_text(encoding="utf-8"))
        (case,) = imported("agent_valuebench", path, tmp_path)["agent_case"]
        for key, name in CASE_FIELDS.items():
            assert getattr(case, name) == src[key], (path.name, key)
        assert [s.model_dump() for s in case.special_state_list] == src["special_state_list"]
        assert [c.model_dump() for c in case.checkpoints_a] == src["value_a_checkpoint_list"]
        assert [c.model_dump() for c in case.checkpoints_b] == src["value_b_checkpoint_list"]
        assert case.success_condition == src.get("success_condition")
        assert set(src) <= {*CASE_FIELDS, "special_state_list", "value_a_checkpoint_list",
                            "value_b_checkpoint_list", "success_condition"}
        assert (case.source_case_file, case.option_a_value, case.option_b_value, case.choice_mode) == (None,) * 4
        check_provenance(case, "agent_valuebench", path.name, "$", ["agent_valuebench"])


def test_agent_case_success_condition_kept(reference_data: Path, tmp_path: Path) -> None:
    src = json.loads((reference_data / "agent_valuebench/case/case_00001.json").read_text(encoding="utf-8"))
    src["success_condition"] = {"apis": {"inventory-api-v1": {"status": "disabled"}}, "note": ["a", 1, None]}
    path = tmp_path / "case_x.json"
    path.write_text(json.dumps(src), encoding="utf-8")
    (case,) = imported("agent_valuebench", path, tmp_path)["agent_case"]
    assert case.success_condition == src["success_condition"]


def test_agent_forced_choice_case(reference_data: Path, tmp_path: Path) -> None:
    for path in _json_files(reference_data, "llm_choice"):
        src = json.loads(path.read_text(encoding="utf-8"))
        (case,) = imported("agent_valuebench", path, tmp_path)["agent_case"]
        for key in ("case_name", "source_case_file", "environment", "value_system", "value_items",
                    "option_a_value", "option_b_value", "task_description"):
            assert getattr(case, key) == src[key], key
        assert json.loads(case.choice_mode) is src["choice_mode"] is True
        assert set(src) == {"case_name", "source_case_file", "environment", "value_system", "value_items",
                            "option_a_value", "option_b_value", "choice_mode", "task_description"}
        assert case.checkpoints_a == case.checkpoints_b == [] and case.initial_state is None


def test_agent_rubrics(reference_data: Path, tmp_path: Path) -> None:
    for path in _json_files(reference_data, "rubric"):
        src = json.loads(path.read_text(encoding="utf-8"))
        (rubric,) = imported("agent_valuebench", path, tmp_path)["rubric"]
        assert (rubric.case_name, rubric.value_a_name, rubric.value_b_name, rubric.status, rubric.case_conflict) \
            == (src["CASE_NAME"], src["VALUE_A_NAME"], src["VALUE_B_NAME"], src["STATUS"], src["CASE_CONFLICT"])
        assert {str(s.score): s.meaning for s in rubric.scale} == src["SCALE"]
        assert [i.model_dump() for i in rubric.items_a] == [{k.lower(): v for k, v in i.items()}
                                                            for i in src["VALUE_A_ITEMS"]]
        assert [i.model_dump() for i in rubric.items_b] == [{k.lower(): v for k, v in i.items()}
                                                            for i in src["VALUE_B_ITEMS"]]
        assert rubric.judge_note == src["JUDGE_NOTE"]
        assert len(src) == 9
        check_provenance(rubric, "agent_valuebench", path.name, "$")


def test_agent_valuebench_directory(reference_data: Path) -> None:
    result = import_path("agent_valuebench", reference_data / "agent_valuebench")
    assert result.counts() == {"agent_case": 7, "agent_environment": 6, "rubric": 6}
    assert [p.name for p, _ in result.skipped] == ["value_systems.json"]
    ids = [r.id for rows in result.records.values() for r in rows]
    assert len(ids) == len(set(ids))
    # every case's environment and functions are among the imported environments' tools
    tools = {e.env_name: {t.name for t in e.tools} for e in result.records["agent_environment"]}
    for case in result.records["agent_case"]:
        assert set(case.function_list) <= tools[case.environment]


# --- Moral graph -------------------------------------------------------------------------------------------

def _mg(reference_data: Path, name: str) -> tuple[Path, Any]:
    path = reference_data / "moral_graph" / name
    return path, json.loads(path.read_text(encoding="utf-8"))


def _check_v1_card(card: Any, src: dict, collection: str) -> None:
    assert (card.card_key, card.collection, card.source_id) == (f"{collection}:{src['id']}", collection,
                                                               str(src["id"]))
    assert (card.title, card.instructions_short, card.instructions_detailed) == (
        src["title"], src["instructionsShort"], src["instructionsDetailed"])
    assert card.policies == src["evaluationCriteria"]
    assert (card.created_at, card.updated_at) == (src["createdAt"], src["updatedAt"])
    canonical = src.get("canonicalCardId")
    assert card.canonical_card_key == (None if canonical is None else f"canonical:{canonical}")
    assert (card.chat_id, card.quality) == (src.get("chatId"), src.get("quality"))
    assert (card.description, card.contexts, card.context, card.question_key) == (None, [], None, None)


@pytest.mark.parametrize(("name", "kind", "collection"), [
    ("dft_canonicalValuesCard.json", "canonical_values_card", "canonical"),
    ("dft_valuesCard_first200.json", "values_card", "participant")])
def test_values_cards_v1(reference_data: Path, tmp_path: Path, name: str, kind: str, collection: str) -> None:
    path, src = _mg(reference_data, name)
    cards = imported("moral_graph", path, tmp_path)[kind]
    assert len(cards) == len(src) and len(src) in (115, 200)
    for i, (card, row) in enumerate(zip(cards, src, strict=True)):
        assert set(row) <= {"id", "title", "instructionsShort", "instructionsDetailed", "evaluationCriteria",
                            "createdAt", "updatedAt", "canonicalCardId", "chatId", "quality"}
        _check_v1_card(card, row, collection)
        check_provenance(card, "moral_graph", name, f"[{i}]", natural_id=True)


def test_aggregated_graph_export(reference_data: Path, tmp_path: Path) -> None:
    path, src = _mg(reference_data, "dft_moral_graph_all_participants.json")
    records = imported("moral_graph", path, tmp_path)
    assert set(src) == {"values", "edges"}
    assert len(records["canonical_values_card"]) == 60 and len(records["moral_graph_edge"]) == 69
    for i, (card, row) in enumerate(zip(records["canonical_values_card"], src["values"], strict=True)):
        _check_v1_card(card, row, "canonical")
        check_provenance(card, "moral_graph", path.name, f"values[{i}]", natural_id=True)
    for i, (edge, row) in enumerate(zip(records["moral_graph_edge"], src["edges"], strict=True)):
        assert set(row) == {"sourceValueId", "wiserValueId", "contexts", "counts", "summary"}
        assert (edge.source_card, edge.wiser_card) == (f"canonical:{row['sourceValueId']}",
                                                       f"canonical:{row['wiserValueId']}")
        assert edge.contexts == row["contexts"]
        c = edge.counts
        assert {"markedWiser": c.marked_wiser, "markedNotWiser": c.marked_not_wiser,
                "markedLessWise": c.marked_less_wise, "markedUnsure": c.marked_unsure,
                "impressions": c.impressions} == row["counts"]
        # computed from the counts by the toolkit; the export's own values agree
        assert edge.wiser_likelihood == pytest.approx(row["summary"]["wiserLikelihood"], abs=1e-12)
        assert edge.entropy == pytest.approx(row["summary"]["entropy"], abs=1e-12)
        check_provenance(edge, "moral_graph", path.name, f"edges[{i}]", natural_id=True)


def test_votes_are_pseudonymised(reference_data: Path, tmp_path: Path) -> None:
    path, src = _mg(reference_data, "dft_edge_first300.json")
    votes = imported("moral_graph", path, tmp_path)["moral_graph_vote"]
    assert len(votes) == len(src) == 300
    for i, (vote, row) in enumerate(zip(votes, src, strict=True)):
        assert set(row) == {"userId", "fromId", "toId", "story", "contextId", "runId", "relationship", "comment",
                            "createdAt", "updatedAt"}
        assert (vote.from_card, vote.to_card) == (f"canonical:{row['fromId']}", f"canonical:{row['toId']}")
        assert (vote.context, vote.relationship, vote.story, vote.comment) == (
            row["contextId"], row["relationship"], row["story"], row["comment"])
        assert (vote.graph_run, vote.created_at, vote.updated_at) == (row["runId"], row["createdAt"],
                                                                      row["updatedAt"])
        assert vote.voter == voter_pseudonym(str(row["userId"])) and vote.voter.startswith("voter-")
        check_provenance(vote, "moral_graph", path.name, f"[{i}]", natural_id=True)
    # one voter, one pseudonym; distinct voters stay distinct
    users = {row["userId"] for row in src}
    assert len({v.voter for v in votes}) == len(users)
    assert None in {v.comment for v in votes} and any(v.comment for v in votes)


def test_edge_hypotheses(reference_data: Path, tmp_path: Path) -> None:
    path, src = _mg(reference_data, "dft_edgeHypothesis.json")
    votes = imported("moral_graph", path, tmp_path)["moral_graph_vote"]
    assert len(votes) == len(src) == 43
    for vote, row in zip(votes, src, strict=True):
        assert set(row) == {"fromId", "toId", "story", "contextId", "createdAt", "updatedAt", "runId"}
        assert (vote.from_card, vote.to_card, vote.story, vote.context) == (
            f"canonical:{row['fromId']}", f"canonical:{row['toId']}", row["story"], row["contextId"])
        assert (vote.graph_run, vote.created_at, vote.updated_at) == (row["runId"], row["createdAt"],
                                                                      row["updatedAt"])
        assert vote.relationship is None and vote.voter is None and vote.comment is None


def test_mge_example_graph(reference_data: Path, tmp_path: Path) -> None:
    path, src = _mg(reference_data, "mge_example_graph.json")
    records = imported("moral_graph", path, tmp_path)
    assert set(src) == {"values", "upgrades", "questions"}
    cards = records["values_card"]
    assert len(cards) == len(src["values"]) == 6
    for card, row in zip(cards, src["values"], strict=True):
        assert set(row) == {"id", "title", "description", "policies", "contexts", "context", "questionId"}
        assert (card.card_key, card.title, card.description, card.policies, card.contexts, card.context,
                card.question_key) == (f"example:{row['id']}", row["title"], row["description"], row["policies"],
                                       row["contexts"], row["context"], f"example:{row['questionId']}")
        assert card.collection == "example"
        assert card.instructions_short is None and card.instructions_detailed is None
    upgrades = records["moral_graph_vote"]
    assert [(u.from_card, u.to_card, u.context, u.relationship) for u in upgrades] == [
        (f"example:{r['fromId']}", f"example:{r['toId']}", r["context"], "upgrade") for r in src["upgrades"]]
    assert [f"upgrades[{i}]" for i in range(4)] == [u.provenance.source_key for u in upgrades]
    questions = records["moral_graph_question"]
    assert [(q.question_key, q.title, q.question, q.seed_message) for q in questions] == [
        (f"example:{r['id']}", r["title"], r["question"], None) for r in src["questions"]]


def test_cases_and_contexts(reference_data: Path, tmp_path: Path) -> None:
    path, src = _mg(reference_data, "dft_cases.json")
    questions = imported("moral_graph", path, tmp_path)["moral_graph_question"]
    assert [(q.question_key, q.title, q.question, q.seed_message) for q in questions] == [
        (f"case:{r['id']}", r["title"], r["question"], r["seedMessage"]) for r in src]
    path, src = _mg(reference_data, "dft_context.json")
    contexts = imported("moral_graph", path, tmp_path)["moral_graph_context"]
    assert len(contexts) == 21
    assert [(c.context, c.question_key, c.created_at) for c in contexts] == [(r["id"], None, None) for r in src]
    path, src = _mg(reference_data, "dft_contextsOnCases.json")
    links = imported("moral_graph", path, tmp_path)["moral_graph_context"]
    assert [(c.context, c.question_key, c.created_at, c.updated_at) for c in links] == [
        (r["contextId"], f"case:{r['caseId']}", r["createdAt"], r["updatedAt"]) for r in src]


def test_moral_graph_directory(reference_data: Path) -> None:
    result = import_path("moral_graph", reference_data / "moral_graph")
    # the graph export's 60 cards are the canonical table's cards: imported once (identical content)
    assert result.counts() == {"canonical_values_card": 115, "moral_graph_context": 37, "moral_graph_edge": 69,
                               "moral_graph_question": 5, "moral_graph_vote": 347, "values_card": 206}
    assert len(result.source_files) == 9 and result.skipped == []
    ids = [r.id for rows in result.records.values() for r in rows]
    assert len(ids) == len(set(ids))


# --- Emergent values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "groups", "total"), [
    ("options_hierarchical.json", 30, 510), ("policy_options.json", 18, 136), ("entities.json", 2, 39),
])
def test_outcome_sets(reference_data: Path, tmp_path: Path, name: str, groups: int, total: int) -> None:
    path = reference_data / "emergent_values" / name
    src = json.loads(path.read_text(encoding="utf-8"))
    outcomes = imported("emergent_values", path, tmp_path)["outcome"]
    flat = [(category, sentence) for category, sentences in src.items() for sentence in sentences]
    assert len(src) == groups and len(flat) == len(outcomes) == total
    for i, (outcome, (category, sentence)) in enumerate(zip(outcomes, flat, strict=True)):
        assert (outcome.outcome_set, outcome.category, outcome.index, outcome.description) == (
            path.stem, category, i, sentence)
        position = src[category].index(sentence)
        check_provenance(outcome, "emergent_values", name, f"{category}[{position}]")
