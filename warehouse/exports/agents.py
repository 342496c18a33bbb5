"""Evaluation exports of Agent-ValueBench cases: the forced-choice variant (A / B) and case bundles (the case,
its environment and its rubric in one row, ready for an agent harness). Free-form JSON parts (state schemas,
tool parameters, initial state) stay JSON text, as in the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from valuecorpus.schemas.arrow import arrow_schema
from valuecorpus.schemas.records import AgentCase, AgentEnvironment, Rubric
from valuecorpus.warehouse.exports.base import STRINGS, ExportFormat, ExportInput, render, template_ref

CHOICE_SCHEMA = pa.schema([
    ("id", pa.string()), ("case_name", pa.string()), ("environment", pa.string()), ("value_system", pa.string()),
    ("prompt", pa.string()), ("choices", STRINGS), ("option_a_value", pa.string()),
    ("option_b_value", pa.string()), ("prompt_template", pa.string()),
])


def _struct(model: type) -> pa.StructType:
    """A record's Arrow struct without its provenance (the version keeps it; a bundle is what a harness reads)."""
    return pa.struct([f for f in arrow_schema(model) if f.name != "provenance"])


BUNDLE_SCHEMA = pa.schema([
    ("id", pa.string()), ("case_name", pa.string()), ("environment_name", pa.string()),
    ("case", _struct(AgentCase)), ("environment", _struct(AgentEnvironment)), ("rubric", _struct(Rubric)),
])


def _is_choice(case: dict[str, Any]) -> bool:
    return bool(case["option_a_value"] and case["option_b_value"])


def choice_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    for case in source.rows("agent_case"):
        if not _is_choice(case):
            source.skip("agent case without option_a_value / option_b_value (not a forced-choice case)")
            continue
        prompt = render("avb_choice", task_description=case["task_description"])
        yield {"id": case["id"], "case_name": case["case_name"], "environment": case["environment"],
               "value_system": case["value_system"], "prompt": prompt, "choices": ["A", "B"],
               "option_a_value": case["option_a_value"], "option_b_value": case["option_b_value"],
               "prompt_template": template_ref("avb_choice")}


def bundle_rows(source: ExportInput) -> Iterator[dict[str, Any]]:
    # Rows come without provenance, in the records' Arrow form: exactly the bundle's struct fields.
    environments: dict[str, dict[str, Any]] = {}
    for env in source.rows("agent_environment"):
        environments.setdefault(env["env_name"], env)
    rubrics: dict[str, dict[str, Any]] = {}
    for rubric in source.rows("rubric"):
        rubrics.setdefault(rubric["case_name"], rubric)
    for case in source.rows("agent_case"):
        if _is_choice(case) and not (case["checkpoints_a"] or case["checkpoints_b"]):
            source.skip("forced-choice case (no checkpoints): exported by avb-choice")
            continue
        env = environments.get(case["environment"])
        if env is None:
            source.skip("agent case whose environment is not in this version")
            continue
        rubric = rubrics.get(case["case_name"])
        if rubric is None:
            source.note("case bundle without a rubric in this version (rubric is null)")
        yield {"id": case["id"], "case_name": case["case_name"], "environment_name": case["environment"],
               "case": case, "environment": env, "rubric": rubric}


FORMATS = [
    ExportFormat("avb-choice", "evaluation", "agent_case",
                 "Agent-ValueBench forced choice: the task with options A / B and the value each serves",
                 CHOICE_SCHEMA, choice_rows),
    ExportFormat("avb-bundle", "evaluation", "agent_case",
                 "Agent-ValueBench case bundles: case, environment and rubric in one row",
                 BUNDLE_SCHEMA, bundle_rows, joins=("agent_environment", "rubric")),
]
