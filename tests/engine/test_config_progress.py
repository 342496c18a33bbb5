"""The config never shows the API key; settings map to it; progress reports on a plain stream."""

from __future__ import annotations

import io
from pathlib import Path

from engine_helpers import http_config, make_requests

from valuecorpus.pipelines.engine import Engine, EngineConfig, Progress


def test_api_key_is_never_dumped() -> None:
    config = EngineConfig(backend="openai", base_url="http://127.0.0.1:1/v1", model="m", api_key="sk-secret-42")
    assert "sk-secret-42" not in repr(config) + str(config) + config.model_dump_json() + str(config.model_dump())
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-secret-42"


def test_settings_map_to_the_engine_config(monkeypatch, home: Path) -> None:
    from valuecorpus.cli.engine import engine_config
    from valuecorpus.settings import load_settings

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("VALUECORPUS_MODEL", "served-model")
    config = engine_config(load_settings(home=str(home)), max_cost_usd=2.5, max_in_flight=None)
    assert config.backend == "openai" and config.model == "served-model" and config.max_cost_usd == 2.5
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-from-env"
    assert config.cache_dir == str(home / "cache")
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert engine_config(load_settings(home=str(home))).backend == "local"


def test_plain_progress_lines(fake_server, tmp_path: Path) -> None:
    server = fake_server()
    stream = io.StringIO()
    progress = Progress(stream=stream, rich=False, interval_s=0.0)
    with Engine(http_config(server, tmp_path), progress=progress) as engine:
        engine.generate(make_requests(10))
    last = stream.getvalue().strip().splitlines()[-1]
    assert last.startswith("generate: 10/10 done") and "req/s" in last and "errors" in last and "ETA" in last


def test_overlapping_batches_add_up_in_one_progress_display(fake_server, tmp_path: Path) -> None:
    server = fake_server("--latency-ms", "100")
    stream = io.StringIO()
    progress = Progress(stream=stream, rich=False, interval_s=0.0)
    with Engine(http_config(server, tmp_path), progress=progress) as engine:
        futures = [engine.submit(make_requests(6, prefix=f"b{b}-")) for b in range(3)]
        for future in futures:
            future.result(timeout=60)
    lines = stream.getvalue().strip().splitlines()
    assert lines[-1].startswith("generate: 18/18 done")
    for line in lines:  # never more done than announced
        done, total = line.split(": ", 1)[1].split(" ", 1)[0].split("/")
        assert int(done) <= int(total)


def test_agenerate_inside_a_running_loop(fake_server, tmp_path: Path) -> None:
    import asyncio

    import pytest

    server = fake_server()
    requests = make_requests(20)

    async def main() -> list:
        engine = Engine(http_config(server, tmp_path))
        try:
            with pytest.raises(RuntimeError, match="agenerate"):
                engine.generate(requests)  # the blocking call refuses to nest in a running loop
            return await engine.agenerate(requests)
        finally:
            await engine.aclose()

    outcomes = asyncio.run(main())
    assert [o.request_id for o in outcomes] == [r.request_id for r in requests]
    assert server.chat_requests() == 20
