"""Generation chains: one per corpus kind, each a list of small steps with a prompt template per step.

`CHAINS` maps a recipe's `kind` to "module:Class"; modules are imported on first use only, so adding a
chain is one module plus one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from valuecorpus.schemas.errors import RecipeError

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

CHAINS: dict[str, str] = {
    "dilemmas": "valuecorpus.pipelines.chains.dilemmas:DilemmaChain",
    "perspectives": "valuecorpus.pipelines.chains.perspectives:PerspectiveChain",
    "value_rules": "valuecorpus.pipelines.chains.value_rules:ValueRuleChain",
    "rule_pair_dilemmas": "valuecorpus.pipelines.chains.rule_pairs:RulePairChain",
    "preference_pairs": "valuecorpus.pipelines.chains.preferences:PreferencePairChain",
    "outcome_comparisons": "valuecorpus.pipelines.chains.outcomes:OutcomeComparisonChain",
    "moral_graph": "valuecorpus.pipelines.chains.moral_graph:MoralGraphInterviewChain",
    "moral_graph_votes": "valuecorpus.pipelines.chains.moral_graph_votes:MoralGraphVoteChain",
    "agent_cases": "valuecorpus.pipelines.chains.agent_cases:AgentCaseChain",
}


def chain_class(kind: str) -> type[Chain]:
    target = CHAINS.get(kind)
    if target is None:
        raise RecipeError(f"unknown chain kind '{kind}' (known: {', '.join(CHAINS)})")
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise RecipeError(f"chain kind '{kind}' is not available (no module {module_name})") from None
    return getattr(module, cls_name)
