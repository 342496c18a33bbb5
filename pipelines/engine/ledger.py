"""A budget shared by several processes (Beam workers) through the cache's SQLite file.

Each engine leases slices of the caps (at least what its next request could cost, usually a sixteenth of the
cap) and gives back what it did not spend when a batch of requests ends. The sum of all leases never exceeds
the cap, so the cap holds across workers. A worker killed mid-run keeps its lease (the cap can only be
under-used, never exceeded) until the next attempt of the run starts: its launcher gives unsettled leases back
(`reclaim`), since no engine of the killed attempt is alive then.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from valuecorpus.pipelines.engine.cache import CACHE_FILE, connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
  scope TEXT PRIMARY KEY,
  granted_cost REAL NOT NULL DEFAULT 0, granted_tokens INTEGER NOT NULL DEFAULT 0,
  spent_cost REAL NOT NULL DEFAULT 0, spent_tokens INTEGER NOT NULL DEFAULT 0
);
"""


class SharedLedger:
    takes_back = True  # `settle` returns an unused lease to the pool

    def __init__(self, cache_dir: str | Path, scope: str, max_cost: float | None, max_tokens: int | None) -> None:
        self.scope = scope
        self.max_cost = math.inf if max_cost is None else max_cost
        self.max_tokens = math.inf if max_tokens is None else max_tokens
        self._conn = connect(Path(cache_dir) / CACHE_FILE)
        self._conn.executescript(_SCHEMA)
        self._conn.execute("INSERT OR IGNORE INTO budgets(scope) VALUES (?)", (scope,))

    def lease(self, cost: float, tokens: int) -> tuple[float, int]:
        """Grant up to (cost, tokens) of what is left under the caps; may grant less, or nothing."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            granted_cost, granted_tokens = conn.execute(
                "SELECT granted_cost, granted_tokens FROM budgets WHERE scope=?", (self.scope,)).fetchone()
            give_cost = max(0.0, min(cost, self.max_cost - granted_cost))
            give_tokens = int(max(0, min(tokens, self.max_tokens - granted_tokens)))
            conn.execute("UPDATE budgets SET granted_cost=granted_cost+?, granted_tokens=granted_tokens+? "
                         "WHERE scope=?", (give_cost, give_tokens, self.scope))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return give_cost, give_tokens

    def settle(self, unused_cost: float, unused_tokens: int, spent_cost: float, spent_tokens: int) -> None:
        """Give back an unused part of the lease and record what was spent."""
        self._conn.execute(
            "UPDATE budgets SET granted_cost=max(0, granted_cost-?), granted_tokens=max(0, granted_tokens-?), "
            "spent_cost=spent_cost+?, spent_tokens=spent_tokens+? WHERE scope=?",
            (unused_cost, unused_tokens, spent_cost, spent_tokens, self.scope))

    def reclaim(self) -> None:
        """A new attempt of the run starts (no engine of an earlier one is alive): what killed attempts leased
        and never settled is given back; what they spent and recorded stays spent."""
        self._conn.execute("UPDATE budgets SET granted_cost=spent_cost, granted_tokens=spent_tokens WHERE scope=?",
                           (self.scope,))

    def spent(self) -> tuple[float, int]:
        row = self._conn.execute("SELECT spent_cost, spent_tokens FROM budgets WHERE scope=?", (self.scope,))
        cost, tokens = row.fetchone()
        return float(cost), int(tokens)

    def close(self) -> None:
        self._conn.close()


class ObjectLedger:
    """The shared budget on an object store, where nothing can be updated atomically but an object can be
    created only if it does not exist. The caps are cut into `SLICES` equal slices; an engine that needs budget
    claims the next free slice numbers (`lease-<n>` objects, created exclusively), so all claims together never
    exceed the cap. Unused parts of a slice are not given back (the cap can be under-used, never exceeded);
    each engine records its spend in its own object, which `spent()` sums."""

    SLICES = 16
    takes_back = False  # a claimed slice stays claimed

    def __init__(self, cache_dir: str, scope: str, max_cost: float | None, max_tokens: int | None) -> None:
        import uuid

        from fsspec.core import url_to_fs

        self.scope = scope
        self.max_cost = math.inf if max_cost is None else max_cost
        self.max_tokens = math.inf if max_tokens is None else max_tokens
        self.fs, root = url_to_fs(cache_dir.rstrip("/"), use_listings_cache=False)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in scope)
        self.root = f"{root.rstrip('/')}/budgets/{safe}"
        self.me = uuid.uuid4().hex
        self._next = 0
        self._spent_cost, self._spent_tokens = 0.0, 0

    def _claim(self) -> bool:
        from upath import UPath

        from valuecorpus.schemas.storage import create_exclusive

        while self._next < self.SLICES:
            n, self._next = self._next, self._next + 1
            path = UPath(f"{self.fs.unstrip_protocol(self.root)}/lease-{n:03d}", use_listings_cache=False)
            if create_exclusive(path, self.me.encode()):
                return True
        return False

    def lease(self, cost: float, tokens: int) -> tuple[float, int]:
        slice_cost = self.max_cost / self.SLICES
        slice_tokens = self.max_tokens / self.SLICES
        got_cost, got_tokens = 0.0, 0.0
        while got_cost < cost or got_tokens < tokens:
            if not self._claim():
                break
            got_cost += slice_cost
            got_tokens += slice_tokens
        return got_cost, int(min(got_tokens, 2**62))

    def settle(self, unused_cost: float, unused_tokens: int, spent_cost: float, spent_tokens: int) -> None:
        import json

        self._spent_cost += spent_cost
        self._spent_tokens += spent_tokens
        self.fs.pipe_file(f"{self.root}/spent-{self.me}.json",
                          json.dumps({"cost": self._spent_cost, "tokens": self._spent_tokens}).encode())

    def spent(self) -> tuple[float, int]:
        import json

        cost, tokens = 0.0, 0
        try:
            paths = self.fs.glob(f"{self.root}/spent-*.json")
        except FileNotFoundError:
            paths = []
        for path in paths:
            row = json.loads(self.fs.cat_file(path))
            cost += float(row["cost"])
            tokens += int(row["tokens"])
        return cost, tokens

    def reclaim(self) -> None:
        """Slices cannot be given back on a store (nothing updates atomically there): a killed attempt's
        claimed slices stay claimed, so a resumed run may have less of the cap left, never more."""

    def close(self) -> None:
        pass


def open_ledger(cache_dir: str | Path, scope: str, max_cost: float | None, max_tokens: int | None) -> Any:
    """The shared budget beside the cache: in its SQLite file on a local disk, as claimed slices on a store."""
    from valuecorpus.pipelines.engine.cache import REMOTE_PREFIXES

    if str(cache_dir).startswith(REMOTE_PREFIXES):
        return ObjectLedger(str(cache_dir), scope, max_cost, max_tokens)
    return SharedLedger(cache_dir, scope, max_cost, max_tokens)
