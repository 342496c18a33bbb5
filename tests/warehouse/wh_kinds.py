"""Runs holding every record kind, for cards, exports and reports.

The reference corpora give real records of the kinds they hold (through the project's importers); the kinds no
reference file holds (interview, perspective, value rules, rule-pair dilemmas, preference pairs, outcome
comparisons) are built here, small and valid. `stage_generated` / `stage_curated` add what a generated and a
curated run leave beside their records: a plan with strata, dead letters, filtered samples, tokens and cost,
curation resolutions and agreement figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from wh_staging import stage_run

from valuecorpus.schemas.arrow import write_records
from valuecorpus.schemas.importers import import_path
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import RECORD_TYPES, Provenance, stable_id
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample

IMPORTED = {"dailydilemmas": "daily_dilemmas", "agent_valuebench": "agent_valuebench",
            "moral_graph": "moral_graph", "emergent_values": "emergent_values"}
XSS_LABEL = "<img src=x onerror=\"window.__xss_report = 1\">"
CATEGORY_GOLD = {  # CLASH Fig. 2: which questions each category asks
    "straightforward": {"general": "yes", "discomfort": "no"},
    "simple_contrast": {"general": "ambiguous"},
    "swayed_contrast": {"general": "no", "discomfort": "yes"},
    "shift": {"previous": "yes", "current": "no"},
    "half_shift": {"previous": "no", "current": "ambiguous"},
    "false_shift": {"previous": "yes", "current": "yes"},
}


def _prov(**extra: Any) -> Provenance:
    return Provenance(origin="generate", generator_model="test-model", recipe="test", **extra)


def built(kind: str, i: int, dilemma_ids: list[str] | None = None) -> Any:
    """Record `i` of a kind the reference data does not hold."""
    data: dict[str, Any]
    if kind == "perspective":
        category = list(CATEGORY_GOLD)[i % len(CATEGORY_GOLD)]
        data = {"dilemma_id": (dilemma_ids or ["d-missing"])[i % len(dilemma_ids or ["d-missing"])],
                "action": "Reporting the error", "acceptable": "protecting patients", "unacceptable": "loyalty",
                "category": category, "variant": "S>>O",
                "description": f"Character A values candour above comfort ({i}).", "gold": CATEGORY_GOLD[category]}
    elif kind == "value_rule":
        data = {"rule": f"应该尊重他人 {i}", "translation": f"One should respect others {i}", "language": "zh",
                "levels": ["个人"], "core_values": ["友善"], "derived_values": ["尊重他人"], "label": 1}
    elif kind == "rule_pair_dilemma":
        letters = ["A", "B", "C"][i % 3:] + ["A", "B", "C"][:i % 3]
        roles = dict(zip(letters, ["rule_1", "rule_2", "distractor"], strict=True))
        ref = {"rule_id": f"r{i}", "rule": "应当诚实", "core_values": ["诚信"]}
        data = {"rule_1": ref, "rule_2": {**ref, "rule_id": f"s{i}", "rule": "应当友善", "core_values": ["友善"]},
                "scene": f"场景 {i}", "language": "zh",
                "options": [{"letter": letter, "text": f"做法 {letter}", "follows": roles[letter]}
                            for letter in ["C", "A", "B"]]}
    elif kind == "preference_pair":
        data = {"prompt": f"Should I tell my friend the truth? ({i})", "chosen": f"Yes, kindly ({i}).",
                "rejected": f"No, keep quiet ({i}).", "chosen_value": "honesty", "rejected_value": "loyalty",
                "topic": "friendship"}
    elif kind == "outcome_comparison":
        data = {"option_a": {"outcome_id": f"o{i}", "description": f"You receive ${10 + i}."},
                "option_b": {"outcome_id": f"p{i}", "description": f"A stranger receives ${20 + i}."},
                "order": "flipped" if i % 2 else "original", "probability_a": round(i / 10, 2), "samples": 5,
                "model": "test-model"}
    elif kind == "interview":
        data = {"question": "How should I advise a grieving friend?", "participant": f"p{i}",
                "turns": [{"role": "interviewer", "content": "What matters to you here?"},
                          {"role": "participant", "content": f"Being present ({i})."}]}
    elif kind == "values_card_match":
        data = {"card_a": f"generated:a{i}", "card_b": f"generated:b{i}", "similarity": 0.7,
                "verdict": "same" if i % 2 else "different", "reason": "The same attention."}
    elif kind == "value_rank":
        data = {"card": f"canonical:{165 + i}", "title": f"Value {i}", "rank": i + 1, "pagerank": 0.1 / (i + 1),
                "edges_in": 1, "edges_out": 0}
    else:
        raise KeyError(kind)
    return RECORD_TYPES[kind].model_validate({"id": stable_id("wh-kinds", kind, i), "provenance": _prov(), **data})


BUILT_KINDS = {"perspective": 12, "value_rule": 5, "rule_pair_dilemma": 6, "preference_pair": 8,
               "outcome_comparison": 6, "interview": 3, "values_card_match": 2, "value_rank": 3}


def every_kind(reference_data: Path) -> dict[str, list[Any]]:
    records: dict[str, list[Any]] = {}
    for importer, folder in IMPORTED.items():
        for kind, rows in import_path(importer, reference_data / folder).records.items():
            records.setdefault(kind, []).extend(rows)
    dilemma_ids = [d.id for d in records["dilemma"] if len(d.actions) == 2][:3]
    for kind, n in BUILT_KINDS.items():
        records[kind] = [built(kind, i, dilemma_ids) for i in range(n)]
    _link(records)
    assert set(records) == set(RECORD_TYPES), set(RECORD_TYPES) - set(records)
    return records


def _link(records: dict[str, list[Any]]) -> None:
    """Point the built records' references at records of the same version, as the validation gate requires:
    rule pairs at the value rules, comparisons at the outcomes, card matches at the values cards."""
    rules = [r.id for r in records["value_rule"]]
    records["rule_pair_dilemma"] = [p.model_copy(update={
        "rule_1": p.rule_1.model_copy(update={"rule_id": rules[i % len(rules)]}),
        "rule_2": p.rule_2.model_copy(update={"rule_id": rules[(i + 1) % len(rules)]})})
        for i, p in enumerate(records["rule_pair_dilemma"])]
    outcomes = records["outcome"]
    records["outcome_comparison"] = [c.model_copy(update={
        "option_a": c.option_a.model_copy(update={"outcome_id": outcomes[2 * i].id}),
        "option_b": c.option_b.model_copy(update={"outcome_id": outcomes[2 * i + 1].id})})
        for i, c in enumerate(records["outcome_comparison"])]
    cards = [c.card_key for c in records["values_card"]]
    records["values_card_match"] = [m.model_copy(update={"card_a": cards[2 * i], "card_b": cards[2 * i + 1]})
                                    for i, m in enumerate(records["values_card_match"])]


def stage_every_kind(home: Path, reference_data: Path, run_id: str = "every-kind") -> dict[str, list[Any]]:
    records = every_kind(reference_data)
    stage_run(home, run_id, records, taxonomy_versions={"dailydilemmas_values": "1.0.0", "cvc": "1.0.0",
                                                       "agent_valuebench": "1.0.0"})
    return records


def generated_dilemmas(values: list[str], n: int) -> list[Any]:
    """Dilemmas whose two actions serve different values of the taxonomy."""
    out = []
    for i in range(n):
        # the probe label is a stratum (below): a value outside the taxonomy never passes the gate
        a, b = values[i % len(values)], values[(i * 3 + 1) % len(values)]
        actions = [{"action_type": "to_do", "action": f"Act {i}", "values": [{"name": a, "type": "direct"}]},
                   {"action_type": "not_to_do", "action": f"Refrain {i}", "values": [{"name": b, "type": "direct"}]}]
        item = stable_id("wh-plan", i)  # the plan item differs from the record id: the report must join them
        out.append(RECORD_TYPES["dilemma"].model_validate({
            "id": stable_id("wh-generated", i), "provenance": _prov(plan_item=item),
            "basic_situation": f"situation {i}",
            "dilemma_situation": "You must choose. " * (1 + i % 7) + "What do you do?", "topic_group": "work",
            "actions": actions}))
    return out


def stage_generated(home: Path, run_id: str, dilemmas: list[Any], dead: dict[str, int],
                    filtered: dict[str, int]) -> list[str]:
    """A generated run: records, a plan (two strata axes), dead letters and filtered samples, tokens and cost.
    Returns each dilemma's stratum."""
    stage_run(home, run_id, {"dilemma": dilemmas}, origin="generate", models=["test-model"],
                     prompt_versions={"dilemmas/situation": "0123456789ab", "dilemmas/values": "ba9876543210"},
                     tokens={"prompt_tokens": 12_000, "completion_tokens": 3_400, "tokens": 15_400}, cost_usd=0.0421,
                     dead_letters=sum(dead.values()), filtered=sum(filtered.values()),
                     taxonomy_versions={"dailydilemmas_values": "1.0.0"})
    layout = DataHome(home).run(run_id)
    strata = [f"topic_group={'work' if i % 2 else 'family'}|persona=p{i % 3}" for i in range(len(dilemmas))]
    strata[0] = f"topic_group={XSS_LABEL}|persona=p0"
    pq.write_table(pa.table({"index": list(range(len(dilemmas))),
                             "sample_id": [d.provenance.plan_item for d in dilemmas],
                             "seed": list(range(len(dilemmas))), "stratum": strata}), layout.plan)
    letters = [DeadLetter(request_id=f"{cls}-{i}", stage=stage, error_class=cls, reason=f"{cls} happened")
               for key, n in dead.items() for stage, cls in [key.split(":")] for i in range(n)]
    write_records(layout.dead_letters, letters, model=DeadLetter)
    removed = [FilteredSample(sample_id=f"{name}-{i}", kind="dilemma", filter=name, reason=f"{name} hit")
               for name, n in filtered.items() for i in range(n)]
    write_records(layout.filtered, removed, model=FilteredSample)
    return strata


def stage_curated(home: Path, run_id: str, source: str, dilemmas: list[Any], verdicts: list[str],
                  agreement: dict[str, Any]) -> Path:
    """A curated run of `source`: the accepted / edited records, the resolutions of every sample (one verdict
    per dilemma, batches of 10) and the agreement figures in the manifest."""
    kept = [d for d, v in zip(dilemmas, verdicts, strict=True) if v in ("accept", "needs_edit")]
    path = stage_run(home, run_id, {"dilemma": kept}, origin="curate", parent_runs=[source],
                     models=["test-model"], annotation={"annotators": 3, "annotations": 3 * len(dilemmas),
                                                        "samples": len(dilemmas), "agreement": agreement})
    layout = DataHome(home).run(run_id)
    layout.curation_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "sample_id": [d.id for d in dilemmas], "kind": ["dilemma"] * len(dilemmas),
        "batch": [f"b{i // 10 + 1:04d}" for i in range(len(dilemmas))],
        "status": ["tie" if v == "tie" else "resolved" for v in verdicts],
        "verdict": [None if v == "tie" else v for v in verdicts]}), layout.resolutions)
    return path
