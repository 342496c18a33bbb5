"""Resolution rules, edit write-back and result parsing (no server needed)."""

from __future__ import annotations

import json

import pytest
from curation_samples import make

from valuecorpus.annotation.curated import apply_edits
from valuecorpus.annotation.pull import parse_result, pseudonym
from valuecorpus.annotation.resolve import resolve_sample
from valuecorpus.annotation.tasks import CURATABLE, get_path, set_path, task_data
from valuecorpus.schemas.errors import ValueCorpusError


def _d(n: int, verdict: str, edits: dict | None = None, labels: list | None = None, rating: int | None = None,
       who: str = "") -> dict:
    return {"annotation_id": n, "verdict": verdict, "edits": json.dumps(edits or {}), "labels": labels or [],
            "choices": "{}", "rating": rating, "annotator": who or f"ann-{n}", "comment": None}


def test_majority_tie_threshold_pending_and_adjudication() -> None:
    assert resolve_sample([_d(1, "accept")], [], required=2)["status"] == "pending"
    two_to_one = resolve_sample([_d(1, "accept"), _d(2, "accept"), _d(3, "reject")], [], required=3)
    assert two_to_one["status"] == "resolved" and two_to_one["verdict"] == "accept"
    assert resolve_sample([_d(1, "accept"), _d(2, "reject")], [], 2)["status"] == "needs_adjudication"
    # 2 of 3 is under a 0.7 threshold
    assert resolve_sample([_d(1, "accept"), _d(2, "accept"), _d(3, "reject")], [], 3, 0.7)["status"] == \
        "needs_adjudication"
    adj = resolve_sample([_d(1, "accept"), _d(2, "reject")], [_d(9, "reject", labels=["trust"])], 2)
    assert adj["status"] == "adjudicated" and adj["verdict"] == "reject" and adj["labels"] == ["trust"]


def test_edits_only_under_needs_edit_and_labels_by_majority() -> None:
    res = resolve_sample([_d(1, "needs_edit", {"rule": "A"}, ["x", "y"], 2),
                          _d(2, "needs_edit", {"rule": "B", "translation": "T"}, ["x"], 4),
                          _d(3, "accept", {"rule": "C"}, ["z"], 5)], [], 3)
    assert res["verdict"] == "needs_edit" and res["edits"] == {"rule": "A", "translation": "T"}
    assert res["edit_sources"] == {"rule": {"rule": "first", "annotator": "ann-1", "proposals": 2},
                                   "translation": {"rule": "first", "annotator": "ann-2", "proposals": 1}}
    assert res["labels"] == ["x"] and res["labels_rule"] == "majority" and res["rating"] == 4.0
    accepted = resolve_sample([_d(1, "accept", {"rule": "A"}), _d(2, "accept")], [], 2)
    assert accepted["edits"] == {}


def test_edit_write_back_to_nested_fields_and_validation() -> None:
    rec = make("dilemma", 1)
    edited = apply_edits(rec, {"not_to_do_consequence": "Friend moves alone", "dilemma_situation": "New."})
    assert edited.actions[1].negative_consequence == "Friend moves alone" and edited.dilemma_situation == "New."
    assert rec.actions[1].negative_consequence == "Friend alone"  # the original is untouched
    card = apply_edits(make("values_card", 0), {"policies": "ONE policy\n\nTWO policy\n"})
    assert card.policies == ["ONE policy", "TWO policy"]
    with pytest.raises(ValueCorpusError, match="not an editable"):
        apply_edits(rec, {"values": "x"})
    data = {"a": [{"t": "x", "v": 1}, {"t": "y", "v": 2}]}
    assert set_path(data, "a[t=y].v", 5) and get_path(data, "a[t=y].v") == 5
    assert not set_path(data, "a[t=z].v", 5) and not set_path(data, "b.c", 1)


@pytest.mark.parametrize("kind", CURATABLE)
def test_task_data_is_plain_strings(kind: str) -> None:
    data = task_data(make(kind, 0), kind, "run", "main", 2)
    assert data["sample_id"] == make(kind, 0).id and data["required_annotations"] == 2
    assert all(isinstance(v, str) for k, v in data.items() if k != "required_annotations")


def test_parse_result_keeps_only_changed_edits() -> None:
    data = {"rule": "same", "translation": "old"}
    out = parse_result("value_rule", [
        {"from_name": "verdict", "value": {"choices": ["needs_edit"]}},
        {"from_name": "edit_rule", "value": {"text": ["same"]}},
        {"from_name": "edit_translation", "value": {"text": ["new"]}},
        {"from_name": "value_labels", "value": {"taxonomy": [["个人", "友善"], ["国家", "诚信"]]}},
        {"from_name": "quality", "value": {"rating": 3}},
        {"from_name": "comment", "value": {"text": ["  ok "]}},
    ], data)
    assert out == {"verdict": "needs_edit", "edits": {"translation": "new"}, "labels": ["友善", "诚信"],
                   "choices": {}, "rating": 3, "comment": "ok"}
    assert pseudonym(7, "s1") == pseudonym(7, "s1") != pseudonym(7, "s2")


def test_which_edit_is_applied_majority_first_adjudicator() -> None:
    same = [_d(1, "needs_edit", {"rule": "A"}), _d(2, "needs_edit", {"rule": "B"}), _d(3, "needs_edit", {"rule": "B"})]
    res = resolve_sample(same, [], 3)
    assert res["edits"] == {"rule": "B"}
    assert res["edit_sources"]["rule"] == {"rule": "majority", "annotator": "ann-2", "proposals": 3}
    adj = resolve_sample(same[:2], [_d(9, "needs_edit", {"rule": "Z"}, who="boss")], 2)
    assert adj["edits"] == {"rule": "Z"}
    assert adj["edit_sources"]["rule"] == {"rule": "adjudicator", "annotator": "adj:boss", "proposals": 3}


def test_labels_reach_records_only_with_a_real_majority() -> None:
    # one of three submitted labels: no majority of label sets, the record keeps its own
    few = resolve_sample([_d(1, "accept", labels=["x"]), _d(2, "accept"), _d(3, "accept")], [], 3)
    assert few["labels"] == [] and few["labels_rule"] is None
    adj = resolve_sample([_d(1, "accept"), _d(2, "reject")], [_d(9, "accept", labels=["y"])], 2)
    assert adj["labels"] == ["y"] and adj["labels_rule"] == "adjudicator"


def test_curated_cvc_labels_are_written_by_level() -> None:
    rec = make("value_rule", 0)
    relabelled = apply_edits(rec, {}, ["个人", "诚信", "真诚无欺"])
    assert (relabelled.levels, relabelled.core_values, relabelled.derived_values) == (["个人"], ["诚信"], ["真诚无欺"])
    assert rec.core_values == ["友善"]


def test_taxonomy_results_parse_to_labels() -> None:
    grouped = parse_result("dilemma", [{"from_name": "value_labels", "value": {
        "taxonomy": [["to_do", "trust"], ["not_to_do", "loyalty"]]}}], {})
    assert grouped["labels"] == ["not_to_do/loyalty", "to_do/trust"]
    tree = parse_result("value_rule", [{"from_name": "value_labels", "value": {
        "taxonomy": [["个人", "友善", "尊重他人"], ["国家"]]}}], {})
    assert tree["labels"] == ["国家", "尊重他人"]
    # a pre-filled edit box left as it was (even with other line breaks and spaces) is no edit
    card = parse_result("values_card", [{"from_name": "edit_policies", "value": {"text": [" A\n\nB "]}}],
                        {"policies": "A\nB"})
    assert card["edits"] == {}
