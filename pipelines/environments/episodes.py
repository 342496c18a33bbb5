"""The episode runner: a tool-calling model acts in a case's environment through the interpreter, and its
trajectory is scored against both poles' checkpoints (`scoring.score`).

Episodes advance together: each round sends one request per live episode to the engine in one `generate`
call (so concurrency, retries, the cache and the budget serve them all), then runs the tool calls each answer
made. Requests use the OpenAI tool-call format; their ids and cache keys follow the conversation, so a rerun
of the same episodes with the same model is answered from the cache. An episode ends when the model answers
without a tool call, after `max_steps` model turns, after the interpreter's call limit, or when its request
dead-letters (the reason is kept).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from valuecorpus.pipelines.engine.types import GenerationParams, GenerationRequest, GenerationResult
from valuecorpus.pipelines.environments.interpreter import CallLimitReached, Interpreter
from valuecorpus.pipelines.environments.scoring import EpisodeScore, score
from valuecorpus.schemas.records import AgentCase, AgentEnvironment, Rubric, stable_id
from valuecorpus.schemas.run_tables import DeadLetter

TEMPLATE = "agent_cases/episode"


def tool_definitions(env: AgentEnvironment, function_list: list[str]) -> list[dict[str, Any]]:
    """The case's tools as OpenAI tool definitions (parameters in the spec's own key order)."""
    allowed = set(function_list) if function_list else None
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters or {"type": "object", "properties": {}}}}
            for t in env.tools if allowed is None or t.name in allowed]


@dataclass
class Episode:
    case: AgentCase
    env: AgentEnvironment
    rubric: Rubric | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    interpreter: Interpreter | None = None
    turns: int = 0
    ended: str | None = None
    answer: str = ""
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    result: EpisodeScore | None = None

    def summary(self) -> dict[str, Any]:
        steps = self.interpreter.trajectory if self.interpreter else []
        return {
            "case_name": self.case.case_name, "case_id": self.case.id, "environment": self.env.env_name,
            "value_system": self.case.value_system, "value_items": list(self.case.value_items),
            "ended": self.ended, "turns": self.turns, "calls": len(steps),
            "failed_calls": sum(1 for s in steps if s.error), "answer": self.answer, "tokens": self.tokens,
            **(self.result.as_dict() if self.result else {}),
            "trajectory": [s.model_dump(mode="json") for s in steps],
        }


def start(case: AgentCase, env: AgentEnvironment, rubric: Rubric | None = None) -> Episode:
    from valuecorpus.pipelines.prompts import load_template

    episode = Episode(case, env, rubric)
    episode.messages = [dict(m) for m in load_template(TEMPLATE).render(task=case.task_description)]
    episode.interpreter = Interpreter(env, case.initial_state, case.function_list or None)
    return episode


def _request(ep: Episode, model_tag: str, params: GenerationParams) -> GenerationRequest:
    tools = tool_definitions(ep.env, ep.case.function_list)
    return GenerationRequest(
        request_id=stable_id(ep.case.id, "episode", model_tag, ep.turns, json.dumps(ep.messages, sort_keys=True)),
        messages=ep.messages, tools=tools, params=params,
        metadata={"case": ep.case.case_name, "turn": ep.turns},
    )


def _act(ep: Episode, out: GenerationResult) -> None:
    assert ep.interpreter is not None
    ep.tokens["prompt"] += out.usage.prompt_tokens
    ep.tokens["completion"] += out.usage.completion_tokens
    if not out.tool_calls:
        ep.answer = out.content.strip()
        ep.ended = "answered"
        return
    ep.messages.append({"role": "assistant", "content": out.content or None, "tool_calls": [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for c in out.tool_calls]})
    for call in out.tool_calls:
        try:
            observation = ep.interpreter.call(call["name"], call["arguments"])
        except CallLimitReached as err:
            ep.ended = f"call limit: {err}"
            return
        ep.messages.append({"role": "tool", "tool_call_id": call["id"], "name": call["name"],
                            "content": json.dumps(observation, ensure_ascii=False)})


def run_episodes(engine: Any, episodes: list[Episode], max_steps: int = 20, model_tag: str = "",
                 params: GenerationParams | None = None) -> list[Episode]:
    """Run every episode to its end (at most `max_steps` model turns each) and score it."""
    params = params or GenerationParams(temperature=0.0, max_tokens=400)
    live = [ep for ep in episodes if ep.ended is None]
    while live:
        requests = [_request(ep, model_tag, params) for ep in live]
        outcomes = engine.generate(requests)
        for ep, out in zip(live, outcomes, strict=True):
            ep.turns += 1
            if isinstance(out, DeadLetter):
                ep.ended = f"dead letter: {out.error_class}: {out.reason}"
                continue
            _act(ep, out)
            if ep.ended is None and ep.turns >= max_steps:
                ep.ended = f"max steps ({max_steps})"
        live = [ep for ep in live if ep.ended is None]
    for ep in episodes:
        assert ep.interpreter is not None
        ep.result = score(ep.case, ep.interpreter.trajectory, [t.name for t in ep.env.tools], ep.rubric)
    return episodes


def results_by_system(episodes: list[Episode]) -> list[dict[str, Any]]:
    """One row per value system: cases, mean score per pole, how many episodes leaned to A, to B, or tied."""
    groups: dict[str, list[Episode]] = defaultdict(list)
    for ep in episodes:
        groups[ep.case.value_system].append(ep)
    rows = []
    for system in sorted(groups):
        eps = groups[system]
        scored = [ep.result for ep in eps if ep.result is not None]
        n = len(scored) or 1
        rows.append({
            "value_system": system, "cases": len(eps),
            "mean_score_a": round(sum(r.a.score for r in scored) / n, 4),
            "mean_score_b": round(sum(r.b.score for r in scored) / n, 4),
            "lean_a": sum(1 for r in scored if r.leaning == "a"), "lean_b": sum(1 for r in scored if r.leaning == "b"),
            "ties": sum(1 for r in scored if r.leaning == "tie"),
            "ended_abnormally": sum(1 for ep in eps if ep.ended and ep.ended != "answered"),
        })
    return rows


__all__ = ["Episode", "results_by_system", "run_episodes", "start", "tool_definitions"]
