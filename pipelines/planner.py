"""The planner: a recipe (and a chain's extra axes) → plan items with stratified quotas. Seeded.

Each axis (taxonomy nodes, value pairs, topic groups, personas, languages, and any axis a chain adds, such as
the input dilemmas of the perspectives chain) is a list of values. Items are assigned greedily:

- per axis, values are used in rounds (a seeded order; a value is used again only when every value of the axis
  has been used as often), so each axis value gets count/len(axis) items, give or take one: max − min ≤ 1, and
  max/min ≤ 1.5 once count ≥ 2 × len(axis);
- within a round, among the first candidates of the round the value whose combination with the values
  already chosen for this item is the least used wins, so the cross product is covered as evenly as the
  marginals allow.

An item's id hashes the recipe identity (its content minus count and model), the item's values, its index and
the seed: the same recipe and seed give the same plan and ids on every runner; another seed another plan.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from valuecorpus.pipelines.recipes import FromTaxonomy, Recipe
from valuecorpus.schemas.records.base import canonical_json, stable_id

# Axis names in the recipe → the key each plan item carries.
AXIS_KEYS = {
    "taxonomy_nodes": "taxonomy_node",
    "value_pairs": "value_pair",
    "topic_groups": "topic_group",
    "personas": "persona",
    "languages": "language",
}
_SCAN = 64  # candidates examined per axis and item: bounds the cost on large axes (e.g. value pairs)


def _rng(recipe: Recipe, salt: str) -> random.Random:
    digest = hashlib.sha256(f"{recipe.identity()}:{recipe.seed}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def axis_values(recipe: Recipe, axis: str) -> list[Any]:
    spec = getattr(recipe.strata, axis)
    if not isinstance(spec, FromTaxonomy):
        return [list(v) if isinstance(v, tuple) else v for v in spec]
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    tax = load_taxonomy(spec.from_taxonomy)
    nodes = tax.nodes_at(spec.level)
    if spec.under:
        root = tax.lookup(spec.under).id
        nodes = [n for n in nodes if root in {a.id for a in tax.ancestors(n)}]
    names = [n.name for n in nodes]
    pairs = axis == "value_pairs"
    values: list[Any] = [list(p) for p in itertools.combinations(names, 2)] if pairs else names
    if spec.limit is not None and spec.limit < len(values):
        values = sorted(_rng(recipe, f"limit:{axis}").sample(values, spec.limit), key=canonical_json)
    return values


def plan_axes(recipe: Recipe, extra: dict[str, list[Any]] | None = None) -> dict[str, list[Any]]:
    axes = {AXIS_KEYS[a]: axis_values(recipe, a) for a in recipe.strata.axes()}
    axes.update(extra or {})
    return {k: v for k, v in axes.items() if v}


class _Rounds:
    """Values of one axis used in rounds, each round in the same seeded order."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.order = list(range(n))
        rng.shuffle(self.order)
        self.left: list[int] = []
        self.used: set[int] = set()

    def candidates(self) -> list[int]:
        if not self.left:
            self.left, self.used = list(self.order), set()
        out = []
        for v in self.left:
            if v not in self.used:
                out.append(v)
                if len(out) == _SCAN:
                    break
        return out

    def take(self, v: int) -> None:
        self.used.add(v)
        while self.left and self.left[0] in self.used:  # keep the front clean so candidates() stays cheap
            self.left.pop(0)
        if len(self.used) == len(self.order):
            self.left = []


def assign(axes: dict[str, list[Any]], count: int, rng: random.Random) -> list[tuple[int, ...]]:
    names = list(axes)
    rounds = [_Rounds(len(axes[a]), rng) for a in names]
    joint: Counter[tuple[int, ...]] = Counter()
    out = []
    for _ in range(count):
        chosen: tuple[int, ...] = ()
        for r in rounds:
            cands = r.candidates()
            best = min(cands, key=lambda v, c=chosen: joint[(*c, v)])  # stable: ties keep the seeded order
            r.take(best)
            chosen = (*chosen, best)
            joint[chosen] += 1
        out.append(chosen)
    return out


def make_plan(recipe: Recipe, extra_axes: dict[str, list[Any]] | None = None,
              count: int | None = None) -> list[dict[str, Any]]:
    """The plan items, in order. Each: index, sample_id, seed, stratum, and one key per axis."""
    axes = plan_axes(recipe, extra_axes)
    n = recipe.count if count is None else count
    combos = assign(axes, n, _rng(recipe, "assign")) if axes else [() for _ in range(n)]
    identity = recipe.identity()
    items = []
    for index, combo in enumerate(combos):
        values = {axis: axes[axis][i] for axis, i in zip(axes, combo, strict=True)}
        item_seed = int(hashlib.sha256(f"{identity}:{recipe.seed}:{index}".encode()).hexdigest()[:8], 16)
        stratum = "|".join(f"{axis}={_label(v)}" for axis, v in values.items())
        items.append({
            "index": index,
            "sample_id": stable_id(identity, recipe.seed, index, values),
            "seed": item_seed,
            "stratum": stratum,
            **values,
        })
    return items


# --- seed situations --------------------------------------------------------------------------------------
# A plan item of a chain that draws seeds may draw from several pools (a topic group: the pools of its topics).
# Items take seeds in index order; each takes the next unused seed of its least-used pool, so pools within a
# stratum are used evenly, no seed serves two items, and the first items keep their seeds when the count grows.

def _least_used(keys: list[str], used: Counter[str]) -> str:
    return min(keys, key=lambda k: used[k])  # stable: ties keep the chain's order


def seed_demand(items: list[dict[str, Any]], keys_of: Any) -> Counter[str]:
    """How many distinct seeds each pool must give for every item to have its own."""
    used: Counter[str] = Counter()
    for it in items:
        keys = keys_of(it)
        if keys:
            used[_least_used(keys, used)] += 1
    return used


def attach_seeds(items: list[dict[str, Any]], pools: dict[str, list[dict[str, Any]]], keys_of: Any
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items with a seed of their own under `seed_situation`, items left without one). An item's sample id
    then also hashes its seed: another seed is another sample."""
    used: Counter[str] = Counter()
    taken: Counter[str] = Counter()
    out, short = [], []
    for it in items:
        keys = [k for k in keys_of(it) if taken[k] < len(pools.get(k, []))]
        if not keys:
            if keys_of(it):
                short.append(it)
            else:
                out.append(it)
            continue
        key = _least_used(keys, used)
        seed = pools[key][taken[key]]
        taken[key] += 1
        used[key] += 1
        out.append({**it, "sample_id": stable_id(it["sample_id"], seed["id"]), "seed_situation": seed})
    return out, short


def _label(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or canonical_json(value)[:40])
    if isinstance(value, list):
        return " vs ".join(str(v) for v in value)
    return str(value)


NOT_AXES = {"index", "sample_id", "seed", "stratum", "seed_situation"}  # a plan item's keys that are no stratum


def item_axes(items: list[dict[str, Any]]) -> list[str]:
    """The stratum axes of a plan: every key of its items but their ids, seeds and seed situations."""
    return sorted({k for it in items for k in it} - NOT_AXES)


def coverage(items: list[dict[str, Any]], axes: list[str]) -> dict[str, dict[str, int]]:
    """Items per value of each axis (what `run show` reports as max/min)."""
    return {axis: dict(Counter(_label(it[axis]) for it in items if axis in it)) for axis in axes}


def kept_coverage(plan: list[dict[str, Any]], axes: list[str], records: list[Any],
                  fields: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per axis: items planned per value, and plan items with a kept record per value, read from the records'
    own stratum field where the chain names one (`Chain.stratum_fields`), else from the record's plan item. A
    value no item was planned for shows up as an extra key: the table never hides a record that disagrees."""
    by_sample = {it["sample_id"]: it for it in plan}
    out: dict[str, dict[str, Any]] = {}
    for axis in axes:
        planned = Counter(_label(it[axis]) for it in plan if axis in it)
        kept: dict[str, int] = {v: 0 for v in planned}
        field = fields.get(axis)
        seen: set[tuple[str, str]] = set()
        for rec in records:
            sample = rec.provenance.plan_item or ""
            if field is not None:
                value = getattr(rec, field, None)
            elif axis in by_sample.get(sample, {}):
                value = by_sample[sample][axis]
            else:
                continue
            if value is None:
                continue
            key = (sample, _label(value))
            if key not in seen:  # samples, not records: a perspective sample is eleven records
                seen.add(key)
                kept[key[1]] = kept.get(key[1], 0) + 1
        out[axis] = {"planned": dict(planned), "kept": kept, "kept_from": "records" if field else "plan"}
    return out


PLAN_ROWS_PER_GROUP = 1000


def write_plan(items: list[dict[str, Any]], path: str | Path) -> None:
    """plan.parquet: one row per item; axis values as text columns, the whole item as JSON."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    axes = sorted({k for it in items for k in it} - {"index", "sample_id", "seed", "stratum"})
    cols: dict[str, list[Any]] = {
        "index": [it["index"] for it in items],
        "sample_id": [it["sample_id"] for it in items],
        "seed": [it["seed"] for it in items],
        "stratum": [it["stratum"] for it in items],
    }
    for axis in axes:
        cols[axis] = [_label(it[axis]) if axis in it else None for it in items]
    cols["item"] = [canonical_json(it) for it in items]
    schema = pa.schema([("index", pa.int64()), ("sample_id", pa.string()), ("seed", pa.int64()),
                        ("stratum", pa.string()), *[(a, pa.string()) for a in axes], ("item", pa.string())])
    from valuecorpus.schemas import storage

    # row groups of a fixed size: pipeline workers read the plan one row group at a time
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(cols, schema=schema), sink, row_group_size=PLAN_ROWS_PER_GROUP)
    storage.write_bytes(storage.as_path(path), sink.getvalue().to_pybytes())


def read_plan(path: str | Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [json.loads(s) for s in pq.read_table(str(path), columns=["item"]).column("item").to_pylist()]
