"""Recipes: a YAML file that says what to generate, validated into `Recipe`.

Unknown keys, bad values and taxonomy nodes that do not exist are errors (`RecipeError`) naming the file and
the key path (`strata.taxonomy_nodes[2]`). A recipe never holds an API key: endpoints' secrets come from
settings.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from valuecorpus.schemas.errors import RecipeError, TaxonomyError
from valuecorpus.schemas.records.base import canonical_json

_FROM_RE = re.compile(r"^from taxonomy (?P<taxonomy>[\w.-]+)(?: level (?P<level>[\w.-]+))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FromTaxonomy(_Strict):
    """An axis whose values are a taxonomy's nodes (at one level; optionally under one node)."""

    from_taxonomy: str
    level: str | None = None
    under: str | None = None
    limit: int | None = Field(None, ge=1, description="keep this many (a seeded sample), e.g. of value pairs")


def _axis(value: Any) -> Any:
    """`"from taxonomy X level Y"` is shorthand for `{from_taxonomy: X, level: Y}`."""
    if isinstance(value, str):
        m = _FROM_RE.match(value.strip())
        if not m:
            raise ValueError("expected a list, or 'from taxonomy NAME [level LEVEL]'")
        return {"from_taxonomy": m["taxonomy"], "level": m["level"]}
    return value


class Strata(_Strict):
    """The axes the planner stratifies over; each is a list of values or drawn from a taxonomy. An axis left
    out is not stratified."""

    taxonomy_nodes: list[str] | FromTaxonomy | None = None
    value_pairs: list[tuple[str, str]] | FromTaxonomy | None = None
    topic_groups: list[str] | None = None
    personas: list[str] | None = None
    languages: list[str] | None = None

    _coerce = field_validator("taxonomy_nodes", "value_pairs", mode="before")(classmethod(
        lambda cls, v: _axis(v)))

    def axes(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


class ModelSection(_Strict):
    """Which model writes the samples. Flags and settings override these; no secrets here."""

    backend: Literal["local", "openai"] = "local"
    base_url: str | None = None
    model: str = ""
    dialect: Literal["auto", "openai", "vllm", "llamacpp", "prompt"] = "auto"
    concurrency: int = Field(8, ge=1, description="max requests in flight")
    rpm: float | None = Field(None, gt=0)
    max_cost: float | None = Field(None, ge=0, description="USD cap for the run")
    max_tokens_total: int | None = Field(None, ge=0)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, description="per request, unless set per step")
    step_max_tokens: dict[str, int] = Field(default_factory=dict, description="step name -> max_tokens")
    repeat_penalty: float | None = Field(None, gt=0, le=2, description="discourages repetition (local model, "
                                         "llama.cpp, vLLM); None: 1.1 on the embedded model, else the server's")
    step_models: dict[str, str] = Field(
        default_factory=dict, description="step name -> another model at the same endpoint (e.g. interviewer "
        "and participant); the embedded local backend has one model and answers every step with it")
    timeout_s: float = Field(120.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    batch: bool = Field(False, description="send each step's requests as Batch API jobs (cheaper, slower); "
                        "`valuecorpus run resume RUN` collects them and continues the chain")

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, v: str | None) -> str | None:
        if v and re.search(r"//[^/@]+:[^/@]+@", v):
            raise ValueError("credentials in the URL are not allowed; set openai_api_key in settings")
        return v


class NearDuplicateFilter(_Strict):
    enabled: bool = True
    threshold: float = Field(0.8, gt=0, le=1, description="estimated Jaccard similarity of word 3-shingles")
    num_perm: int = Field(128, ge=16, le=1024)
    against_published: bool = Field(True, description="also against the latest published version's texts")


class LengthFilter(_Strict):
    min_chars: int = Field(20, ge=0)
    max_chars: int = Field(4000, ge=1)


class LanguageFilter(_Strict):
    enabled: bool = True
    min_confidence: float = Field(0.5, ge=0, le=1)


class EchoFilter(_Strict):
    """Output that copies the prompt's examples or wording, or repeats a field across samples (filters/echo.py)."""

    enabled: bool = True
    prompt_share: float = Field(0.5, gt=0, le=1, description="share of a field's 4-grams found in the prompt")
    min_words: int = Field(6, ge=1, description="shortest field text checked for repeats across samples")


class JudgeFilter(_Strict):
    template: str = Field(description="prompt template of the judge step, e.g. 'dilemmas/judge'")
    min_score: float = Field(ge=0, le=10)


class Filters(_Strict):
    schema_validity: bool = True
    exact_duplicate: bool = True
    near_duplicate: NearDuplicateFilter = Field(default_factory=NearDuplicateFilter)
    length: LengthFilter = Field(default_factory=LengthFilter)
    language: LanguageFilter = Field(default_factory=LanguageFilter)
    leakage: bool = True
    demographics: bool = Field(True, description="drop descriptions that name demographic attributes")
    echo: EchoFilter = Field(default_factory=EchoFilter)
    judge: JudgeFilter | None = None


class SeedsSection(_Strict):
    """Where a chain's seed situations come from, and what happens when they cannot give every plan item its
    own (see docs/pipelines.md, "Seed pools"). A repeated seed at a fixed prompt is a repeated request: the
    same answer, a duplicate sample, money spent for nothing."""

    shipped: bool = Field(True, description="use the seeds shipped with the chain")
    propose: bool = Field(True, description="when the pool is short, ask the model for more (the seed stage)")
    per_request: int = Field(10, ge=1, le=100, description="seeds asked of the model per proposal request")
    max_rounds: int = Field(3, ge=1, le=20, description="proposal rounds before the pool counts as exhausted")
    when_short: Literal["refuse", "cap"] | None = Field(
        None, description="more plan items than distinct seeds: refuse (one error line with the number the "
                          "seeds reach) or cap (plan that many, and say so); default: the chain's")


class QualityThresholds(_Strict):
    """What a run must reach to go on to curation (`valuecorpus run check`, the generation DAG's quality task).
    Rates are over the run's engine requests, as in the quality summary."""

    min_schema_valid_rate: float = Field(0.9, ge=0, le=1, description="structured outputs that parsed")
    max_dead_letter_rate: float = Field(0.1, ge=0, le=1, description="requests that ended as dead letters")


class Output(_Strict):
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")


class Recipe(_Strict):
    name: str = Field("", description="defaults to the file's stem")
    kind: str = Field(description="chain kind, e.g. dilemmas, perspectives")
    description: str = ""
    count: int = Field(ge=1, le=10_000_000)
    seed: int = 0
    taxonomy: str | None = Field(None, description="the taxonomy values are constrained to")
    strata: Strata = Field(default_factory=Strata)
    model: ModelSection = Field(default_factory=ModelSection)
    prompts: dict[str, str] = Field(default_factory=dict, description="step name -> template name or file")
    filters: Filters = Field(default_factory=Filters)
    seeds: SeedsSection = Field(default_factory=SeedsSection)
    quality: QualityThresholds = Field(default_factory=QualityThresholds)
    output: Output
    params: dict[str, Any] = Field(default_factory=dict, description="chain-specific; validated by the chain")
    source_path: str | None = Field(None, exclude=True, description="where it was loaded from")

    def identity(self) -> str:
        """Hash of what decides the samples (not count: growing a run keeps the first items' ids)."""
        content = self.model_dump(mode="json", exclude={"count", "source_path", "description", "model", "quality"})
        return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()[:16]

    @property
    def base_dir(self) -> Path | None:
        return Path(self.source_path).parent if self.source_path else None


def recipes_dir() -> Path:
    return Path(str(resources.files("valuecorpus.pipelines") / "recipes"))


def shipped_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def resolve_recipe(ref: str) -> Path:
    """A path to a YAML file, or the name of a shipped recipe."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError(f"recipe file {path} not found")
        return path
    shipped = recipes_dir() / f"{ref}.yaml"
    if shipped.is_file():
        return shipped
    raise RecipeError(f"recipe '{ref}' not found: not a file, nor a shipped recipe "
                      f"({', '.join(shipped_recipes())})")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and (part in ("FromTaxonomy",) or part.startswith(("list[", "function-"))):
            continue  # pydantic's union-branch labels: not keys the user wrote
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _validation_message(path: Path | str, err: ValidationError, prefix: str = "") -> str:
    first = err.errors()[0]
    key = prefix + _loc(first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'"
    if first["type"] == "missing":
        return f"{path}: missing key '{key}'"
    return f"{path}: key '{key}': {first['msg']}"


def parse_recipe(data: Any, path: Path | str = "<recipe>", overrides: dict[str, Any] | None = None) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a mapping of recipe keys")
    data = {**data, **(overrides or {})}
    try:
        recipe = Recipe.model_validate({**data, "source_path": str(path)})
    except ValidationError as err:
        raise RecipeError(_validation_message(path, err)) from None
    if not recipe.name:
        recipe.name = Path(str(path)).stem
    _check_taxonomy_nodes(recipe, path)
    _check_chain(recipe, path)
    return recipe


def load_recipe(ref: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe (a path or a shipped recipe's name); `overrides` replace top-level keys."""
    path = resolve_recipe(str(ref))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}") from None
    return parse_recipe(data, path, overrides)


def _taxonomy(name: str, path: Path | str, key: str) -> Any:
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    try:
        return load_taxonomy(name)
    except TaxonomyError as exc:
        raise RecipeError(f"{path}: key '{key}': {exc}") from None


def _check_taxonomy_nodes(recipe: Recipe, path: Path | str) -> None:
    """Every node a recipe names must exist: a typo is an error now, not a silent empty stratum later."""
    if recipe.taxonomy:
        _taxonomy(recipe.taxonomy, path, "taxonomy")
    strata = recipe.strata
    for axis in ("taxonomy_nodes", "value_pairs"):
        spec = getattr(strata, axis)
        if isinstance(spec, FromTaxonomy):
            tax = _taxonomy(spec.from_taxonomy, path, f"strata.{axis}.from_taxonomy")
            try:
                if spec.level:
                    tax.nodes_at(spec.level)
                if spec.under:
                    tax.lookup(spec.under)
            except TaxonomyError as exc:
                raise RecipeError(f"{path}: key 'strata.{axis}': {exc}") from None
        elif spec is not None:
            if not recipe.taxonomy:
                raise RecipeError(f"{path}: key 'strata.{axis}': listing nodes needs the key 'taxonomy'")
            tax = _taxonomy(recipe.taxonomy, path, "taxonomy")
            for i, item in enumerate(spec):
                names = [item] if isinstance(item, str) else list(item)
                for j, name in enumerate(names):
                    if tax.get(name) is None:
                        where = f"strata.{axis}[{i}]" + ("" if isinstance(item, str) else f"[{j}]")
                        hint = tax.suggest(name)
                        closest = f"; closest: {', '.join(repr(h) for h in hint)}" if hint else ""
                        raise RecipeError(
                            f"{path}: key '{where}': '{name}' is not in taxonomy '{tax.ref}'{closest}")


def _check_chain(recipe: Recipe, path: Path | str) -> None:
    """The kind must be a registered chain; its params, prompt overrides and step names must fit it."""
    from valuecorpus.pipelines.chains import CHAINS, chain_class

    try:
        cls = chain_class(recipe.kind)
    except RecipeError:
        raise RecipeError(
            f"{path}: key 'kind': unknown kind '{recipe.kind}' (known: {', '.join(CHAINS)})") from None
    try:
        cls.Params.model_validate(recipe.params)
    except ValidationError as err:
        raise RecipeError(_validation_message(path, err, prefix="params.")) from None
    for key, message in cls.validate_recipe(recipe):
        raise RecipeError(f"{path}: key '{key}': {message}")
    steps = cls.step_names()
    extra_steps = {"judge", *(["seeds"] if cls.seed_template else [])}
    for step, template in recipe.prompts.items():
        if step not in steps and step not in extra_steps:
            raise RecipeError(f"{path}: key 'prompts.{step}': no such step in '{recipe.kind}' "
                              f"(steps: {', '.join(steps)})")
        from valuecorpus.pipelines.prompts import load_template

        try:
            load_template(template, recipe.base_dir)
        except RecipeError as exc:
            raise RecipeError(f"{path}: key 'prompts.{step}': {exc}") from None
    for step in recipe.model.step_max_tokens:
        if step not in steps and step not in extra_steps:
            raise RecipeError(f"{path}: key 'model.step_max_tokens.{step}': no such step in '{recipe.kind}'")
    for step in recipe.model.step_models:
        if step not in steps and step not in extra_steps:
            raise RecipeError(f"{path}: key 'model.step_models.{step}': no such step in '{recipe.kind}'")
