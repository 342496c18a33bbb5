"""Outcome comparisons: both orders, K samples per order, answers parsed (unparseable counted), records field by
field; utilities fitted from them recover the canned preference order; the CLI path (`generate` on imported
emergent-values outcomes, then `utilities fit`); bad recipes; a local-model run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from corpus_chains_harness import run
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

from valuecorpus.pipelines.chains.outcomes import parse_answer
from valuecorpus.pipelines.recipes import load_recipe
from valuecorpus.pipelines.utilities import edges_from_comparisons, fit_thurstonian
from valuecorpus.schemas.errors import RecipeError
from valuecorpus.schemas.records import OutcomeComparison

OUTCOMES = load_recipe("outcomes").params["outcomes"]
# The canned model's true preference: a fixed utility per outcome (not the listing order).
UTILITY = {text: u for text, u in zip(OUTCOMES, [2, 6, 4, 5, 1, 0, 3, 7], strict=True)}
FORMATS = ("{x}", "**{x}**", "Option {x}.", "Answer: {x}", "{x}")  # short: max_tokens is 4
UNSURE = (OUTCOMES[4], OUTCOMES[5])  # this pair's first sample of each order gets no usable answer
K = 5


def options_of(user: str) -> tuple[str, str]:
    m = re.search(r"Option A:\n(.+)\n\nOption B:\n(.+)\n\nPlease", user)
    return m.group(1), m.group(2)


def respond(req: dict[str, Any]) -> Any:
    a, b = options_of(req["last_user"])
    sample = req["body"]["seed"] - 42
    if sample == 0 and {a, b} == set(UNSURE):
        return "Both options seem fine to me."
    better = "A" if UTILITY.get(a, 0) > UTILITY.get(b, 0) else "B"
    pick = better if sample != K - 1 else ("B" if better == "A" else "A")  # one dissenting sample per order
    return FORMATS[sample].format(x=pick)


@pytest.fixture(scope="module")
def oc_run() -> Any:
    return run("outcomes", respond)


def test_pairs_both_orders_and_k_samples(oc_run: Any) -> None:
    assert not oc_run.dead and not oc_run.filtered
    assert len(oc_run.plan) == 28 and len(oc_run.records) == 56
    reqs = oc_run.chain_requests()
    assert len(reqs) == 28 * 2 * K
    seeds = sorted({r["body"]["seed"] for r in reqs})
    assert seeds == [42 + s for s in range(K)]  # each sample its own sampling seed
    assert all(r["body"]["temperature"] == 1.0 for r in reqs)
    pairs = {}
    for rec in oc_run.records:
        pairs.setdefault(frozenset((rec.option_a.outcome_id, rec.option_b.outcome_id)), []).append(rec)
    assert len(pairs) == 28
    for recs in pairs.values():
        original, flipped = sorted(recs, key=lambda r: r.order != "original")
        assert (original.order, flipped.order) == ("original", "flipped")
        assert original.option_a == flipped.option_b and original.option_b == flipped.option_a


def test_records_field_by_field(oc_run: Any) -> None:
    for rec in oc_run.records:
        assert isinstance(rec, OutcomeComparison)
        OutcomeComparison.model_validate(rec.model_dump(mode="json"))
        a, b = rec.option_a.description, rec.option_b.description
        assert rec.samples == K and rec.model == "fake-model"
        unsure = {a, b} == set(UNSURE)
        assert rec.unparsed == (1 if unsure else 0)
        wins_a = sum(1 for s in range(K) if not (unsure and s == 0)
                     and (UTILITY[a] > UTILITY[b]) == (s != K - 1))
        assert rec.probability_a == pytest.approx(wins_a / (K - rec.unparsed))
        assert rec.provenance.prompt_templates[0].startswith("outcomes/compare@")
    assert len({r.id for r in oc_run.records}) == 56


def test_fitted_utilities_recover_the_preference_order(oc_run: Any) -> None:
    edges, descriptions = edges_from_comparisons(oc_run.records)
    assert len(edges) == 28
    fit = fit_thurstonian(edges, descriptions, holdout=0.0)
    ranked = [descriptions[u.outcome_id] for u in fit.utilities]
    assert ranked == sorted(OUTCOMES, key=lambda t: -UTILITY[t])
    assert fit.train.accuracy == 1.0


def test_parse_answer() -> None:
    assert [parse_answer(t) for t in ("A", " B.", "**A**", "Option B", '"A"', "Answer: B", "answer: a")] == \
        ["A", "B", "A", "B", "A", "B", "A"]
    assert parse_answer("I think A is better.\nAnswer: B") == "B"
    for text in ("", "a good one", "Both", "Neither option", "AB", "Bob"):
        assert parse_answer(text) is None


@pytest.mark.parametrize(("overrides", "key"), [
    ({"filters": {"near_duplicate": {"enabled": True}, "exact_duplicate": False}}, "filters.near_duplicate.enabled"),
    ({"filters": {"near_duplicate": {"enabled": False}}}, "filters.exact_duplicate"),
    ({"params": {"outcomes": ["same", "same"]}}, "params.outcomes"),
    ({"params": {"samples_per_order": 0}}, "params.samples_per_order"),
])
def test_bad_recipe_values_fail_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(f"key '{key}'")):
        load_recipe("outcomes", overrides)


def test_cli_generate_from_imported_outcomes_then_fit(cli: Any, home: Path, reference_data: Path,
                                                       tmp_path: Path) -> None:
    full = json.loads((reference_data / "emergent_values" / "options_hierarchical.json").read_text())
    source = tmp_path / "options_hierarchical.json"  # the same format, one category, six outcomes
    source.write_text(json.dumps({"Personal finances": full["Personal finances"][:6]}))
    imported = cli("import", "emergent_values", str(source), "--run-id", "outcomes-import")
    assert imported.code == 0, imported.stderr
    recipe = tmp_path / "money.yaml"
    recipe.write_text((Path(load_recipe("outcomes").source_path)).read_text(encoding="utf-8"))
    with FakeServer(FakeServerConfig(responder=_money_respond)) as server:
        gen = cli("generate", str(recipe), "--from-run", "outcomes-import", "--n", "15", "--executor", "loop",
                  "--base-url", server.base_url, "--model", "fake-model", "--run-id", "oc", "--no-progress")
    assert gen.code == 0, gen.stderr
    layout = home / "runs" / "oc"
    assert json.loads((layout / "manifest.json").read_text())["counts"] == {"outcome_comparison": 30}
    fitted = cli("utilities", "fit", "oc", "--holdout", "0.1")
    assert fitted.code == 0, fitted.stderr
    assert "held-out accuracy" in fitted.stdout
    result = json.loads((layout / "utilities.json").read_text())
    assert result["holdout_metrics"]["edges"] == 2 and result["metrics"]["edges"] == 13
    assert result["holdout_metrics"]["accuracy"] == 1.0
    means = [u["mean"] for u in result["utilities"]]
    assert means == sorted(means, reverse=True)
    amounts = [_dollars(u["description"]) for u in result["utilities"]]
    assert amounts == sorted(amounts, reverse=True)  # more money preferred, as the canned model answers
    out = tmp_path / "u.parquet"
    assert cli("utilities", "fit", "oc", "--output", str(out)).code == 0
    import pyarrow.parquet as pq

    assert pq.read_table(out).column_names == ["outcome_id", "mean", "variance", "description"]
    missing = cli("utilities", "fit", "no-such-run")
    assert missing.code != 0 and "neither a run" in missing.stderr and "Traceback" not in missing.stderr


def _dollars(text: str) -> int:
    return int(re.search(r"\$([\d,]+)", text).group(1).replace(",", ""))


def _money_respond(req: dict[str, Any]) -> Any:
    if "Option A:" not in req["last_user"]:
        return None  # the engine's dialect probe: the server's own answer
    a, b = options_of(req["last_user"])
    return "A" if _dollars(a) > _dollars(b) else "B"


def test_local_model_small_run(tmp_path: Path) -> None:
    res = run("outcomes", None, {"count": 1, "params": {"samples_per_order": 2, "outcomes": OUTCOMES[:2]}},
              local=True, cache_dir=tmp_path)
    res.assert_accounted(closed=True)
    assert not res.dead and len(res.records) == 2  # free-text answers: nothing to fail but the transport
    for rec in res.records:
        assert rec.samples == 2 and 0 <= rec.unparsed <= 2
        assert rec.probability_a is None if rec.unparsed == 2 else 0.0 <= rec.probability_a <= 1.0
        assert rec.provenance.endpoint_kind == "local"
