"""Records ↔ Label Studio task data: which fields a curator sees, which they may edit, where edits go back.

Every displayed value is plain text (the configs show it with `<Text>`, never as HTML). A field path such as
`actions[action_type=to_do].negative_consequence` names where a value lives in the record, so an edit made in
Label Studio is written back to exactly that place; list fields (e.g. a card's policies) are edited one item
per line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from valuecorpus.schemas.errors import ValueCorpusError

META_KEYS = ("sample_id", "kind", "run_id", "batch", "required_annotations")


@dataclass(frozen=True)
class FieldSpec:
    key: str  # task data key and Text tag name; the edit box is `edit_<key>`
    path: str = ""  # where it lives in the record; empty for display-only renderings
    editable: bool = False
    render: Callable[[dict[str, Any]], str] | None = None  # display-only fields computed from the record


@dataclass(frozen=True)
class KindSpec:
    kind: str
    fields: tuple[FieldSpec, ...]
    taxonomy: str | None = None  # value labels are chosen from this taxonomy
    labels: Callable[[dict[str, Any]], list[str]] | None = None  # the record's own labels, sent as predictions
    # kind-specific Choices whose prediction comes from the record (e.g. a vote's relationship)
    choices: dict[str, Callable[[dict[str, Any]], str | None]] = field(default_factory=dict)
    # values that belong to a part of the record are picked per part: (key, shown) groups; a label is "key/name"
    label_groups: tuple[tuple[str, str], ...] = ()
    # the taxonomy parent a record's labels sit under when a name occurs in several (an agent case's system)
    label_parent: Callable[[dict[str, Any]], str | None] | None = None
    # writes curated labels back into the record (in place); None: the labels stay in provenance only
    write_labels: Callable[[dict[str, Any], list[str]], None] | None = None

    @property
    def editable(self) -> list[FieldSpec]:
        return [f for f in self.fields if f.editable]


_STEP = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<sel>[^\]]+)\])?$")


def _steps(path: str) -> list[tuple[str, str | None]]:
    out = []
    for part in path.split("."):
        m = _STEP.match(part)
        if not m:
            raise ValueError(f"bad field path {path!r}")
        out.append((m["key"], m["sel"]))
    return out


def _select(items: list[Any], sel: str) -> Any:
    if sel.isdigit():
        return items[int(sel)] if int(sel) < len(items) else None
    key, _, value = sel.partition("=")
    return next((i for i in items if isinstance(i, dict) and str(i.get(key)) == value), None)


def get_path(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key, sel in _steps(path):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
        if sel is not None:
            node = _select(node or [], sel)
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> bool:
    """Set a value in place; False when the path does not exist in this record (nothing changed)."""
    steps = _steps(path)
    node: Any = data
    for i, (key, sel) in enumerate(steps):
        last = i == len(steps) - 1
        if not isinstance(node, dict) or key not in node:
            return False
        if sel is None:
            if last:
                node[key] = value
                return True
            node = node[key]
            continue
        items = node[key] or []
        target = _select(items, sel)
        if target is None:
            return False
        if last:
            items[items.index(target)] = value
            return True
        node = target
    return False


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value if v is not None)
    return str(value)


def from_text(original: Any, text: str) -> Any:
    """An edit box's text as the original field's type (lists: one item per line)."""
    if isinstance(original, list):
        return [line.strip() for line in text.splitlines() if line.strip()]
    return text.strip()


def _checkpoints(key: str) -> Callable[[dict[str, Any]], str]:
    def render(rec: dict[str, Any]) -> str:
        lines = []
        for i, cp in enumerate(rec.get(key) or [], 1):
            lines.append(f"{i}. {cp.get('checkpoint_name', '')}: {cp.get('why_it_matters', '')}")
            lines.extend(f"   - {a}" for a in cp.get("expected_actions") or [])
            if cp.get("expected_signal"):
                lines.append(f"   signal: {cp['expected_signal']}")
        return "\n".join(lines)
    return render


def _rubric_items(key: str) -> Callable[[dict[str, Any]], str]:
    def render(rec: dict[str, Any]) -> str:
        return "\n".join(
            f"{it['item_id']} (weight {it['weight']}): {it['question']}\n  2: {it['score_2']}\n  1: {it['score_1']}"
            f"\n  0: {it['score_0']}" for it in rec.get(key) or []
        )
    return render


def _dilemma_values(rec: dict[str, Any]) -> list[str]:
    """Each action's values as `<action_type>/<value>` (the picker is grouped by action)."""
    out: list[str] = []
    for action in rec.get("actions") or []:
        names = [v["name"] for v in action.get("values") or []]
        names += [v for v in (action.get("values_direct") or []) + (action.get("values_indirect") or []) if v]
        out.extend(f"{action.get('action_type')}/{n}" for n in names if f"{action.get('action_type')}/{n}" not in out)
    return out


def _theory_labels(taxonomy: str, name: str) -> dict[str, Any]:
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    node = next((n for n in load_taxonomy(taxonomy).nodes_at() if n.name == name), None)
    keys = ("wvs", "mft", "virtue", "emotion", "maslow")  # ValueAnnotation's theory fields
    return {k: (node.labels.get(k) if node else None) for k in keys}


def _write_dilemma_values(rec: dict[str, Any], labels: list[str]) -> None:
    """Each action's `values` become the curated ones: a value it had keeps its entry (type, theory labels), a
    new one gets its theory labels looked up in the taxonomy. The aligned party/reason lists are left as they
    are (they describe the generated text, which curators edit separately)."""
    for action in rec.get("actions") or []:
        group = f"{action.get('action_type')}/"
        names = [label[len(group):] for label in labels if label.startswith(group)]
        old = {v["name"]: v for v in action.get("values") or []}
        action["values"] = [old.get(n) or {"name": n, "type": None, **_theory_labels("dailydilemmas_values", n)}
                            for n in names]


def _write_cvc_values(rec: dict[str, Any], labels: list[str]) -> None:
    """levels / core_values / derived_values become the curated labels, each by its taxonomy level."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    level_of = {n.name: n.level for n in load_taxonomy("cvc").nodes_at()}
    for key, level in (("levels", "level"), ("core_values", "core"), ("derived_values", "derived")):
        rec[key] = [label for label in labels if level_of.get(label) == level]


def _dilemma_values_text(rec: dict[str, Any]) -> str:
    return "\n".join(
        f"{a.get('action_type')}: {', '.join(v['name'] for v in a.get('values') or [])}"
        for a in rec.get("actions") or []
    )


def _rule_pair_options(rec: dict[str, Any]) -> str:
    return "\n".join(f"{o['letter']}: {o['text']}  [follows {o['follows']}]" for o in rec.get("options") or [])


def _cvc_labels(*prefixes: str) -> Callable[[dict[str, Any]], list[str]]:
    def labels(rec: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for prefix in prefixes:
            src = rec.get(prefix) if prefix else rec
            for key in ("levels", "core_values", "derived_values"):
                out.extend(v for v in (src or {}).get(key) or [] if v not in out)
        return out
    return labels


def _value_items(rec: dict[str, Any]) -> str:
    return f"{rec.get('value_system')}: " + " vs ".join(rec.get("value_items") or [])


def _join(*keys: str) -> Callable[[dict[str, Any]], str]:
    return lambda rec: "\n".join(f"{k}: {as_text(get_path(rec, k))}" for k in keys if get_path(rec, k) is not None)


_TODO, _NOT = "actions[action_type=to_do]", "actions[action_type=not_to_do]"

SPECS: dict[str, KindSpec] = {s.kind: s for s in (
    KindSpec("dilemma", (
        FieldSpec("basic_situation", "basic_situation", True),
        FieldSpec("dilemma_situation", "dilemma_situation", True),
        FieldSpec("to_do_action", f"{_TODO}.action", True),
        FieldSpec("to_do_consequence", f"{_TODO}.negative_consequence", True),
        FieldSpec("not_to_do_action", f"{_NOT}.action", True),
        FieldSpec("not_to_do_consequence", f"{_NOT}.negative_consequence", True),
        FieldSpec("values", render=_dilemma_values_text),
    ), taxonomy="dailydilemmas_values", labels=_dilemma_values,
        label_groups=(("to_do", "Doing it"), ("not_to_do", "Not doing it")), write_labels=_write_dilemma_values),
    KindSpec("perspective", (
        FieldSpec("action", "action", True),
        FieldSpec("acceptable", "acceptable", True),
        FieldSpec("unacceptable", "unacceptable", True),
        FieldSpec("description", "description", True),
        FieldSpec("category", render=_join("category", "variant", "gold.general", "gold.current")),
    ), choices={"relabel_category": lambda r: r.get("category")}),
    KindSpec("value_rule", (
        FieldSpec("rule", "rule", True),
        FieldSpec("translation", "translation", True),
        FieldSpec("scene", render=lambda r: as_text(r.get("scene"))),
        FieldSpec("classification", render=_join("levels", "core_values", "derived_values", "label")),
    ), taxonomy="cvc", labels=_cvc_labels(""), write_labels=_write_cvc_values),
    KindSpec("rule_pair_dilemma", (
        FieldSpec("scene", "scene", True),
        FieldSpec("rule_1", render=lambda r: as_text(get_path(r, "rule_1.rule"))),
        FieldSpec("rule_2", render=lambda r: as_text(get_path(r, "rule_2.rule"))),
        FieldSpec("options", render=_rule_pair_options),
    ), taxonomy="cvc", labels=_cvc_labels("rule_1", "rule_2")),
    KindSpec("values_card", (
        FieldSpec("title", "title", True),
        FieldSpec("description", "description", True),
        FieldSpec("policies", "policies", True),
        FieldSpec("contexts", render=lambda r: as_text(r.get("contexts"))),
    )),
    KindSpec("moral_graph_vote", (
        FieldSpec("cards", render=_join("from_card", "from_title", "to_card", "to_title", "context")),
        FieldSpec("story", "story", True),
    ), choices={"relationship": lambda r: r.get("relationship")}),
    KindSpec("agent_case", (
        FieldSpec("task_description", "task_description", True),
        FieldSpec("value_items", render=_value_items),
        FieldSpec("checkpoints_a", render=_checkpoints("checkpoints_a")),
        FieldSpec("checkpoints_b", render=_checkpoints("checkpoints_b")),
    ), taxonomy="agent_valuebench", labels=lambda r: [v for v in r.get("value_items") or [] if v],
        label_parent=lambda r: r.get("value_system")),
    KindSpec("rubric", (
        FieldSpec("case_conflict", "case_conflict", True),
        FieldSpec("values", render=_join("value_a_name", "value_b_name")),
        FieldSpec("items_a", render=_rubric_items("items_a")),
        FieldSpec("items_b", render=_rubric_items("items_b")),
    )),
    KindSpec("preference_pair", (
        FieldSpec("prompt", "prompt", True),
        FieldSpec("chosen", "chosen", True),
        FieldSpec("rejected", "rejected", True),
        FieldSpec("stances", render=_join("chosen_value", "rejected_value", "taxonomy")),
    ), taxonomy="dailydilemmas_values",
        labels=lambda r: [v for v in (r.get("chosen_value"), r.get("rejected_value")) if v]),
    KindSpec("outcome_comparison", (
        FieldSpec("option_a", render=lambda r: as_text(get_path(r, "option_a.description"))),
        FieldSpec("option_b", render=lambda r: as_text(get_path(r, "option_b.description"))),
        FieldSpec("model_estimate", render=_join("probability_a", "model", "order")),
    )),
)}

CURATABLE = tuple(SPECS)


def spec(kind: str) -> KindSpec:
    try:
        return SPECS[kind]
    except KeyError:
        raise ValueCorpusError(
            f"record kind '{kind}' is not curated in Label Studio (curated kinds: {', '.join(CURATABLE)})"
        ) from None


def task_data(record: BaseModel, kind: str, run_id: str, batch: str, required: int) -> dict[str, Any]:
    """The task's `data`: every shown field as plain text, plus the sample id and the overlap asked for."""
    rec = record.model_dump(mode="json")
    data: dict[str, Any] = {"sample_id": rec["id"], "kind": kind, "run_id": run_id, "batch": batch,
                            "required_annotations": required}
    for f in spec(kind).fields:
        data[f.key] = f.render(rec) if f.render else as_text(get_path(rec, f.path))
    return data
