"""Small, valid records of every curated kind, and staging them as a run (records + manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.layout import RunLayout, RunManifest
from valuecorpus.schemas.records import RECORD_TYPES, Provenance, stable_id

XSS_SCRIPT = "<script>window.__xss_script = 1; alert('xss')</script>"
XSS_IMG = "<img src=x onerror=\"window.__xss_img = 1; alert('img')\">"


def _prov() -> Provenance:
    return Provenance(origin="generate", generator_model="test-model", run_id="src")


def make(kind: str, i: int) -> Any:
    """Record `i` of `kind`; even-numbered dilemmas carry script/img probes in their text."""
    probes = i % 2 == 0
    sid = stable_id("annotation-test", kind, i)
    common: dict[str, Any] = {"id": sid, "provenance": _prov()}
    data: dict[str, Any]
    if kind == "dilemma":
        data = {
            "basic_situation": f"helping a friend move house {i}",
            "dilemma_situation": f"Situation {i}: your friend asks for help moving this weekend. "
                                 + (f"{XSS_SCRIPT} {XSS_IMG} " if probes else "")
                                 + "You promised your sister to visit her. Do you help your friend?",
            "actions": [
                {"action_type": "to_do", "action": "Help the friend", "negative_consequence": "Sister is sad",
                 "values": [{"name": "trust"}, {"name": "friendship"}]},
                {"action_type": "not_to_do", "action": "Visit the sister", "negative_consequence": "Friend alone",
                 "values": [{"name": "honesty"}]},
            ],
        }
    elif kind == "perspective":
        data = {"dilemma_id": "d1", "action": "lying to a friend", "acceptable": "sparing feelings",
                "unacceptable": "breaking trust", "category": "straightforward", "variant": "S>>O",
                "description": f"Character A values honesty above comfort ({i})."}
    elif kind == "value_rule":
        data = {"rule": f"应该尊重他人 {i}", "translation": "One should respect others", "levels": ["个人"],
                "core_values": ["友善"], "derived_values": ["尊重他人"], "label": 1}
    elif kind == "rule_pair_dilemma":
        ref = {"rule_id": "r", "rule": "应当诚实", "core_values": ["诚信"]}
        data = {"rule_1": ref, "rule_2": {**ref, "rule": "应当友善", "core_values": ["友善"]},
                "scene": f"场景 {i}", "options": [{"letter": "A", "text": "说实话", "follows": "rule_1"},
                                                 {"letter": "B", "text": "安慰", "follows": "rule_2"},
                                                 {"letter": "C", "text": "离开", "follows": "distractor"}]}
    elif kind == "values_card":
        data = {"card_key": f"generated:{i}", "collection": "generated", "title": f"Honest care {i}",
                "description": "Caring through honesty",
                "policies": ["MOMENTS when truth helps", "CHANCES to be kind"], "contexts": ["When advising"]}
    elif kind == "moral_graph_vote":
        data = {"from_card": "1", "to_card": "2", "context": "When advising", "relationship": "upgrade",
                "story": f"They learned to listen ({i})."}
    elif kind == "agent_case":
        cp = {"checkpoint_id": "c1", "checkpoint_name": "read inbox", "why_it_matters": "context",
              "expected_actions": ["list_emails()"]}
        data = {"case_name": f"case{i}", "environment": "mail", "value_system": "schwartz",
                "value_items": ["Security", "Benevolence"], "task_description": f"Handle the mail ({i}).",
                "checkpoints_a": [cp], "checkpoints_b": [{**cp, "checkpoint_id": "c2"}]}
    elif kind == "rubric":
        item = {"item_id": "a1", "source_checkpoint": "c1", "weight": 2, "question": "Did it read?",
                "score_2": "yes", "score_1": "partly", "score_0": "no"}
        data = {"case_name": f"case{i}", "value_a_name": "Security", "value_b_name": "Benevolence",
                "case_conflict": "safety vs kindness", "items_a": [item], "items_b": [item]}
    elif kind == "preference_pair":
        data = {"prompt": f"Should I tell the truth? ({i})", "chosen": "Yes, kindly.", "rejected": "No, lie.",
                "chosen_value": "honesty", "rejected_value": "comfort"}
    elif kind == "outcome_comparison":
        data = {"option_a": {"outcome_id": "o1", "description": "You get $10."},
                "option_b": {"outcome_id": "o2", "description": f"A stranger gets $20 ({i})."},
                "probability_a": 0.4}
    else:
        raise KeyError(kind)
    return RECORD_TYPES[kind].model_validate({**common, **data})


def stage_run(runs_dir: Path, run_id: str, counts: dict[str, int]) -> RunLayout:
    layout = RunLayout(runs_dir / run_id)
    written = {}
    for kind, n in counts.items():
        written[kind] = write_records(layout.records(kind), [make(kind, i) for i in range(n)])
    layout.write_manifest(RunManifest(run_id=run_id, origin="generate", kinds=sorted(counts), counts=written,
                                      models=["test-model"]))
    return layout
