"""What the chain's per-request shortcuts must keep: a state's copy is a deep copy, a schema's bound is the one
computed afresh, a template renders the same text as Jinja over its own globals, and a step's requests are
those its chain would build from scratch."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from pydantic import BaseModel

from valuecorpus.pipelines.chains import chain_class
from valuecorpus.pipelines.chains.base import SampleState
from valuecorpus.pipelines.chains.bounds import bound_strings, fixed_tokens
from valuecorpus.pipelines.engine.grammar import worst_case_tokens
from valuecorpus.pipelines.prompts import Template
from valuecorpus.pipelines.recipes import load_recipe


class _Note(BaseModel):
    text: str


def test_a_cloned_state_is_a_deep_copy() -> None:
    shared = {"party": "a neighbour", "values": ["care"]}
    state = SampleState(sample_id="s1", plan_item={"seed": 3, "seed_situation": {"text": "x", "tags": ("t", [1])}},
                        data={"a": shared, "b": shared, "note": _Note(text="n"), "n": 1.5},
                        cache_keys=["k1"], tokens={"prompt": 3}, spend={"s|e|m": {"requests": 1.0}})
    clone = state.clone()
    assert clone == state and clone.model_dump() == state.model_copy(deep=True).model_dump()
    assert clone.model_fields_set == state.model_fields_set
    # nothing mutable is shared with the original, and what the original shared stays shared in the copy
    clone.data["a"]["values"].append("fairness")
    clone.data["note"].text = "changed"
    clone.plan_item["seed_situation"]["tags"][1].append(2)
    clone.cache_keys.append("k2")
    clone.spend["s|e|m"]["requests"] += 1
    assert shared == {"party": "a neighbour", "values": ["care"]} and state.data["note"].text == "n"
    assert state.plan_item["seed_situation"]["tags"] == ("t", [1]) and state.cache_keys == ["k1"]
    assert state.spend == {"s|e|m": {"requests": 1.0}}
    assert clone.data["b"] is clone.data["a"] and clone.data["b"]["values"] == ["care", "fairness"]


def test_a_remembered_bound_is_the_bound_computed_afresh() -> None:
    def schema(max_items: int) -> dict:
        return {"type": "object", "properties": {
            "story": {"type": "string"},
            "items": {"type": "array", "items": {"type": "string"}, "maxItems": max_items},
            "kind": {"enum": ["one", "another"]}}, "required": ["story", "items", "kind"],
            "additionalProperties": False}

    def afresh(s: dict) -> int:  # everything but the free strings' characters, without the remembered answers
        empty = copy.deepcopy(s)
        for node in (empty["properties"]["story"], empty["properties"]["items"]["items"]):
            node.update(maxLength=0, minLength=0)
        return worst_case_tokens(empty) or 0

    for max_items in (2, 5, 2, 9, 5):  # asked again, and after a schema that differs
        s = schema(max_items)
        assert fixed_tokens(s) == afresh(s)
        assert s == schema(max_items)  # the schema itself is not changed by the question
    first, again = bound_strings(schema(3), 300, 120), bound_strings(schema(3), 300, 120)
    assert first == again and first != bound_strings(schema(3), 200, 120)
    assert first["properties"]["story"]["maxLength"] <= 120


def test_a_template_renders_what_jinja_renders() -> None:
    import jinja2

    source = ("system: |\n  Count: {% for i in range(n) %}{{ i }} {% endfor %}{{ dict(a=1) | length }}\n"
              "user: |\n  Example: {{ example | json }} and {{ example.answer | json }}; own: {{ other | json }}\n"
              "  Parties: {{ parties | join(', ') }}\n"
              "examples:\n  - {answer: {story: \"Ein Mädchen\"}, n: 1}\n  - {answer: [1, 2]}\n")
    template = Template("t", source, "t.yaml")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
    for i in range(4):
        example = template.example(i)
        variables = {"n": 3, "example": example, "other": {"x": "ü"}, "parties": ["a", "b"]}
        expected = [{"role": part, "content": env.from_string(text).render(**variables).strip()}
                    for part, text in template.parts.items()]
        assert template.render(**variables) == expected
    # a value equal to an example but not one of the template's own is written afresh
    changed = {"answer": {"story": "Ein Mädchen"}, "n": 1}
    changed["answer"]["story"] = "Ein Junge"
    assert "Ein Junge" in template.render(n=1, example=changed, other=None, parties=[])[1]["content"]


def test_a_steps_requests_are_built_as_from_scratch(tmp_path: Path) -> None:
    """A step remembers its template; its requests (ids, messages, schemas, params) do not depend on what it
    built before."""
    recipe = load_recipe("dilemmas", {"count": 2})
    chain = chain_class(recipe.kind)(recipe)
    seed = {"pool": "family", "text": "Tell a friend a secret", "id": "seed-1"}
    items = [{"sample_id": f"s{i}", "seed": i, "seed_situation": seed, "language": "en"} for i in range(3)]
    step = chain.steps()[0]
    built = [step.requests(SampleState(sample_id=it["sample_id"], plan_item=it)) for it in items]
    again = [chain.steps()[0].requests(SampleState(sample_id=it["sample_id"], plan_item=it)) for it in items]
    assert [r.model_dump() for rs in built for r in rs] == [r.model_dump() for rs in again for r in rs]
    assert built[0][0].messages != built[1][0].messages  # the rotated example differs between samples
