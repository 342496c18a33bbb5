"""distilabel (`OpenAILLM`), used the way a distilabel step uses it: `generate()` over batches of C inputs
(each batch runs concurrently and waits for its slowest request). Runs in distilabel's own venv."""

from __future__ import annotations

import distilabel
from distilabel.models.llms import OpenAILLM
from workload import MAX_TOKENS, MODEL, Meter, messages, params


def main() -> None:
    p = params()
    n, c = p["n"], p["c"]
    llm = OpenAILLM(model=MODEL, base_url=p["base_url"], api_key="bench", max_retries=0, timeout=120)
    llm.load()
    inputs = [messages(i) for i in range(n)]
    ok = 0
    with Meter() as meter:
        for start in range(0, n, c):
            outputs = llm.generate(inputs=inputs[start:start + c], num_generations=1, max_new_tokens=MAX_TOKENS)
            ok += sum(1 for out in outputs if out["generations"] and out["generations"][0])
    meter.report(n, ok, distilabel=distilabel.__version__)


if __name__ == "__main__":
    main()
