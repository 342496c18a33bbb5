"""`valuecorpus env check FILE` and `valuecorpus env run [CASE]`: executable agent environments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from valuecorpus.cli.common import settings

env_app = typer.Typer(help="Executable agent environments: check a spec, run episodes.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")


def _records(home: Any, kind: str, run: str | None, dataset: str | None, version: str | None) -> list[Any]:
    if run:
        layout = home.resolve_run(run)  # a kind's records: one file, or a pipeline's shards
        return layout.read_records(f"records/{kind}") if layout.has_table(f"records/{kind}") else []
    from valuecorpus.warehouse import load_records, version_info

    info = version_info(home, dataset, version)
    if kind not in info.manifest.kinds:
        return []
    return load_records(home, dataset, version, kind)


@env_app.command("check")
def check_cmd(
    path: Path = typer.Argument(..., help="An environment spec (Agent-ValueBench JSON with effects)."),
) -> None:
    """Check an environment spec: executable (every tool has effects that pass the spec check) or why not."""
    from valuecorpus.pipelines.environments import load_environment, read_spec

    env = load_environment(read_spec(path))
    print(f"{path}: environment '{env.env_name}' is executable ({len(env.tools)} tools, "
          f"{sum(len(t.effects) for t in env.tools)} effects)")


@env_app.command("run")
def run_cmd(
    case: str | None = typer.Argument(None, metavar="[CASE]", help="Case name or id (default: every case)."),
    run: str | None = typer.Option(None, "--run", help="A run holding the cases (and their environments)."),
    dataset: str | None = typer.Option(None, "--dataset", help="A published dataset holding the cases."),
    version: str | None = typer.Option(None, "--version", help="The dataset's version (default: the latest)."),
    model: str | None = typer.Option(None, "--model", help="Model name at the endpoint."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (tool calls)."),
    max_steps: int = typer.Option(20, "--max-steps", min=1, max=200, help="Model turns per episode."),
    max_tokens: int = typer.Option(400, "--max-tokens", min=16, help="Tokens per model turn."),
    out: Path | None = typer.Option(None, "--out", help="Write each episode (trajectory, scores) as JSON lines."),
) -> None:
    """Run a tool-calling model through the interpreter on one case or all, score each trajectory against both
    poles' checkpoints, and print a results table per value system."""
    from rich.console import Console
    from rich.table import Table

    from valuecorpus.cli.engine import engine_config
    from valuecorpus.pipelines.chains.agent_cases import shipped_environments
    from valuecorpus.pipelines.engine import Engine
    from valuecorpus.pipelines.engine.types import GenerationParams
    from valuecorpus.pipelines.environments.episodes import results_by_system, run_episodes, start
    from valuecorpus.schemas.errors import NotFoundError, ValueCorpusError

    if bool(run) == bool(dataset):
        raise ValueCorpusError("give exactly one of --run RUN or --dataset NAME: where the cases are")
    s = settings()
    home = s.data_home
    cases = [c for c in _records(home, "agent_case", run, dataset, version) if c.source_case_file is None]
    where = f"run '{run}'" if run else f"dataset '{dataset}'"
    if case is not None:
        cases = [c for c in cases if case in (c.case_name, c.id)]
        if not cases:
            raise NotFoundError(f"no case '{case}' in {where}")
    if not cases:
        raise NotFoundError(f"{where} holds no agent cases")
    envs = {e.env_name: e for e in shipped_environments().values()}
    envs.update({e.env_name: e for e in _records(home, "agent_environment", run, dataset, version)})
    rubrics = {r.case_name: r for r in _records(home, "rubric", run, dataset, version)}
    runnable = []
    for c in cases:
        env = envs.get(c.environment)
        problem = ("is not in " + where) if env is None else None if env.executable else \
            "is not executable (imported without effects)"
        if problem:
            print(f"warning: case '{c.case_name}': environment '{c.environment}' {problem}; skipped", file=sys.stderr)
            continue
        runnable.append(start(c, env, rubrics.get(c.case_name)))
    if not runnable:
        raise ValueCorpusError(f"none of the {len(cases)} case(s) in {where} has an executable environment")
    config = engine_config(s, base_url=base_url, model=model,
                           backend="openai" if base_url or s.openai_base_url else None)
    print(f"running {len(runnable)} episode(s) with {config.describe()}, at most {max_steps} turns each",
          file=sys.stderr)
    with Engine(config) as engine:
        episodes = run_episodes(engine, runnable, max_steps, config.model,
                                GenerationParams(temperature=0.0, max_tokens=max_tokens))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for ep in episodes:
                fh.write(json.dumps(ep.summary(), ensure_ascii=False) + "\n")
        tmp.replace(out)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)  # a pipe gets whole names
    per_case = Table("case", "system", "value A", "value B", "score A", "score B", "leaning", "calls", "ended")
    for ep in episodes:
        assert ep.result is not None
        per_case.add_row(ep.case.case_name, ep.case.value_system, ep.case.value_items[0], ep.case.value_items[1],
                         f"{ep.result.a.score:.2f}", f"{ep.result.b.score:.2f}", ep.result.leaning,
                         str(len(ep.interpreter.trajectory) if ep.interpreter else 0), ep.ended or "")
    console.print(per_case)
    table = Table("value system", "cases", "mean score A", "mean score B", "lean A", "lean B", "ties",
                  "ended abnormally")
    for row in results_by_system(episodes):
        table.add_row(row["value_system"], str(row["cases"]), f"{row['mean_score_a']:.2f}",
                      f"{row['mean_score_b']:.2f}", str(row["lean_a"]), str(row["lean_b"]), str(row["ties"]),
                      str(row["ended_abnormally"]))
    console.print(table)
