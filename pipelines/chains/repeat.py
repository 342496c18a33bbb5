"""A repeated step group: steps that run again and again until a stop condition holds or a turn cap is hit.

`Repeat((AskStep, AnswerStep), until="interview_done", turns="max_turns")` in a chain's `step_classes`
expands, per chain, into the bounded list `ask[1], answer[1], ask[2], answer[2], …` up to the cap (a recipe
parameter). Every instance is an ordinary step, so both executors run it unchanged (the plain loop and the Beam
pipeline each see a fixed list of steps); once the stop condition holds for a sample, its remaining turn steps
make no requests and leave the state as it is. A step's turn is `self.turn`; its recipe name (prompt override,
`step_max_tokens`) is the step class's `name`, shared by every turn.

How a sample's loop ended is kept in its state: `state.data["<repeat>.ended_by"]` is "condition" or "turn_cap".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from valuecorpus.pipelines.chains.base import Step

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain, SampleState
    from valuecorpus.pipelines.engine.types import GenerationRequest, GenerationResult


@dataclass(frozen=True)
class Repeat:
    """A group of steps repeated up to `turns` times (the chain's params attribute holding the cap) until the
    chain's method `until(state) -> bool` says the loop is done. Checked before each step of each turn."""

    steps: tuple[type[TurnStep], ...]
    until: str
    turns: str
    name: str = "turns"

    def cap(self, chain: Chain) -> int:
        return int(getattr(chain.params, self.turns))

    def expand(self, chain: Chain) -> list[Step]:
        return [cls(chain, self, turn) for turn in range(1, self.cap(chain) + 1) for cls in self.steps]

    def step_names(self) -> list[str]:
        return [cls.name for cls in self.steps]

    def done(self, chain: Chain, state: SampleState) -> bool:
        key = f"{self.name}.ended_by"
        if key in state.data:
            return True
        if getattr(chain, self.until)(state):
            state.data[key] = "condition"
            return True
        return False

    def ended_by(self, state: SampleState) -> str:
        """How the loop ended, once every turn ran: the stop condition, or the cap."""
        return str(state.data.get(f"{self.name}.ended_by", "turn_cap"))


class TurnStep(Step):
    """A step inside a `Repeat`: one instance per turn. Subclasses write `turn_requests` / `turn_absorb`."""

    repeated: ClassVar[bool] = True

    def __init__(self, chain: Chain, repeat: Repeat, turn: int) -> None:
        super().__init__(chain)
        self.repeat, self.turn = repeat, turn
        self.name = f"{type(self).name}[{turn}]"  # unique per turn: request ids and Beam labels differ

    @property
    def base_name(self) -> str:
        return type(self).name

    def requests(self, state: SampleState) -> list[GenerationRequest]:
        if self.repeat.done(self.chain, state):
            return []
        return self.turn_requests(state)

    def absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        if not results:  # a turn after the stop: nothing was asked
            return state
        return self.turn_absorb(state, results)

    def turn_requests(self, state: SampleState) -> list[GenerationRequest]:
        raise NotImplementedError

    def turn_absorb(self, state: SampleState, results: list[GenerationResult]) -> SampleState:
        raise NotImplementedError


def expand_steps(chain: Chain, entries: tuple[Any, ...]) -> list[Step]:
    """A chain's step list: plain step classes instantiated, repeats expanded turn by turn."""
    out: list[Step] = []
    for entry in entries:
        out.extend(entry.expand(chain) if isinstance(entry, Repeat) else [entry(chain)])
    return out
