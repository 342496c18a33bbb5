"""Evaluation exports of dilemmas: DailyDilemmas forced choice (Action 1 / Action 2) and CLASH perspective
questions with their gold answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from valuecorpus.schemas.records import stable_id
from valuecorpus.warehouse.exports.base import STRINGS, ExportFormat, ExportInput, render, template_ref

CHOICE_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt", pa.string()), ("choices", STRINGS), ("action_1", pa.string()),
    ("action_2", pa.string()), ("values_action_1", STRINGS), ("values_action_2", STRINGS),
    ("topic_group", pa.string()), ("source_idx", pa.int64()), ("prompt_template", pa.string()),
])
CLASH_SCHEMA = pa.schema([
    ("id", pa.string()), ("perspective_id", pa.string()), ("dilemma_id", pa.string()), ("category", pa.string()),
    ("variant", pa.string()), ("question", pa.string()), ("prompt", pa.string()), ("choices", STRINGS),
    ("gold", pa.string()), ("has_situation", pa.bool_()), ("prompt_template", pa.string()),
])
# The questions CLASH asks, in order; a perspective is asked those its category gives a gold answer for.
QUESTIONS = ("general", "discomfort", "previous", "current")
ANSWERS = {"yes": "Yes", "no": "No", "ambiguous": "Ambiguous"}


def _names(action: dict[str, Any]) -> list[str]:
    """The action's annotated values, or its raw direct and indirect value lists."""
    return [v["name"] for v in action["values"]] or [
        v for v in (*action["values_direct"], *action["values_indirect"]) if v]


def choice_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    for d in source.rows("dilemma"):
        to_do = [a for a in d["actions"] if a["action_type"] == "to_do"]
        not_to_do = [a for a in d["actions"] if a["action_type"] == "not_to_do"]
        if len(to_do) != 1 or len(not_to_do) != 1:
            source.skip("dilemma without exactly one to_do and one not_to_do action")
            continue
        first, second = to_do[0], not_to_do[0]
        yield {"id": d["id"], "prompt": render("dilemma_choice", situation=d["dilemma_situation"],
                                               action_1=first["action"], action_2=second["action"]),
               "choices": ["Action 1", "Action 2"], "action_1": first["action"], "action_2": second["action"],
               "values_action_1": _names(first), "values_action_2": _names(second),
               "topic_group": d["topic_group"], "source_idx": d["source_idx"],
               "prompt_template": template_ref("dilemma_choice")}


def clash_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    situations = {d["id"]: d["dilemma_situation"] for d in source.rows("dilemma")}
    for p in source.rows("perspective"):
        situation = situations.get(p["dilemma_id"])
        gold = p["gold"] or {}
        asked = [q for q in QUESTIONS if gold.get(q) is not None]
        if not asked:
            source.skip("perspective without gold answers")
            continue
        if situation is None:
            source.note("perspective whose dilemma is not in this version: its prompts carry no situation")
        for q in asked:
            name = f"clash_{q}"
            yield {"id": stable_id(p["id"], q), "perspective_id": p["id"], "dilemma_id": p["dilemma_id"],
                   "category": p["category"], "variant": p["variant"], "question": q,
                   "prompt": render(name, situation=situation, action=p["action"], description=p["description"]),
                   "choices": ["Yes", "No"] if q == "discomfort" else ["Yes", "No", "Ambiguous"],
                   "gold": ANSWERS[gold[q]], "has_situation": situation is not None,
                   "prompt_template": template_ref(name)}


FORMATS = [
    ExportFormat("dilemma-choice", "evaluation", "dilemma",
                 "DailyDilemmas forced choice: prompt, choices Action 1 / Action 2, the values each action serves",
                 CHOICE_SCHEMA, choice_rows),
    ExportFormat("clash", "evaluation", "perspective",
                 "CLASH perspective questions (general, discomfort, previous, current) with gold answers",
                 CLASH_SCHEMA, clash_rows, joins=("dilemma",)),
]
