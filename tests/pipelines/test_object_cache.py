"""The response cache on the local S3-compatible store: what was stored is found, by a lookup that lists the
key prefixes (a big batch) and by one that fetches each key (a small batch); nothing else is found; a cache
object sees its own writes after it listed."""

from __future__ import annotations

import hashlib
import uuid

from valuecorpus.pipelines.engine.object_cache import _LIST_FROM, ObjectCache


def _keys(n: int) -> list[str]:
    return [hashlib.sha256(f"request {i}".encode()).hexdigest() for i in range(n)]


def test_the_object_cache_finds_what_was_stored_in_big_and_small_lookups(object_store) -> None:
    url = object_store.url("caches", uuid.uuid4().hex)
    keys = _keys(4 * _LIST_FROM)
    stored = keys[: 2 * _LIST_FROM]
    writer = ObjectCache(url)
    for key in stored:
        writer.put(key, "model", "http://endpoint", {"answer": key})
    writer.close()

    big = ObjectCache(url)
    assert big.get_many(keys) == {key: {"answer": key} for key in stored}  # listed, then fetched

    small = keys[: _LIST_FROM // 4] + keys[-(_LIST_FROM // 4):]
    assert ObjectCache(url).get_many(small) == {key: {"answer": key} for key in small if key in stored}

    # after its listing, the same object finds what it wrote itself, queued or already put
    late = keys[-1]
    big.put(late, "model", "http://endpoint", {"answer": "late"})
    assert big.get_many(keys[2 * _LIST_FROM:])[late] == {"answer": "late"}
    big.flush()
    assert big.get_many(keys[2 * _LIST_FROM:]) == {late: {"answer": "late"}}
    big.close()
    assert ObjectCache(url).get_many(keys)[late] == {"answer": "late"}
    assert sorted(ObjectCache(url).keys()) == sorted([*stored, late])
