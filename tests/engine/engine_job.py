"""A generation job in its own process (for kill -9 and multi-process cache tests):
python engine_job.py BASE_URL CACHE_DIR N MAX_IN_FLIGHT [OFFSET [CONFIG_JSON]]  → prints the engine stats as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from engine_helpers import make_requests

from valuecorpus.pipelines.engine import Engine, EngineConfig


def main() -> None:
    base_url, cache_dir, n, in_flight = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    offset = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    config = EngineConfig(**{"backend": "openai", "base_url": base_url, "model": "fake-model", "dialect": "openai",
                             "cache_dir": cache_dir, "max_in_flight": in_flight, "timeout_s": 10, **extra})
    requests = make_requests(n + offset)[offset:]
    with Engine(config) as engine:
        engine.generate(requests)
        print(json.dumps(engine.stats.as_dict()), flush=True)


if __name__ == "__main__":
    main()
