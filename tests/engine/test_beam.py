"""The Beam transform gives the same outcomes in-process and with worker processes (FnApiRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from engine_helpers import http_config, make_requests

from valuecorpus.pipelines.engine import Generate


def _run(mode: str, config, requests, out: Path) -> dict[str, dict]:
    options = PipelineOptions(flags=[], runner="FnApiRunner", direct_running_mode=mode, direct_num_workers=2)
    with beam.Pipeline(options=options) as p:
        outcomes = p | "Requests" >> beam.Create(requests) | "Generate" >> Generate(config)
        for tag in ("results", "dead_letters"):
            (outcomes[tag]
             | f"Json{tag}" >> beam.Map(lambda o: o.model_dump_json())
             | f"Write{tag}" >> beam.io.WriteToText(str(out / tag), file_name_suffix=".jsonl"))
    found: dict[str, dict] = {}
    for tag in ("results", "dead_letters"):
        for path in out.glob(f"{tag}*.jsonl"):
            for line in path.read_text().splitlines():
                row = json.loads(line)
                assert row["request_id"] not in found, "one outcome per request"
                found[row["request_id"]] = {"tag": tag, "content": row.get("content"),
                                            "error_class": row.get("error_class")}
    return found


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_generate_transform_matches_the_engine(fake_server, tmp_path: Path, mode: str) -> None:
    server = fake_server("--faults", "invalid_json:0.2,500:0.1", "--latency-ms", "5")
    requests = make_requests(120)
    config = http_config(server, tmp_path / f"cache-{mode}", max_in_flight=32)
    found = _run(mode, config, requests, tmp_path / mode)
    assert set(found) == {r.request_id for r in requests}
    dead = {k: v for k, v in found.items() if v["tag"] == "dead_letters"}
    assert dead and all(v["error_class"] == "invalid_json" for v in dead.values())

    from valuecorpus.pipelines.engine import Engine, GenerationResult

    server.reset()  # faults are drawn per (request, attempt): start the attempt counts again
    with Engine(http_config(server, tmp_path / "plain")) as engine:
        plain = engine.generate(requests)
    expected = {o.request_id: ("results", o.content) if isinstance(o, GenerationResult)
                else ("dead_letters", None) for o in plain}
    assert {k: (v["tag"], v["content"]) for k, v in found.items()} == expected


def test_no_secret_in_the_pickled_pipeline(monkeypatch) -> None:
    """The engine step carries its config to the workers without the key; they read it from their environment."""
    import pickle

    import apache_beam as beam
    from apache_beam.internal import pickler

    from valuecorpus.pipelines.engine import EngineConfig
    from valuecorpus.pipelines.engine.beam import Generate, _GenerateFn

    secret = "sk-test-0123456789abcdef"
    config = EngineConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", api_key=secret)
    fn = _GenerateFn(config, 16, 2, "step", False)
    assert secret.encode() not in pickle.dumps(fn) and secret.encode() not in pickler.dumps(fn)
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create([]) | Generate(config)
    assert secret not in str(pipeline.to_runner_api())
    monkeypatch.setenv(fn._config.credential_env, secret)
    assert fn._config.api_key is None and fn._config.resolved_api_key() == secret
