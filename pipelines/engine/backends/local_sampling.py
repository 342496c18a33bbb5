"""Greedy decoding under a grammar that checks the grammar on the chosen token first.

llama-cpp-python's sampler chain runs the grammar over the whole vocabulary (49,152 tokens for SmolLM2) before
every greedy pick: about a third of the embedded model's time per answer token here. At temperature 0 the
answer is the highest-scoring token the grammar allows, so it is enough to take the highest-scoring token,
ask the grammar about that one token, and run the grammar over the whole vocabulary only when it refuses
(llama.cpp's own `common_sampler` does the same). The penalties touch only the tokens of their window, so they
are applied to those few logits here; a refusal asks the next best tokens one at a time (the grammar allows one
of the first few almost always) before the grammar runs over the whole vocabulary. The tokens chosen are exactly
the ones the stock chain chooses (penalties, then grammar, then greedy): the test compares both on the same model.

Only for greedy decoding with a grammar and no logits processor; everything else keeps the stock chain.
"""

from __future__ import annotations

import ctypes
import math
from collections import Counter, deque
from typing import Any

import numpy as np

TOP = 64  # tokens asked one by one before the grammar runs over the whole vocabulary


class GreedyGrammarSampler:
    """The object `Llama.generate` calls `.sample(ctx, idx)` on, with the stock sampler's penalties."""

    def __init__(self, llm: Any, grammar: Any, repeat_penalty: float, frequency_penalty: float,
                 presence_penalty: float) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._n_vocab = llm._n_vocab
        self.grammar = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        self.greedy = llama_cpp.llama_sampler_init_greedy()
        self._data = (llama_cpp.llama_token_data * self._n_vocab)()
        self._view = np.ctypeslib.as_array(self._data)  # structured: id, logit, p
        self._view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        self._one = (llama_cpp.llama_token_data * 1)()
        # the penalties as llama.cpp's sampler applies them, on the few tokens of its window (float32 as in C)
        self._last_n = llm.last_n_tokens_size
        self._window: deque[int] = deque()
        self._counts: Counter[int] = Counter()
        self._repeat, self._freq, self._present = (np.float32(v) for v in (repeat_penalty, frequency_penalty,
                                                                           presence_penalty))
        self._neutral = self._last_n == 0 or (repeat_penalty == 1.0 and frequency_penalty == 0.0
                                               and presence_penalty == 0.0)

    def _candidates(self, ctx: Any, idx: int) -> Any:
        self._view["logit"] = self._scores(ctx, idx)
        self._view["p"] = 0.0
        return self._lib.llama_token_data_array(data=self._data, size=self._n_vocab, selected=-1, sorted=False)

    def _pick(self, cur: Any) -> int:
        self._lib.llama_sampler_apply(self.greedy, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def _allowed(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        one = self._lib.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._lib.llama_sampler_apply(self.grammar, ctypes.byref(one))
        return not math.isinf(self._one[0].logit)

    def _scores(self, ctx: Any, idx: int) -> np.ndarray:
        """The logits after the penalties (read in place when no token is penalised)."""
        logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(ctx.ctx, idx), shape=(self._n_vocab,))
        if self._neutral or not self._counts:
            return logits
        scores = logits.copy()
        ids = np.fromiter(self._counts, np.int64, len(self._counts))
        counts = np.fromiter(self._counts.values(), np.float32, len(self._counts))
        hit = scores[ids]
        hit = np.where(hit <= 0, hit * self._repeat, hit / self._repeat)
        scores[ids] = hit - (counts * self._freq + self._present)  # every windowed token has a count > 0
        return scores

    def _accept_penalty(self, token: int) -> None:
        if self._neutral:
            return
        self._window.append(token)
        self._counts[token] += 1
        if len(self._window) > self._last_n:
            old = self._window.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]

    def _best_allowed(self, ctx: Any, idx: int) -> int | None:
        """The best-scoring token the grammar allows among the TOP best (ties: the lower id, as greedy picks),
        asked one token at a time; None if it allows none of them."""
        logits = self._scores(ctx, idx)
        token = int(logits.argmax())
        if self._allowed(token):
            return token
        top = np.argpartition(-logits, TOP)[:TOP]
        for token in top[np.lexsort((top, -logits[top]))]:
            if self._allowed(int(token)):
                return int(token)
        return None

    def sample(self, ctx: Any, idx: int = -1) -> int:
        token = self._best_allowed(ctx, idx)
        if token is None:  # the grammar refuses the TOP best: the best of what it allows, over the vocabulary
            cur = self._candidates(ctx, idx)
            self._lib.llama_sampler_apply(self.grammar, ctypes.byref(cur))
            token = self._pick(cur)
        self._lib.llama_sampler_accept(self.grammar, token)
        self._accept_penalty(token)
        return token

    def close(self) -> None:
        if self.grammar is not None:
            self._lib.llama_sampler_free(self.grammar)
            self._lib.llama_sampler_free(self.greedy)
            self.grammar = self.greedy = None

    def __del__(self) -> None:
        self.close()


def fast_llama_class() -> type:
    """`llama_cpp.Llama` whose greedy, grammar-constrained generation uses `GreedyGrammarSampler`."""
    from llama_cpp import Llama

    class FastGrammarLlama(Llama):
        def _init_sampler(self, **kw: Any) -> Any:  # type: ignore[override]
            if (kw.get("grammar") is not None and kw.get("temp") == 0.0 and kw.get("logits_processor") is None
                    and not kw.get("mirostat_mode")):
                return GreedyGrammarSampler(self, kw["grammar"], kw.get("repeat_penalty", 1.0),
                                            kw.get("frequency_penalty", 0.0), kw.get("presence_penalty", 0.0))
            return super()._init_sampler(**kw)

    return FastGrammarLlama
