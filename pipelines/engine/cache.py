"""The durable per-request cache. On a local data home: one SQLite file in WAL mode, safe with several
processes writing at once. On an object store (`s3://`, `gs://`): one object per answer (`object_cache.py`),
since SQLite cannot lock there. `open_cache` picks by where the folder is; both take the same keys and values.

Answers are queued as they arrive and a writer thread commits them every `commit_interval_s` (or every
`commit_batch` answers): one transaction per batch instead of one per answer. A `kill -9` therefore loses at
most the requests in flight plus the answers of the last commit interval; a rerun pays only for those.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

CACHE_FILE = "engine-cache.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
  key TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  created REAL NOT NULL,
  value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_created ON answers(created);
CREATE INDEX IF NOT EXISTS answers_model ON answers(model);
CREATE TABLE IF NOT EXISTS probes (endpoint TEXT PRIMARY KEY, dialect TEXT NOT NULL, created REAL NOT NULL);
"""
_LOOKUP_CHUNK = 500
_CANON = orjson.OPT_SORT_KEYS
# 2: keys name the endpoint's identity (URL without credentials, or the local model file's digest), not only
# its kind; entries written under scheme 1 are never hit again (`cache stats` counts them)
KEY_SCHEME = 2
REMOTE_PREFIXES = ("gs:/", "s3:/", "gcs:/", "az:/", "abfs:/", "memory:/")


def cache_key(endpoint: str, model: str, messages: Any, params: Any, schema: Any) -> str:
    """sha256 of the canonical JSON of what determines an answer: the endpoint's identity (see
    `EngineConfig.endpoint_identity`), model, messages, params, schema. Never the API key."""
    blob = orjson.dumps(
        {"v": KEY_SCHEME, "e": endpoint, "m": model, "msg": messages, "p": params, "s": schema}, option=_CANON
    )
    return hashlib.sha256(blob).hexdigest()


def body_fingerprint(messages: Any, params: Any, schema: Any) -> str:
    """What makes two requests of one run identical (same endpoint and model): pipelines group on it so each
    distinct body is sent once, whichever worker holds its copies."""
    blob = orjson.dumps({"msg": messages, "p": params, "s": schema}, option=_CANON)
    return hashlib.sha256(blob).hexdigest()


def open_cache(folder: str | Path) -> Any:
    """The cache at `folder`: SQLite on a local disk, one object per answer on an object store."""
    if str(folder).startswith(REMOTE_PREFIXES):
        from valuecorpus.pipelines.engine.object_cache import ObjectCache

        return ObjectCache(str(folder))
    return ResponseCache(folder)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=60000")
    # switching to WAL takes a lock that the busy timeout does not wait for: only the first connection to a new
    # file switches, and it retries while another process is doing the same
    for attempt in range(50):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.05)
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives a process kill
    conn.executescript(_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(answers)")}
    if "scheme" not in columns:  # a cache from before key scheme 2: its entries stay, marked as scheme 1
        with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
            conn.execute("ALTER TABLE answers ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1")
    return conn


@dataclass
class CacheStats:
    path: str
    entries: int
    bytes: int
    models: dict[str, int]
    oldest: float | None
    newest: float | None
    old_scheme: int = 0  # entries keyed under an older scheme: kept, never hit


class BackgroundWriter:
    """One writer thread fed by a queue, so a put never waits for storage. `flush()` returns once everything
    queued before it is written; a writer's failure surfaces on the next put or flush. Subclasses write in
    `_write_loop` (a `threading.Event` in the queue is a flush barrier, `None` stops the loop)."""

    _writer_name = "engine-cache-writer"

    def _init_writer(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def _check_writer(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"cache writer failed: {self._error}") from self._error

    def _enqueue(self, item: Any) -> None:
        self._check_writer()
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name=self._writer_name, daemon=True)
            self._writer.start()
        self._queue.put(item)

    def _write_loop(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Write everything queued so far. The writer keeps running: other runs of the same engine (Beam
        bundles on the engine's thread) may be putting answers at the same time."""
        writer = self._writer
        if writer is not None:
            done = threading.Event()
            self._queue.put(done)
            while not done.wait(0.5):
                if not writer.is_alive():
                    break
        self._check_writer()


class ResponseCache(BackgroundWriter):
    """Lookups from the calling thread, writes from one background writer thread."""

    def __init__(self, folder: str | Path, commit_interval_s: float = 0.05, commit_batch: int = 512) -> None:
        if str(folder).startswith((*REMOTE_PREFIXES, "http:/", "https:/")):
            from valuecorpus.schemas.errors import SettingsError

            raise SettingsError(f"the SQLite response cache needs a local folder, not {folder}: SQLite cannot "
                                "lock object storage (open_cache picks the object-store cache there)")
        self.path = Path(folder) / CACHE_FILE
        self._read = connect(self.path)
        # lookups land on random pages: keep every page read (up to 64 MiB, allocated as read) rather than
        # SQLite's default 2 MiB, so a large job's lookups do not read the same pages from the OS again
        self._read.execute("PRAGMA cache_size=-65536")
        self._interval = commit_interval_s
        self._batch = commit_batch
        self._init_writer()
        self._closed = False

    # ---- reads
    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, value in self._read.execute(f"SELECT key, value FROM answers WHERE key IN ({marks})", chunk):
                found[key] = orjson.loads(value)
        return found

    def get_probe(self, endpoint: str) -> str | None:
        row = self._read.execute("SELECT dialect FROM probes WHERE endpoint=?", (endpoint,)).fetchone()
        return row[0] if row else None

    def put_probe(self, endpoint: str, dialect: str) -> None:
        self._read.execute(
            "INSERT OR REPLACE INTO probes(endpoint, dialect, created) VALUES (?,?,?)", (endpoint, dialect, time.time())
        )

    # ---- writes
    def put(self, key: str, model: str, endpoint: str, value: dict[str, Any]) -> None:
        self._enqueue((key, model, endpoint, time.time(), orjson.dumps(value), KEY_SCHEME))

    def _write_loop(self) -> None:
        conn = connect(self.path)
        try:
            stop = False
            while not stop:
                item = self._queue.get()
                rows: list[tuple[str, str, str, float, bytes, int]] = []
                barriers: list[threading.Event] = []
                deadline = time.monotonic() + self._interval
                while True:
                    if item is None:
                        stop = True
                        break
                    if isinstance(item, threading.Event):  # flush(): commit what came before it, now
                        barriers.append(item)
                        break
                    rows.append(item)
                    timeout = deadline - time.monotonic()
                    if len(rows) >= self._batch or timeout <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=timeout)
                    except queue.Empty:
                        break
                try:
                    if rows:
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany("INSERT OR REPLACE INTO answers(key, model, endpoint, created, value, "
                                         "scheme) VALUES (?,?,?,?,?,?)", rows)
                        conn.execute("COMMIT")
                finally:
                    for barrier in barriers:
                        barrier.set()
        except BaseException as exc:  # surfaced on the next put() / flush()
            self._error = exc
        finally:
            conn.close()

    def close(self) -> None:
        if self._closed:
            return
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        self._read.close()
        self._closed = True
        self._check_writer()

    # ---- maintenance (the `valuecorpus cache` command)
    def stats(self) -> CacheStats:
        self.flush()
        sql = "SELECT count(*), min(created), max(created) FROM answers"
        entries, oldest, newest = self._read.execute(sql).fetchone()
        models = dict(self._read.execute("SELECT model, count(*) FROM answers GROUP BY model ORDER BY 2 DESC"))
        size = sum(p.stat().st_size for p in self.path.parent.glob(CACHE_FILE + "*") if p.is_file())
        old = self._read.execute("SELECT count(*) FROM answers WHERE scheme < ?", (KEY_SCHEME,)).fetchone()[0]
        return CacheStats(str(self.path), entries, size, models, oldest, newest, old)

    def prune(self, older_than_days: float | None = None, model: str | None = None) -> int:
        self.flush()
        where, args = [], []
        if older_than_days is not None:
            where.append("created < ?")
            args.append(time.time() - older_than_days * 86400)
        if model is not None:
            where.append("model = ?")
            args.append(model)
        sql = "DELETE FROM answers" + (" WHERE " + " AND ".join(where) if where else "")
        deleted = self._read.execute(sql, args).rowcount
        self._read.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if deleted:
            self._read.execute("VACUUM")
        return deleted

    def keys(self) -> Iterator[str]:
        self.flush()
        for (key,) in self._read.execute("SELECT key FROM answers"):
            yield key
