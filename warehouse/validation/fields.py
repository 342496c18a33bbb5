"""The leaves of a record model, with what the model says about each: required or nullable, text, a Literal's
values, numeric bounds, JSON. The expectation suites are generated from this walk, never written per kind."""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from valuecorpus.schemas.records import RECORD_TYPES
from valuecorpus.schemas.records.base import JsonBlob

SKIPPED = frozenset({"provenance"})  # filled by the toolkit; its own checks live elsewhere


@dataclass(frozen=True)
class Leaf:
    path: str                      # `actions[].action`, `rule_1.rule_id`, `core_values[]`
    required: bool                 # not null (inside every item of the lists on its path)
    in_list: bool                  # the path steps into at least one list
    text: bool = False
    literal: tuple[Any, ...] = ()
    lower: float | None = None
    upper: float | None = None
    json: bool = False
    optional_text: bool = False    # text whose model default is "" (may be empty)


def _split_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lower = upper = None
    for m in info.metadata:
        if isinstance(m, Ge | Gt):
            lower = float(m.ge if isinstance(m, Ge) else m.gt)
        if isinstance(m, Le | Lt):
            upper = float(m.le if isinstance(m, Le) else m.lt)
    return lower, upper


def _walk(model: type[BaseModel], prefix: str, in_list: bool, out: list[Leaf]) -> None:
    for name, info in model.model_fields.items():
        if not prefix and name in SKIPPED:
            continue
        path = f"{prefix}{name}"
        if any(isinstance(m, JsonBlob) for m in info.metadata):
            out.append(Leaf(path, required=False, in_list=in_list, json=True))
            continue
        tp, nullable = _split_optional(info.annotation)
        required = not nullable
        if get_origin(tp) is list:
            out.append(Leaf(path, required=required, in_list=in_list))  # the list itself
            item, item_nullable = _split_optional(get_args(tp)[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                _walk(item, f"{path}[].", True, out)
            else:
                out.append(_scalar(f"{path}[]", item, not item_nullable, True, None))
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            out.append(Leaf(path, required=required, in_list=in_list))
            _walk(tp, f"{path}.", in_list, out)
            continue
        out.append(_scalar(path, tp, required, in_list, info))


def _scalar(path: str, tp: Any, required: bool, in_list: bool, info: FieldInfo | None) -> Leaf:
    lower, upper = _bounds(info) if info is not None else (None, None)
    if get_origin(tp) is Literal:
        return Leaf(path, required=required, in_list=in_list, literal=get_args(tp))
    if tp is str:
        may_be_empty = info is not None and info.default == ""
        return Leaf(path, required=required, in_list=in_list, text=True, optional_text=may_be_empty)
    return Leaf(path, required=required, in_list=in_list, lower=lower, upper=upper)


@cache
def leaves(kind: str) -> tuple[Leaf, ...]:
    out: list[Leaf] = []
    _walk(RECORD_TYPES[kind], "", False, out)
    return tuple(out)
