"""Agent-ValueBench, spec only: JSON files are read as data; the paired `.py` environments are never imported.

- `environment/<Env>.json` → `AgentEnvironment` (`initial_parameter_schema` → `state_schema`,
  `tool_state_dependencies` {tool: [state keys]} → a list in file order, `tools` with JSON-Schema parameters).
- `case/case_XXXXX.json` → `AgentCase` (`env_initial_parameters` → `initial_state`,
  `value_a/b_checkpoint_list` → `checkpoints_a/b`, optional `success_condition`).
- `LLMChoice` cases (`choice_mode`, `option_a/b_value`) → `AgentCase` with the forced-choice fields; the JSON
  boolean `choice_mode` is kept as its JSON text ("true"/"false").
- `rubric/case_XXXXX_rubric.json` → `Rubric` (`SCALE` {"0": …} → ScaleLevels, `VALUE_A/B_ITEMS` → items_a/b).
- `value_systems.json` is the source of the `agent_valuebench` taxonomy: skipped in a directory.

Every `value_system` must be a system of the `agent_valuebench` taxonomy and every value item (and
forced-choice option value) one of that system's values. Files are told apart by their keys, not their names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from valuecorpus.schemas.environment_spec import spec_problems, state_json_schema
from valuecorpus.schemas.errors import TaxonomyError
from valuecorpus.schemas.importers.base import (
    ImportContext,
    ImportResult,
    expand,
    expect_list,
    obj_keys,
    read_json,
    taxonomy_check,
)
from valuecorpus.schemas.records import AgentCase, AgentEnvironment, Rubric
from valuecorpus.schemas.records.agents import (
    Checkpoint,
    RubricItem,
    ScaleLevel,
    SpecialState,
    ToolSpec,
    ToolStateDependency,
)
from valuecorpus.schemas.taxonomies.loader import Taxonomy, load_taxonomy, normalise

SOURCE_DATASET = "agent_valuebench"
TAXONOMY = "agent_valuebench"
KEY = "$"  # the source key of a record that is a whole file

ENV_KEYS = ("env_name", "description", "initial_parameter_schema", "tool_state_dependencies", "tools")
CASE_KEYS = (
    "case_name", "environment", "value_system", "value_items", "task_description", "env_initial_parameters",
    "special_state_list", "function_list", "value_a_checkpoint_list", "value_b_checkpoint_list",
)
CHOICE_KEYS = (
    "case_name", "source_case_file", "environment", "value_system", "value_items", "option_a_value",
    "option_b_value", "choice_mode", "task_description",
)
RUBRIC_KEYS = (
    "CASE_NAME", "VALUE_A_NAME", "VALUE_B_NAME", "STATUS", "CASE_CONFLICT", "SCALE", "VALUE_A_ITEMS",
    "VALUE_B_ITEMS", "JUDGE_NOTE",
)
TOOL_KEYS = ("name", "description", "parameters")
TOOL_OPTIONAL = ("effects",)  # our extension: declarative effects make the environment executable
CHECKPOINT_KEYS = (
    "checkpoint_id", "checkpoint_name", "related_functions", "why_it_matters", "expected_actions",
    "expected_signal",
)
ITEM_KEYS = (
    "ITEM_ID", "SOURCE_CHECKPOINT", "WEIGHT", "QUESTION", "SCORE_2", "SCORE_1", "SCORE_0", "LOOK_FOR",
)


def import_path(path: Path) -> ImportResult:
    result = ImportResult(SOURCE_DATASET)
    for file in expand(path, (".json",)):
        data = read_json(file)
        ctx = ImportContext(result, file)
        kind = classify(data)
        if kind == "taxonomy":
            result.skip_taxonomy_source(path, file, TAXONOMY)
            continue
        if kind is None:
            raise ctx.fail(
                None, "not an Agent-ValueBench environment, case or rubric (expected key 'env_name', "
                "'case_name' or 'CASE_NAME' at the top level)",
            )
        reader = {"environment": environment, "case": case, "choice": choice_case, "rubric": rubric}[kind]
        result.add([reader(ctx, data)])
        result.source_files.append(file)
    check_references(result)
    return result


def classify(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if "env_name" in data:
        return "environment"
    if "CASE_NAME" in data:
        return "rubric"
    if "case_name" in data:
        return "choice" if "choice_mode" in data or "option_a_value" in data else "case"
    if data and all(isinstance(v, dict) and "values" in v for v in data.values()):
        return "taxonomy"
    return None


def environment(ctx: ImportContext, data: Any) -> AgentEnvironment:
    obj_keys(ctx, data, "top level", ENV_KEYS)
    deps = data["tool_state_dependencies"]
    if not isinstance(deps, dict):
        found = type(deps).__name__
        raise ctx.fail("key 'tool_state_dependencies'", f"expected an object {{tool: [keys]}}, found {found}")
    tools = []
    for i, tool in enumerate(expect_list(ctx, data["tools"], "key 'tools'")):
        where = f"tools[{i}]"
        obj_keys(ctx, tool, where, TOOL_KEYS, TOOL_OPTIONAL)
        tools.append(ctx.build(ToolSpec, where, **tool))
    env = ctx.build(
        AgentEnvironment, "top level", id=ctx.natural_id("environment", data["env_name"]),
        provenance=ctx.provenance(KEY),
        env_name=data["env_name"], description=data["description"],
        state_schema=data["initial_parameter_schema"],
        tool_state_dependencies=[
            ctx.build(ToolStateDependency, f"tool_state_dependencies.{tool}", tool=tool, state_keys=keys)
            for tool, keys in deps.items()
        ],
        tools=tools,
    )
    return _mark_executable(ctx, env)


def _mark_executable(ctx: ImportContext, env: AgentEnvironment) -> AgentEnvironment:
    """Spec only: without effects an environment is not executable (its Python is never used). Effects that
    are there must pass the spec check; tools still without effects keep the environment non-executable."""
    if not any(t.effects for t in env.tools):
        return env
    problems = spec_problems(env)
    missing = [t.name for t in env.tools if not t.effects]
    real = [p for p in problems if not p.endswith("has no effects")]
    if real:
        raise ctx.fail("key 'tools'", f"effects do not pass the spec check: {real[0]}"
                       + (f" (and {len(real) - 1} more)" if len(real) > 1 else ""))
    if missing:
        ctx.result.warnings.append(
            f"{ctx.path.name}: environment '{env.env_name}' is not executable: {len(missing)} tool(s) without "
            f"effects ({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''})")
        return env
    return env.model_copy(update={"executable": True})


def check_references(result: ImportResult) -> None:
    """Cross-file checks, as warnings (one line each; the import goes on): a case's environment must be in the
    import, its functions among that environment's tools and its initial state valid against its schema; a
    rubric's case must be in the import and each item's SOURCE_CHECKPOINT one of that case's checkpoints."""
    envs = {e.env_name: e for e in result.records.get("agent_environment", []) if isinstance(e, AgentEnvironment)}
    cases = {c.case_name: c for c in result.records.get("agent_case", [])
             if isinstance(c, AgentCase) and c.source_case_file is None}
    w = result.warnings
    for case in result.records.get("agent_case", []):
        assert isinstance(case, AgentCase)
        env = envs.get(case.environment)
        if env is None:
            w.append(f"case '{case.case_name}': environment '{case.environment}' is not in the import")
            continue
        if case.source_case_file is not None:
            continue
        tools = {t.name for t in env.tools}
        unknown = [f for f in case.function_list if f not in tools]
        if unknown:
            w.append(f"case '{case.case_name}': function(s) {', '.join(unknown)} are not tools of environment "
                     f"'{env.env_name}'")
        problem = _state_problem(env, case.initial_state)
        if problem:
            w.append(f"case '{case.case_name}': the initial state does not fit environment '{env.env_name}' "
                     f"{problem}")
    for rub in result.records.get("rubric", []):
        assert isinstance(rub, Rubric)
        case = cases.get(rub.case_name)
        if case is None:
            w.append(f"rubric '{rub.case_name}': its case is not in the import")
            continue
        ids = {cp.checkpoint_id for cp in [*case.checkpoints_a, *case.checkpoints_b]}
        for item in [*rub.items_a, *rub.items_b]:
            if item.source_checkpoint not in ids:
                w.append(f"rubric '{rub.case_name}', item {item.item_id}: SOURCE_CHECKPOINT "
                         f"'{item.source_checkpoint}' is not a checkpoint of the case")


def _state_problem(env: AgentEnvironment, state: Any) -> str | None:
    import jsonschema_rs

    try:
        validator = jsonschema_rs.validator_for(state_json_schema(env))
        error = next(iter(validator.iter_errors(state)), None)
    except ValueError as err:
        return f"(its state schema is not usable: {str(err)[:200]})"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.instance_path) or "(state)"
    return f"at {where}: {error.message[:200]}"


def _checkpoints(ctx: ImportContext, data: dict, key: str) -> list[Checkpoint]:
    out = []
    for i, cp in enumerate(expect_list(ctx, data[key], f"key '{key}'")):
        where = f"{key}[{i}]"
        obj_keys(ctx, cp, where, CHECKPOINT_KEYS)
        out.append(ctx.build(Checkpoint, where, **cp))
    return out


def _check_values(ctx: ImportContext, data: dict, value_keys: tuple[str, ...]) -> Taxonomy:
    """value_system is a system of the taxonomy; each value item / option value is one of its values."""
    taxonomy = taxonomy_check(ctx, "key 'value_system'", lambda: load_taxonomy(TAXONOMY))
    system = data["value_system"]
    if not isinstance(system, str):
        raise ctx.fail("key 'value_system'", f"expected a string, found {type(system).__name__}")
    values = taxonomy_check(ctx, "key 'value_system'", lambda: taxonomy.values_of(system))
    known = {normalise(alias): node.name for node in values for alias in (node.name, *node.synonyms)}
    for key in value_keys:
        items = data[key] if isinstance(data[key], list) else [data[key]]
        for i, item in enumerate(items):
            where = f"{key}[{i}]" if isinstance(data[key], list) else f"key '{key}'"
            if not isinstance(item, str):
                raise ctx.fail(where, f"expected a value name, found {type(item).__name__}")
            if normalise(item) not in known:
                raise TaxonomyError(
                    f"{ctx.path}, {where}: '{item}' is not a value of system '{system}' in taxonomy "
                    f"'{taxonomy.ref}' (its values: {', '.join(sorted(known.values())[:12])}"
                    f"{', …' if len(known) > 12 else ''})"
                )
    return taxonomy


def case(ctx: ImportContext, data: Any) -> AgentCase:
    obj_keys(ctx, data, "top level", CASE_KEYS, optional=("success_condition",))
    taxonomy = _check_values(ctx, data, ("value_items",))
    special = []
    for i, item in enumerate(expect_list(ctx, data["special_state_list"], "key 'special_state_list'")):
        where = f"special_state_list[{i}]"
        obj_keys(ctx, item, where, ("state_key", "why_allowed_empty"))
        special.append(ctx.build(SpecialState, where, **item))
    return ctx.build(
        AgentCase, "top level", id=ctx.natural_id("case", data["case_name"]),
        provenance=ctx.provenance(KEY, [taxonomy]),
        case_name=data["case_name"], environment=data["environment"], value_system=data["value_system"],
        value_items=data["value_items"], task_description=data["task_description"],
        initial_state=data["env_initial_parameters"], special_state_list=special,
        function_list=data["function_list"],
        checkpoints_a=_checkpoints(ctx, data, "value_a_checkpoint_list"),
        checkpoints_b=_checkpoints(ctx, data, "value_b_checkpoint_list"),
        success_condition=data.get("success_condition"),
    )


def choice_case(ctx: ImportContext, data: Any) -> AgentCase:
    obj_keys(ctx, data, "top level", CHOICE_KEYS)
    taxonomy = _check_values(ctx, data, ("value_items", "option_a_value", "option_b_value"))
    mode = data["choice_mode"]
    if not isinstance(mode, bool | str):
        raise ctx.fail("key 'choice_mode'", f"expected a boolean, found {type(mode).__name__}")
    return ctx.build(
        AgentCase, "top level", id=ctx.natural_id("llm_choice", data["case_name"]),
        provenance=ctx.provenance(KEY, [taxonomy]),
        case_name=data["case_name"], environment=data["environment"], value_system=data["value_system"],
        value_items=data["value_items"], task_description=data["task_description"],
        source_case_file=data["source_case_file"], option_a_value=data["option_a_value"],
        option_b_value=data["option_b_value"],
        choice_mode=json.dumps(mode) if isinstance(mode, bool) else mode,
    )


def _items(ctx: ImportContext, data: dict, key: str) -> list[RubricItem]:
    out = []
    for i, item in enumerate(expect_list(ctx, data[key], f"key '{key}'")):
        where = f"{key}[{i}]"
        obj_keys(ctx, item, where, ITEM_KEYS)
        out.append(ctx.build(RubricItem, where, **{k.lower(): v for k, v in item.items()}))
    return out


def rubric(ctx: ImportContext, data: Any) -> Rubric:
    obj_keys(ctx, data, "top level", RUBRIC_KEYS)
    scale = data["SCALE"]
    if not isinstance(scale, dict):
        raise ctx.fail("key 'SCALE'", f"expected an object {{score: meaning}}, found {type(scale).__name__}")
    levels = []
    for score, meaning in scale.items():
        if not score.lstrip("-").isdigit():
            raise ctx.fail(f"SCALE.{score}", "a scale key must be an integer score")
        levels.append(ctx.build(ScaleLevel, f"SCALE.{score}", score=int(score), meaning=meaning))
    return ctx.build(
        Rubric, "top level", id=ctx.natural_id("rubric", data["CASE_NAME"]),
        provenance=ctx.provenance(KEY),
        case_name=data["CASE_NAME"], value_a_name=data["VALUE_A_NAME"], value_b_name=data["VALUE_B_NAME"],
        status=data["STATUS"], case_conflict=data["CASE_CONFLICT"], scale=levels,
        items_a=_items(ctx, data, "VALUE_A_ITEMS"), items_b=_items(ctx, data, "VALUE_B_ITEMS"),
        judge_note=data["JUDGE_NOTE"],
    )


__all__ = ["import_path"]
