"""Golden trajectories replayed by the interpreter: a case is kept only if each pole's trajectory runs without
an error and covers that pole's checkpoints in order. A failure names the pole, the step and why."""

from __future__ import annotations

from typing import Any

from valuecorpus.pipelines.environments.interpreter import CallLimitReached, EnvironmentSpecError, Interpreter
from valuecorpus.pipelines.environments.scoring import covers
from valuecorpus.schemas.records.agents import AgentEnvironment, Checkpoint, TrajectoryStep


def replay(env: AgentEnvironment, initial_state: Any, function_list: list[str],
           calls: list[dict[str, Any]], checkpoints: list[Checkpoint]) -> tuple[list[TrajectoryStep], str | None]:
    """Run `calls` ({tool, arguments}) from the initial state: (the recorded steps, None or the failure)."""
    try:
        interpreter = Interpreter(env, initial_state, function_list)
    except EnvironmentSpecError as err:
        return [], str(err)
    if not calls:
        return [], "the trajectory makes no tool call"
    for i, call in enumerate(calls, start=1):
        try:
            observation = interpreter.call(str(call.get("tool", "")), call.get("arguments"))
        except CallLimitReached as err:
            return interpreter.trajectory, f"step {i}: {err}"
        if not observation["success"]:
            return interpreter.trajectory, f"step {i} ({call.get('tool')}): {observation['error']}"
    missed = covers(checkpoints, interpreter.trajectory, [t.name for t in env.tools])
    return interpreter.trajectory, missed


__all__ = ["replay"]
