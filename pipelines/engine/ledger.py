"""A budget shared by several processes (Beam workers) through the cache's SQLite file.

Each engine leases slices of the caps (at least what its next request could cost, usually a sixteenth of the
cap) and gives back what it did not spend when a batch of requests ends. The sum of all leases never exceeds
the cap, so the cap holds across workers. A worker killed mid-run keeps its lease: the cap can only be
under-used, never exceeded.
"""

from __future__ import annotations

import math
from pathlib import Path

from valuecorpus.pipelines.engine.cache import CACHE_FILE, connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
  scope TEXT PRIMARY KEY,
  granted_cost REAL NOT NULL DEFAULT 0, granted_tokens INTEGER NOT NULL DEFAULT 0,
  spent_cost REAL NOT NULL DEFAULT 0, spent_tokens INTEGER NOT NULL DEFAULT 0
);
"""


class SharedLedger:
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

    def spent(self) -> tuple[float, int]:
        row = self._conn.execute("SELECT spent_cost, spent_tokens FROM budgets WHERE scope=?", (self.scope,))
        cost, tokens = row.fetchone()
        return float(cost), int(tokens)

    def close(self) -> None:
        self._conn.close()
