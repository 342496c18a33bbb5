"""bespokelabs-curator (`curator.LLM`, OpenAI backend pointed at the fake server), C concurrent requests.
Runs in curator's own venv, with its cache in a fresh temporary folder and its telemetry off."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

# Offline: tiktoken would download its BPE files; litellm (a curator dependency) ships them in a cache folder.
_litellm = importlib.util.find_spec("litellm")
if _litellm is not None and _litellm.origin:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR",
                          str(Path(_litellm.origin).parent / "litellm_core_utils" / "tokenizers"))
os.environ.setdefault("TELEMETRY_ENABLED", "false")
os.environ.setdefault("CURATOR_DISABLE_RICH_DISPLAY", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["CURATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="curator-bench-")  # a fresh cache: no reuse
atexit.register(shutil.rmtree, os.environ["CURATOR_CACHE_DIR"], True)

from importlib.metadata import version  # noqa: E402

from bespokelabs import curator  # noqa: E402
from workload import MAX_TOKENS, MODEL, Meter, messages, params  # noqa: E402


class Dilemmas(curator.LLM):
    def prompt(self, row: dict) -> list[dict[str, str]]:
        return messages(row["i"])

    def parse(self, row: dict, response: str) -> dict:
        return {"i": row["i"], "response": response}


def main() -> None:
    p = params()
    n, c = p["n"], p["c"]
    llm = Dilemmas(model_name=MODEL, backend="openai", generation_params={"max_tokens": MAX_TOKENS},
                   backend_params={"base_url": p["base_url"], "api_key": "bench", "max_retries": 0,
                                   "max_concurrent_requests": c, "max_requests_per_minute": 10_000_000,
                                   "max_tokens_per_minute": 10_000_000_000, "require_all_responses": False})
    rows = [{"i": i} for i in range(n)]
    with Meter() as meter:
        out = llm(rows)
    dataset = out.dataset if hasattr(out, "dataset") else out
    meter.report(n, len(dataset), curator=version("bespokelabs-curator"))


if __name__ == "__main__":
    main()
