"""What the record model says about records beyond their shape: which fields refer to other records, and which
fields hold value labels of a taxonomy. The one declarative place for both; the validation suites
(`warehouse/validation/`) are generated from it and from the models.

Paths name fields through nesting: `from_card`, `rule_1.rule_id`, `items_a[].source_checkpoint` (`[]` steps into
a list), `actions[].values[].name`, `core_values[]` (the items of a list of strings). `resolve_path` checks a path
against the model, so a renamed or removed field breaks loudly (tests/schemas/test_constraints.py) and only this
file changes when the moral-graph or agent models change.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.records import RECORD_TYPES


@dataclass(frozen=True)
class Reference:
    """`kind.path` holds a value of one of `targets` (`(target_kind, target_path)`; any one matching will do).

    `scope`: (path in kind, path in target) that must match as well (a rubric item's checkpoint must be a
    checkpoint *of the same case*). `required`: a target kind must be in the same run or version; otherwise the
    reference is checked only when one is there (a set of comparisons published without its outcomes)."""

    kind: str
    path: str
    targets: tuple[tuple[str, str], ...]
    required: bool = False
    scope: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.path} -> " + " | ".join(f"{k}.{p}" for k, p in self.targets)


@dataclass(frozen=True)
class ValueLabel:
    """Every value at `kind.path` names a node of a taxonomy: the fixed `taxonomy`, or the one named by the
    record's `taxonomy_path` field (no check when that field is null: e.g. stance labels). `level`: the node's
    level. `system_path`: a field naming the value system the value belongs to (Agent-ValueBench)."""

    kind: str
    path: str
    taxonomy: str | None = None
    taxonomy_path: str | None = None
    level: str | None = None
    system_path: str | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.path}"


# References of the kinds whose models do not declare `references` yet. A model's own `Record.references`
# (field -> "kind.field" targets) is the place for them: `REFERENCES` below takes those, and an entry here only
# counts for a kind whose model declares none, so each reference is declared once.
_UNDECLARED: tuple[Reference, ...] = (
    Reference("agent_case", "environment", (("agent_environment", "env_name"),), required=True),
    Reference("rubric", "case_name", (("agent_case", "case_name"),)),
    Reference("rubric", "items_a[].source_checkpoint", (("agent_case", "checkpoints_a[].checkpoint_id"),),
              scope=("case_name", "case_name")),
    Reference("rubric", "items_b[].source_checkpoint", (("agent_case", "checkpoints_b[].checkpoint_id"),),
              scope=("case_name", "case_name")),
    Reference("perspective", "dilemma_id", (("dilemma", "id"),)),
    Reference("rule_pair_dilemma", "rule_1.rule_id", (("value_rule", "id"),)),
    Reference("rule_pair_dilemma", "rule_2.rule_id", (("value_rule", "id"),)),
    Reference("outcome_comparison", "option_a.outcome_id", (("outcome", "id"),)),
    Reference("outcome_comparison", "option_b.outcome_id", (("outcome", "id"),)),
    # preference_pair: the model names no source record yet; its reference goes on the model when it does.
)


def list_path(kind: str, dotted: str) -> str:
    """A model declaration's dotted path (`lottery.outcome_id`) in this module's notation (`lottery[].outcome_id`)."""
    current: Any = RECORD_TYPES[kind]
    out = []
    for name in dotted.split("."):
        model = _strip_optional(current)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or name not in model.model_fields:
            raise ValueCorpusError(f"'{kind}' has no field '{dotted}' (at '{name}')")
        current = _strip_optional(model.model_fields[name].annotation)
        if get_origin(current) is list:
            (current,) = get_args(current)
            out.append(f"{name}[]")
        else:
            out.append(name)
    return ".".join(out)


def _declared() -> tuple[Reference, ...]:
    refs = []
    for kind, cls in sorted(RECORD_TYPES.items()):
        for name, targets in sorted(getattr(cls, "references", {}).items()):
            parsed = []
            for target in targets:
                tkind, _, tpath = target.partition(".")
                parsed.append((tkind, list_path(tkind, tpath) if tkind in RECORD_TYPES else tpath))
            refs.append(Reference(kind, list_path(kind, name), tuple(parsed)))
    declared_kinds = {r.kind for r in refs}
    return (*refs, *(r for r in _UNDECLARED if r.kind not in declared_kinds))


# The field a person knows a record by (named beside its id in a refused reference).
DISPLAY_FIELDS: dict[str, str] = {"agent_case": "case_name", "rubric": "case_name", "values_card": "card_key",
                                  "agent_environment": "env_name"}

# DailyDilemmas `values_direct` / `values_indirect` are free text per party; `values[].name` is the mapped value.
_DD = "dailydilemmas_values"
VALUE_LABELS: tuple[ValueLabel, ...] = (
    ValueLabel("dilemma", "actions[].values[].name", _DD),
    ValueLabel("dilemma", "actions[].values[].wvs", "wvs"),
    ValueLabel("dilemma", "actions[].values[].mft", "mft2008"),
    ValueLabel("dilemma", "actions[].values[].virtue", "aristotle"),
    ValueLabel("dilemma", "actions[].values[].emotion", "plutchik"),
    ValueLabel("dilemma", "actions[].values[].maslow", "maslow"),
    ValueLabel("value_rule", "levels[]", "cvc", level="level"),
    ValueLabel("value_rule", "core_values[]", "cvc", level="core"),
    ValueLabel("value_rule", "derived_values[]", "cvc", level="derived"),
    *(ValueLabel("rule_pair_dilemma", f"{side}.{field}[]", "cvc", level=level)
      for side in ("rule_1", "rule_2")
      for field, level in (("levels", "level"), ("core_values", "core"), ("derived_values", "derived"))),
    ValueLabel("agent_case", "value_system", "agent_valuebench", level="system"),
    ValueLabel("agent_case", "value_items[]", "agent_valuebench", level="value", system_path="value_system"),
    ValueLabel("agent_case", "option_a_value", "agent_valuebench", level="value", system_path="value_system"),
    ValueLabel("agent_case", "option_b_value", "agent_valuebench", level="value", system_path="value_system"),
    ValueLabel("preference_pair", "chosen_value", taxonomy_path="taxonomy"),
    ValueLabel("preference_pair", "rejected_value", taxonomy_path="taxonomy"),
)


@dataclass(frozen=True)
class Step:
    name: str
    into_list: bool  # `name[]`: the field is a list whose items the rest of the path reads


def parse_path(path: str) -> list[Step]:
    steps = []
    for part in path.split("."):
        into = part.endswith("[]")
        name = part[:-2] if into else part
        if not name.isidentifier():
            raise ValueCorpusError(f"bad field path '{path}'")
        steps.append(Step(name, into))
    return steps


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def resolve_path(kind: str, path: str) -> Any:
    """The annotation of the leaf a path names in a kind's model; raises when the path does not exist."""
    current: Any = RECORD_TYPES[kind]
    for step in parse_path(path):
        model = _strip_optional(current)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or step.name not in model.model_fields:
            raise ValueCorpusError(f"'{kind}' has no field '{path}' (at '{step.name}')")
        current = _strip_optional(model.model_fields[step.name].annotation)
        if step.into_list:
            if get_origin(current) is not list:
                raise ValueCorpusError(f"'{kind}.{path}': '{step.name}' is not a list")
            (current,) = get_args(current)
    return current


def check_declarations() -> list[str]:
    """Problems with the declarations above (empty when every path and kind exists)."""
    problems = []
    for ref in REFERENCES:
        paths = [(ref.kind, ref.path), *ref.targets]
        if ref.scope:
            paths += [(ref.kind, ref.scope[0]), *((k, ref.scope[1]) for k, _ in ref.targets)]
        for kind, path in paths:
            try:
                if kind not in RECORD_TYPES:
                    raise ValueCorpusError(f"unknown kind '{kind}'")
                resolve_path(kind, path)
            except ValueCorpusError as err:
                problems.append(f"{ref.name}: {err}")
    for kind, path in DISPLAY_FIELDS.items():
        try:
            resolve_path(kind, path)
        except ValueCorpusError as err:
            problems.append(f"display field: {err}")
    for label in VALUE_LABELS:
        for path in (label.path, label.taxonomy_path, label.system_path):
            if path is None:
                continue
            try:
                resolve_path(label.kind, path)
            except ValueCorpusError as err:
                problems.append(f"{label.name}: {err}")
    return problems


REFERENCES: tuple[Reference, ...] = _declared()


def references_of(kind: str) -> list[Reference]:
    return [r for r in REFERENCES if r.kind == kind]


def labels_of(kind: str) -> list[ValueLabel]:
    return [v for v in VALUE_LABELS if v.kind == kind]


def is_literal(tp: Any) -> bool:
    return get_origin(_strip_optional(tp)) is Literal
