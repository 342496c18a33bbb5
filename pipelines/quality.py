"""The quality summary of a staged run (`valuecorpus run show`).

- schema-valid rate: share of the model's structured outputs that parsed against their JSON Schema and the
  record model: 1 − (dead letters of class invalid_json / schema / parse / taxonomy + records filtered as
  schema) / requests;
- duplicate rate: records dropped as exact or near duplicates / records generated;
- coverage per stratum: items per value of each plan axis, in the plan and among the kept records (counted
  from each record's own stratum field where the chain has one), with the max/min ratio (∞ when a value has
  no kept record);
- dead-letter rate: dead letters / requests;
- tokens, cost, dead letters by class, filtered samples by filter.

`check_quality` compares the two rates with the recipe's `quality` thresholds (`valuecorpus run check`).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from valuecorpus.schemas.layout import RunLayout

SCHEMA_CLASSES = ("invalid_json", "schema", "parse", "taxonomy")


def _ratio(counts: dict[str, int]) -> float | None:
    if not counts:
        return None
    lo, hi = min(counts.values()), max(counts.values())
    return float("inf") if lo == 0 else round(hi / lo, 3)


def quality_report(layout: RunLayout) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from valuecorpus.pipelines.planner import _label, item_axes

    m = layout.read_manifest()
    extra = m.model_extra or {}
    dead_classes: dict[str, int] = extra.get("dead_letter_classes", {})
    filtered_by: dict[str, int] = extra.get("filtered_by", {})
    engine = extra.get("engine") or {}
    # the seed stage's proposal requests are the run's too (their parse failures are dead letters of the run)
    requests = int(engine.get("requests") or 0) + int((extra.get("seed_pool") or {}).get("proposal_requests") or 0)
    generated = int(extra.get("generated") or (sum(m.counts.values()) + m.filtered))
    schema_bad = sum(dead_classes.get(c, 0) for c in SCHEMA_CLASSES) + filtered_by.get("schema", 0)
    report: dict[str, Any] = {
        "run_id": m.run_id, "created_at": m.created_at, "recipe": (m.recipe or {}).get("name"),
        "plan_items": extra.get("plan_items"), "records": m.counts, "generated": generated,
        "requests": requests,
        "schema_valid_rate": round(1 - schema_bad / requests, 4) if requests else None,
        "duplicate_rate": round((filtered_by.get("exact_duplicate", 0) + filtered_by.get("near_duplicate", 0))
                                / generated, 4) if generated else None,
        "dead_letter_rate": round(m.dead_letters / requests, 4) if requests else None,
        "tokens": m.tokens, "cost_usd": m.cost_usd, "dead_letters": dead_classes, "filtered": filtered_by,
        "timings": m.timings, "coverage": {}, "spend": extra.get("spend") or [],
        "seed_pool": extra.get("seed_pool") or {},
    }
    staged = extra.get("coverage") or {}
    if staged and all(isinstance(c, dict) and "kept" in c for c in staged.values()):
        for axis, c in sorted(staged.items()):
            report["coverage"][axis] = {"values": len(c["planned"]), "planned_max_min": _ratio(c["planned"]),
                                        "kept_max_min": _ratio(c["kept"]), "planned": c["planned"],
                                        "kept": c["kept"], "kept_from": c.get("kept_from", "plan")}
    elif layout.plan.exists():  # runs staged before coverage was counted from the records
        with layout.plan.open("rb") as fh:
            plan = [json.loads(s) for s in pq.ParquetFile(fh).read(columns=["item"]).column("item").to_pylist()]
        by_sample = {it["sample_id"]: it for it in plan}
        kept_samples: Counter[str] = Counter()
        for kind in m.kinds:
            for path in layout.table_files(f"records/{kind}"):
                with path.open("rb") as fh:
                    table = pq.ParquetFile(fh).read(columns=["provenance"])
                for prov in table.column("provenance").to_pylist():
                    if prov and prov.get("plan_item") in by_sample:
                        kept_samples[prov["plan_item"]] += 1
        axes = item_axes(plan)
        for axis in axes:
            planned = Counter(_label(it[axis]) for it in plan if axis in it)
            kept = {v: 0 for v in planned}
            for sid in kept_samples:
                if axis in by_sample[sid]:
                    kept[_label(by_sample[sid][axis])] += 1
            report["coverage"][axis] = {"values": len(planned), "planned_max_min": _ratio(dict(planned)),
                                        "kept_max_min": _ratio(kept), "planned": dict(planned), "kept": kept}
    return report


def check_quality(layout: RunLayout, report: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's two rates against its recipe's thresholds: {rates, thresholds, failures, passed}. A run without
    engine requests (an import) has no rates and passes; a run staged before thresholds existed gets the
    defaults."""
    from valuecorpus.pipelines.recipes import QualityThresholds

    report = report if report is not None else quality_report(layout)
    recipe = layout.read_manifest().recipe or {}
    limits = QualityThresholds.model_validate(recipe.get("quality") or {})
    failures = []
    valid, dead = report["schema_valid_rate"], report["dead_letter_rate"]
    if valid is not None and valid < limits.min_schema_valid_rate:
        failures.append(f"schema-valid rate {valid:.1%} is below the recipe's minimum "
                        f"{limits.min_schema_valid_rate:.1%} (quality.min_schema_valid_rate)")
    if dead is not None and dead > limits.max_dead_letter_rate:
        failures.append(f"dead-letter rate {dead:.1%} is above the recipe's maximum "
                        f"{limits.max_dead_letter_rate:.1%} (quality.max_dead_letter_rate)")
    return {"run_id": report["run_id"], "schema_valid_rate": valid, "dead_letter_rate": dead,
            "requests": report["requests"], "records": report["records"],
            "thresholds": limits.model_dump(), "failures": failures, "passed": not failures}


def render_report(report: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.table import Table

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    head = Table(title=f"run {report['run_id']}", show_header=False)
    head.add_row("recipe", str(report["recipe"]))
    head.add_row("plan items", str(report["plan_items"]))
    head.add_row("records kept", ", ".join(f"{k} {v}" for k, v in report["records"].items()))
    head.add_row("records generated", str(report["generated"]))
    head.add_row("engine requests", str(report["requests"]))
    head.add_row("schema-valid rate", pct(report["schema_valid_rate"]))
    head.add_row("dead-letter rate", pct(report["dead_letter_rate"]))
    head.add_row("duplicate rate", pct(report["duplicate_rate"]))
    head.add_row("tokens", ", ".join(f"{k} {v}" for k, v in report["tokens"].items()) or "0")
    head.add_row("cost", f"${report['cost_usd']:.4f}")
    head.add_row("dead letters", ", ".join(f"{k} {v}" for k, v in report["dead_letters"].items()) or "none")
    head.add_row("filtered", ", ".join(f"{k} {v}" for k, v in report["filtered"].items()) or "none")
    seeds = report.get("seed_pool") or {}
    if seeds.get("distinct_seeds_used") is not None:
        sources = ", ".join(f"{n} {s}" for s, n in (seeds.get("by_source") or {}).items())
        head.add_row("seed situations", f"{seeds['distinct_seeds_used']} distinct for {seeds['planned']} plan items "
                                        f"(pool: {sources}; {seeds.get('duplicates', 0)} duplicates)")
    if seeds.get("note"):
        head.add_row("note", seeds["note"])
    cov = Table("stratum axis", "values", "planned max/min", "kept max/min", title="coverage")
    for axis, c in report["coverage"].items():
        cov.add_row(axis, str(c["values"]), str(c["planned_max_min"]), str(c["kept_max_min"]))
    money = Table("step", "endpoint", "model", "requests", "cached", "prompt tokens", "completion tokens", "cost $",
                  title="paid per step (answers cached by other runs at 0)")
    for row in report.get("spend") or []:
        money.add_row(row["step"], row["endpoint"], row["model"], str(row["requests"]), str(row["cached"]),
                      str(row["prompt_tokens"]), str(row["completion_tokens"]), f"{row['cost_usd']:.6f}")
    return Group(head, money, cov)
