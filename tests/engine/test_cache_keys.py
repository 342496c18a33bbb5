"""Cache keys that cannot collide: two endpoints serving one model name never answer from each other's
entries (unless a setting says they serve the same weights), a swapped model file behind the same path misses,
and entries keyed under the old scheme stay, are never hit, and `cache stats` says so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine_helpers import http_config, make_requests

from valuecorpus.pipelines.engine import EngineConfig
from valuecorpus.pipelines.engine.cache import CACHE_FILE, ResponseCache, cache_key
from valuecorpus.pipelines.engine.core import Engine


def _chat(server) -> int:
    return server.stats()["by_path"].get("/v1/chat/completions", 0)


def test_two_endpoints_under_one_model_name_do_not_share_entries(fake_server, tmp_path: Path) -> None:
    first, second = fake_server(), fake_server()
    requests = make_requests(5)
    with Engine(http_config(first, tmp_path)) as engine:
        assert all(not o.cached for o in engine.generate(requests))
    with Engine(http_config(second, tmp_path)) as engine:  # same cache, same model name, other server
        outcomes = engine.generate(requests)
    assert _chat(second) == 5 and not any(o.cached for o in outcomes)
    # the same URL written differently (credentials, trailing slash, case of the host) is the same endpoint
    url = first.base_url.replace("http://127.0.0.1", "http://user:pw@127.0.0.1") + "/"
    with Engine(http_config(first, tmp_path, base_url=url)) as engine:
        assert all(o.cached for o in engine.generate(requests))
    # a setting names endpoints that serve the same weights: they share entries
    aliases = {first.base_url: "smol-weights", second.base_url: "smol-weights"}
    with Engine(http_config(first, tmp_path, cache_aliases=aliases)) as engine:
        engine.generate(requests)
    sent = _chat(second)
    with Engine(http_config(second, tmp_path, cache_aliases=aliases)) as engine:
        assert all(o.cached for o in engine.generate(requests))
    assert _chat(second) == sent


def test_a_swapped_model_file_behind_the_same_path_misses(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights one" * 1000)
    config = EngineConfig(backend="local", local_model_path=str(model))
    before = config.endpoint_identity
    assert config.endpoint_identity == before  # remembered, not recomputed differently
    model.write_bytes(b"weights two" * 1000)  # same path, same size, new content (and mtime)
    after = EngineConfig(backend="local", local_model_path=str(model)).endpoint_identity
    assert after != before and after.startswith("local:sha256:")
    msgs = [{"role": "user", "content": "x"}]
    assert cache_key(before, "m", msgs, {}, None) != cache_key(after, "m", msgs, {}, None)


def test_old_scheme_entries_are_kept_never_hit_and_counted(cli, home: Path) -> None:
    folder = home / "cache"
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / CACHE_FILE)  # a cache made before key scheme 2
    conn.executescript("CREATE TABLE answers (key TEXT PRIMARY KEY, model TEXT NOT NULL, endpoint TEXT NOT NULL, "
                       "created REAL NOT NULL, value BLOB NOT NULL);")
    conn.execute("INSERT INTO answers VALUES ('k-old', 'm', 'openai', 1.0, '{}')")
    conn.commit()
    conn.close()
    cache = ResponseCache(folder)
    try:
        cache.put("k-new", "m", "openai:http://x", {"c": "", "p": 0, "k": 0, "m": "m"})
        stats = cache.stats()
    finally:
        cache.close()
    assert stats.entries == 2 and stats.old_scheme == 1
    res = cli("cache", "stats")
    assert res.code == 0, res.stderr
    assert "1 entries use an older key scheme" in res.stdout
