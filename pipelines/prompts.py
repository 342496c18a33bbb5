"""Prompt templates: files under `pipelines/prompts/<kind>/<step>.yaml`, versioned by content hash.

A template file is YAML with Jinja2 strings:

    description: what the step asks for (not sent)
    system: |
      You write ...
    user: |
      Seed action: {{ seed_action }}
      Example: {{ example | json }}
    examples:            # optional: worked examples, one shown per request (rotated by the plan item's seed)
      - {"story": "..."}

A template with `examples` shows one of them per request, chosen by the plan item's seed (`Step.request`
passes it as `example`; the `json` filter writes it as JSON), so a small model that copies the example copies
a different one in each sample, and the echo filter (`filters/echo.py`) knows every example and the
template's own wording.

Variables are strict: a variable the caller does not pass is an error naming the template, never an empty
string silently sent to a model. The version is the short sha256 of the file bytes, so editing a prompt
changes the version recorded in each sample's provenance (and the engine's cache key, since the text changes).
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from valuecorpus.pipelines.engine.types import Message
from valuecorpus.schemas.errors import RecipeError

TEMPLATE_SUFFIX = ".yaml"
PARTS = ("system", "user")
_ALLOWED_KEYS = {"description", "examples", *PARTS}
_JINJA_TAG = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)
_QUOTED = re.compile(r'"([^"\n]{3,})"')


def prompts_dir() -> Path:
    return Path(str(resources.files("valuecorpus.pipelines") / "prompts"))


class Template:
    """One prompt template. Picklable (Beam ships it to workers): the Jinja objects are rebuilt lazily."""

    def __init__(self, name: str, source: str, path: str) -> None:
        self.name = name
        self.path = path
        self.source = source
        self.version = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise RecipeError(f"prompt template {path}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(data, dict) or "user" not in data:
            raise RecipeError(f"prompt template {path}: expected a mapping with 'user' (and 'system')")
        unknown = sorted(set(data) - _ALLOWED_KEYS)
        if unknown:
            raise RecipeError(f"prompt template {path}: unknown key '{unknown[0]}' "
                              f"(allowed: {', '.join(sorted(_ALLOWED_KEYS))})")
        self.parts: dict[str, str] = {p: str(data[p]) for p in PARTS if data.get(p)}
        self.description = str(data.get("description") or "")
        examples = data.get("examples") or []
        if not isinstance(examples, list):
            raise RecipeError(f"prompt template {path}: 'examples' must be a list of example answers")
        self.examples: list[Any] = examples
        self._compiled: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        """`name@version`, as recorded in provenance."""
        return f"{self.name}@{self.version}"

    def _jinja(self) -> dict[str, Any]:
        if self._compiled is None:
            import jinja2

            env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                                     autoescape=False)
            # every request shows one of the examples: each example (and each part of one) written once
            written = {id(node): (node, _json(node)) for node in _nodes(self.examples)}

            def as_json(value: Any) -> str:  # tojson escapes ' and <
                hit = written.get(id(value))
                return hit[1] if hit is not None and hit[0] is value else _json(value)

            env.filters["json"] = as_json
            compiled = {}
            for part, text in self.parts.items():
                template = env.from_string(text)
                # a ChainMap over the environment's globals, merged into each render's context twice: merged
                # once here instead (the same names and values; a third of the cost of a render)
                template.globals = dict(template.globals)
                compiled[part] = template
            self._compiled = compiled
        return self._compiled

    def render(self, **variables: Any) -> list[Message]:
        import jinja2

        messages = []
        for part, tmpl in self._jinja().items():
            try:
                text = tmpl.render(**variables).strip()
            except jinja2.UndefinedError as exc:
                raise RecipeError(f"prompt template {self.path} ({part}): {exc.message}") from None
            messages.append(Message(role=part, content=text))
        return messages

    def example(self, n: int) -> Any:
        """The n-th example (cyclically); a template shows it with `{{ example | json }}` (or its fields)."""
        return self.examples[n % len(self.examples)] if self.examples else None

    def literal_texts(self) -> list[str]:
        """The template's own words: the literal runs between its variables and tags, and every string of
        every example. Output that copies them is an echo of the prompt, not new text."""
        out = [seg.strip() for part in self.parts.values() for seg in _JINJA_TAG.split(part) if seg.strip()]
        out += [q for seg in list(out) for q in _QUOTED.findall(seg)]  # an example written inline: its strings

        def strings(value: Any) -> list[str]:
            if isinstance(value, str):
                return [value]
            if isinstance(value, dict):
                return [s for v in value.values() for s in strings(v)]
            if isinstance(value, list):
                return [s for v in value for s in strings(v)]
            return []
        return out + [s for ex in self.examples for s in strings(ex)]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_compiled": None}

    def __repr__(self) -> str:
        return f"Template({self.ref})"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _nodes(value: Any) -> list[Any]:
    """The dicts and lists of a YAML value, outermost first."""
    if isinstance(value, dict):
        return [value, *(n for v in value.values() for n in _nodes(v))]
    if isinstance(value, list):
        return [value, *(n for v in value for n in _nodes(v))]
    return []


def resolve_template_path(name: str, base_dir: Path | None = None) -> Path:
    """A template name (`dilemmas/situation`) under the shipped prompts, or a path to a file (absolute, or
    relative to `base_dir`, e.g. the recipe's folder)."""
    candidate = Path(name)
    if candidate.suffix == TEMPLATE_SUFFIX:
        if not candidate.is_absolute() and base_dir is not None and (base_dir / candidate).is_file():
            return base_dir / candidate
        return candidate
    return prompts_dir() / f"{name}{TEMPLATE_SUFFIX}"


@cache
def _load(path: str, name: str) -> Template:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"prompt template '{name}' not found (looked for {p})")
    return Template(name, p.read_text(encoding="utf-8"), str(p))


@cache  # a chain asks for its step's template once per request: resolve each name once per process
def load_template(name: str, base_dir: Path | None = None) -> Template:
    path = resolve_template_path(name, base_dir)
    tname = name[: -len(TEMPLATE_SUFFIX)] if name.endswith(TEMPLATE_SUFFIX) else name
    return _load(str(path.resolve()), tname)


def shipped_templates() -> list[str]:
    root = prompts_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob(f"*{TEMPLATE_SUFFIX}"))
