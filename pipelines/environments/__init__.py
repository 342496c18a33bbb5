"""Executable agent environments: the interpreter of declarative effects, golden-trajectory replay, the scoring
of trajectories against checkpoints, and the episode runner (a tool-calling model acting through the
interpreter). Used by the case chain (replay) and by `valuecorpus env run` (episodes). Nothing here executes
code from a spec."""

from valuecorpus.pipelines.environments.interpreter import (
    CallFailed,
    CallLimitReached,
    EnvironmentSpecError,
    Interpreter,
    load_environment,
    read_spec,
    state_problem,
)
from valuecorpus.pipelines.environments.replay import replay
from valuecorpus.pipelines.environments.scoring import EpisodeScore, covers, expected_tools, score

__all__ = [
    "CallFailed", "CallLimitReached", "EnvironmentSpecError", "EpisodeScore", "Interpreter", "covers",
    "expected_tools", "load_environment", "read_spec", "replay", "score", "state_problem",
]
