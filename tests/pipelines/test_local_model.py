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
  max_tokens: 64
  step_max_tokens: {situation: 80, action: 48, description: 56}
filters:
  length: {min_chars: 40, max_chars: 1200}
  language: {min_confidence: 0.3}
params: {description_max_chars: 140, min_sentences: 1}
output: {dataset: local_perspectives}
"""


def _accounted(layout, kind: str) -> tuple[list, list, list]:
    records = layout.read_records(f"records/{kind}")
    filtered = layout.read_records("filtered")
    dead = layout.read_records("dead_letters")
    return records, filtered, dead


def test_demo_dilemma_on_the_local_model(cli, home: Path) -> None:
    res = cli("generate", "demo", "--n", "1", "--run-id", "local-dd", "--executor", "loop", "--no-progress",
              timeout=1500)
    assert res.code == 0, res.stderr[-2000:]
    layout = DataHome(home).run("local-dd")
    manifest = layout.read_manifest()
    records, filtered, dead = _accounted(layout, "dilemma")
    assert len(manifest.models) == 1  # the embedded GGUF model
    # string bounds fit each step's max_tokens, so the constrained output always closes: no dead letters,
    # and the sample is a record (kept, or filtered with its reason)
    assert dead == [] and manifest.model_extra["engine"]["requests"] == 9
    assert len(records) + len(filtered) == 1
    tax = load_taxonomy("dailydilemmas_values")
    for rec in records:
        Dilemma.model_validate(rec.model_dump())
        for action in rec.actions:
            assert all(tax.get(v.name) is not None for v in action.values)
    assert manifest.tokens.get("completion", 0) > 0


def test_perspectives_on_the_local_model(cli, home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "local_perspectives.yaml"
    recipe.write_text(PERSPECTIVES, encoding="utf-8")
    res = cli("generate", str(recipe), "--run-id", "local-pp", "--executor", "loop", "--no-progress", timeout=1500)
    assert res.code == 0, res.stderr[-2000:]
    layout = DataHome(home).run("local-pp")
    records, filtered, dead = _accounted(layout, "perspective")
    assert dead == [] and len(records) + len(filtered) == 11
    for rec in records:
        Perspective.model_validate(rec.model_dump())
    assert layout.read_manifest().tokens.get("completion", 0) > 0
