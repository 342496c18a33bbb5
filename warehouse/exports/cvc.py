"""Evaluation export of CVC rule-pair dilemmas: an A/B/C choice and which letter follows which rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from valuecorpus.warehouse.exports.base import STRINGS, ExportFormat, ExportInput, render, template_ref

OPTION = pa.struct([("letter", pa.string()), ("text", pa.string())])
ABC_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt", pa.string()), ("choices", STRINGS), ("options", pa.list_(OPTION)),
    ("answer_rule_1", pa.string()), ("answer_rule_2", pa.string()), ("distractor", pa.string()),
    ("rule_1", pa.string()), ("rule_2", pa.string()), ("language", pa.string()), ("prompt_template", pa.string()),
])


def abc_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    for d in source.rows("rule_pair_dilemma"):
        options = sorted(d["options"], key=lambda o: o["letter"])
        by_role = {o["follows"]: o["letter"] for o in options}
        if [o["letter"] for o in options] != ["A", "B", "C"] or len(by_role) != 3:
            source.skip("rule-pair dilemma without options A, B, C following rule_1, rule_2 and a distractor")
            continue
        shown = [{"letter": o["letter"], "text": o["text"]} for o in options]
        yield {"id": d["id"], "prompt": render("cvc_abc", scene=d["scene"], options=shown, language=d["language"]),
               "choices": ["A", "B", "C"], "options": shown, "answer_rule_1": by_role["rule_1"],
               "answer_rule_2": by_role["rule_2"], "distractor": by_role["distractor"],
               "rule_1": d["rule_1"]["rule"], "rule_2": d["rule_2"]["rule"], "language": d["language"],
               "prompt_template": template_ref("cvc_abc")}


FORMATS = [
    ExportFormat("cvc-abc", "evaluation", "rule_pair_dilemma",
                 "CVC A/B/C choice: prompt, options, the letter each rule picks and the distractor",
                 ABC_SCHEMA, abc_rows),
]
