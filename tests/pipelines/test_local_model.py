"""One small run per kind on the embedded local model (SmolLM2-135M in-process; slow, so tiny n)."""

from __future__ import annotations

from pathlib import Path

from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma, Perspective
from valuecorpus.schemas.taxonomies.loader import load_taxonomy

PERSPECTIVES = """\
kind: perspectives
count: 1
seed: 3
strata: {topic_groups: [medical]}
model:
  backend: local
  max_tokens: 300
  step_max_tokens: {situation: 300, action: 400, description: 450}
filters:
  length: {min_chars: 40, max_chars: 1200}
  language: {min_confidence: 0.3}
params: {description_max_chars: 140, min_sentences: 1}
output: {dataset: local_perspectives}
"""


# What a run on the embedded model may end in, whatever the CPU: records (kept or filtered with a reason) or
# dead letters for what the model wrote (a content check, or a parse of its fields). Never a cut answer
# (`invalid_json`: the grammar's worst case fits max_tokens) nor a request the context window cannot hold.
CONTENT_CLASSES = {"check", "parse", "schema", "taxonomy"}


def _accounted(layout, kind: str, per_item: int) -> tuple[list, list, list]:
    """Every plan item ends as `per_item` records (each kept or filtered with its reason) or as a failed
    sample with its dead letters; nothing else, nothing lost."""
    from valuecorpus.pipelines.planner import read_plan

    records = layout.read_records(f"records/{kind}")
    filtered = layout.read_records("filtered")
    dead = layout.read_records("dead_letters")
    items = {it["sample_id"] for it in read_plan(layout.plan)}
    failed = {d.plan_item for d in dead}
    made = {r.provenance.plan_item for r in records}
    assert failed <= items and made <= items and not failed & made
    assert all(d.reason and d.error_class in CONTENT_CLASSES for d in dead), dead
    assert len(records) + len(filtered) == per_item * (len(items) - len(failed))
    assert all(f.reason for f in filtered)
    manifest = layout.read_manifest()
    assert sum(manifest.counts.values()) == len(records) and manifest.filtered == len(filtered)
    assert manifest.dead_letters == len(dead)
    return records, filtered, dead


def test_demo_dilemma_on_the_local_model(cli, home: Path) -> None:
    res = cli("generate", "demo", "--n", "1", "--run-id", "local-dd", "--executor", "loop", "--no-progress",
              timeout=1500)
    assert res.code == 0, res.stderr[-2000:]
    layout = DataHome(home).run("local-dd")
    manifest = layout.read_manifest()
    records, _filtered, _dead = _accounted(layout, "dilemma", per_item=1)
    assert len(manifest.models) == 1  # the embedded GGUF model answered (every constrained answer closes)
    tax = load_taxonomy("dailydilemmas_values")
    for rec in records:
        Dilemma.model_validate(rec.model_dump())
        for action in rec.actions:  # the values step's enum: whatever the model picks is in the taxonomy
            assert all(tax.get(v.name) is not None for v in action.values)
    assert manifest.tokens.get("completion", 0) > 0


def test_perspectives_on_the_local_model(cli, home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "local_perspectives.yaml"
    recipe.write_text(PERSPECTIVES, encoding="utf-8")
    res = cli("generate", str(recipe), "--run-id", "local-pp", "--executor", "loop", "--no-progress", timeout=1500)
    assert res.code == 0, res.stderr[-2000:]
    layout = DataHome(home).run("local-pp")
    records, _filtered, _dead = _accounted(layout, "perspective", per_item=11)  # eleven variants per dilemma
    for rec in records:
        Perspective.model_validate(rec.model_dump())
    assert layout.read_manifest().tokens.get("completion", 0) > 0
