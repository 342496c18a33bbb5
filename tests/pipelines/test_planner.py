"""The planner: stratified quotas (max/min ≤ 1.5 per axis once count ≥ 2 × values), determinism, seeds."""

from __future__ import annotations

from collections import Counter

from valuecorpus.pipelines.planner import coverage, make_plan, read_plan, write_plan
from valuecorpus.pipelines.recipes import parse_recipe

AXES = ["taxonomy_node", "topic_group", "persona", "language"]


def _recipe(count: int, seed: int = 0, **strata: object) -> object:
    return parse_recipe({"kind": "dilemmas", "count": count, "seed": seed, "taxonomy": "dailydilemmas_values",
                         "strata": strata, "output": {"dataset": "d"}}, "planner-test.yaml")


STRATA = {
    "taxonomy_nodes": ["honesty", "trust", "fairness", "loyalty", "courage", "empathy", "justice"],
    "topic_groups": ["workplace", "family", "school", "career", "environment"],
    "personas": ["nurse", "student", "shop owner"],
    "languages": ["en", "zh"],
}


def test_coverage_per_axis_within_ratio() -> None:
    for count in (14, 15, 23, 40, 101, 210):
        items = make_plan(_recipe(count, **STRATA))
        assert len(items) == count
        for axis, counts in coverage(items, AXES).items():
            values = len(STRATA[{"taxonomy_node": "taxonomy_nodes", "topic_group": "topic_groups",
                                 "persona": "personas", "language": "languages"}[axis]])
            assert len(counts) == values, (count, axis)  # every value is used
            assert max(counts.values()) - min(counts.values()) <= 1
            if count >= 2 * values:
                assert max(counts.values()) / min(counts.values()) <= 1.5, (count, axis, counts)


def test_cross_product_is_spread() -> None:
    items = make_plan(_recipe(210, **STRATA))  # 7 × 5 × 3 × 2 = 210 cells: each cell once
    assert Counter(it["stratum"] for it in items).most_common(1)[0][1] == 1


def test_same_recipe_same_plan_and_ids_other_seed_other_plan(tmp_path) -> None:
    a = make_plan(_recipe(30, seed=3, **STRATA))
    b = make_plan(_recipe(30, seed=3, **STRATA))
    c = make_plan(_recipe(30, seed=4, **STRATA))
    assert a == b
    assert [it["sample_id"] for it in a] != [it["sample_id"] for it in c]
    assert [it["stratum"] for it in a] != [it["stratum"] for it in c]
    assert len({it["sample_id"] for it in a}) == 30
    write_plan(a, tmp_path / "plan.parquet")
    assert read_plan(tmp_path / "plan.parquet") == a


def test_axes_from_taxonomy_and_value_pairs() -> None:
    recipe = _recipe(60, taxonomy_nodes="from taxonomy dailydilemmas_values level value",
                     value_pairs={"from_taxonomy": "dailydilemmas_values", "level": "value", "limit": 20})
    items = make_plan(recipe)
    nodes = Counter(it["taxonomy_node"] for it in items)
    assert len(nodes) == 60 and set(nodes.values()) == {1}  # 301 values, 60 items: 60 distinct
    pairs = Counter(tuple(it["value_pair"]) for it in items)
    assert len(pairs) == 20 and set(pairs.values()) == {3}
    assert all(a != b for a, b in pairs)
