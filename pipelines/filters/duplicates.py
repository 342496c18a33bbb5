"""The duplicate stage of the filters: exact duplicates (same normalised text) and near-duplicates (MinHash LSH
over word 3-shingles, within the run and against the latest published version), in one implementation that
`apply_filters` (records in memory) and `dedupe.py` (a staged run read by column) both call.

What is kept per text is what LSH needs, not its signature: each text is normalised once, its SHA-256 (the
exact key, 32 bytes) and its `bands` band keys (`minhash.band_hashes`, 8 bytes each) computed chunk by chunk,
and the chunk's signatures dropped. The texts themselves stay in Arrow string arrays (one buffer per chunk,
not a Python object per text). Candidates are texts with an equal band key (numpy sort per band, as
`minhash.candidate_pairs` buckets signatures); every candidate is then verified on signatures recomputed for the
texts in candidate pairs only: a pair is an edge when one band is really equal (a key collision is not) and
its estimated Jaccard reaches the threshold — exactly the pairs the full signatures would give.

The decision is `apply_filters`' rule: records in id order, the smallest id of a normalised text keeps it (the
rest are exact duplicates of it), and a text is a near-duplicate when a published text or a kept record's text
of a verified pair reaches the threshold (the best score, ties to the first key in sorted order). Records of a
text without any verified pair need no replay: the first is kept and the rest are its duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from valuecorpus.pipelines.filters.minhash import (
    band_hashes,
    hashed_signatures,
    jaccard,
    lsh_params,
    minhash_signatures,
    normalised_shingle_hashes,
    shares_band,
)
from valuecorpus.pipelines.filters.text import normalise

PUBLISHED = "published:"
EXACT_REASON = "same normalised text"
_DIGEST = np.dtype("V32")


def near_duplicate_reason(matched: str, score: float) -> tuple[str, str, str]:
    """(filter, reason, matched id) of a near-duplicate of `matched` (`published:<id>` or a record id)."""
    where = "the published version" if matched.startswith(PUBLISHED) else "this run"
    other = matched.removeprefix(PUBLISHED)
    return "near_duplicate", f"similar to {other} in {where} (Jaccard ≈ {score:.2f})", other


@dataclass(frozen=True)
class DuplicateSettings:
    """The recipe's duplicate filters: `near` None when near-duplicates are not filtered."""

    exact: bool
    near: tuple[float, int] | None  # (threshold, num_perm)

    @classmethod
    def of(cls, filters: Any) -> DuplicateSettings:
        nd = filters.near_duplicate
        return cls(bool(filters.exact_duplicate), (nd.threshold, nd.num_perm) if nd.enabled else None)


@dataclass
class HashedTexts:
    """(id, text) pairs with their exact keys and band keys, built chunk by chunk (`add`)."""

    settings: DuplicateSettings
    exact_keys: bool = True  # the run's texts need them; published texts do not
    ids: list[pa.Array] = field(default_factory=list)
    texts: list[pa.Array] = field(default_factory=list)
    digests: list[np.ndarray] = field(default_factory=list)
    bands: list[np.ndarray] = field(default_factory=list)
    rows: int = 0

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        if not len(texts):
            return
        norms = [normalise(t) for t in texts]  # once, for both keys
        if self.exact_keys and (self.settings.exact or self.settings.near):
            joined = b"".join(hashlib.sha256(n.encode("utf-8")).digest() for n in norms)
            self.digests.append(np.frombuffer(joined, dtype=_DIGEST))
        if self.settings.near:
            threshold, num_perm = self.settings.near
            signatures = hashed_signatures([normalised_shingle_hashes(n) for n in norms], num_perm)
            self.bands.append(band_hashes(signatures, *lsh_params(threshold, num_perm)))
        self.ids.append(pa.array(ids, pa.string()))
        self.texts.append(pa.array(texts, pa.string()))
        self.rows += len(texts)

    def id_column(self) -> pa.ChunkedArray:
        return pa.chunked_array(self.ids, pa.string())

    def text_column(self) -> pa.ChunkedArray:
        return pa.chunked_array(self.texts, pa.string())

    def band_keys(self) -> np.ndarray:
        bands = lsh_params(*self.settings.near)[0] if self.settings.near else 0
        return np.concatenate(self.bands) if self.bands else np.empty((0, bands), dtype=np.uint64)

    def exact_digests(self) -> np.ndarray:
        return np.concatenate(self.digests) if self.digests else np.empty(0, dtype=_DIGEST)


def hash_texts(settings: DuplicateSettings, pairs: Iterable[tuple[Sequence[str], Sequence[str]]],
               exact_keys: bool = True) -> HashedTexts:
    """HashedTexts of (ids, texts) chunks."""
    out = HashedTexts(settings, exact_keys)
    for ids, texts in pairs:
        out.add(ids, texts)
    return out


def best_match(candidates: Iterable[tuple[str, float]]) -> tuple[str, float] | None:
    """The match a `MinHashLSH` query answers among verified candidates: the highest score, ties to the first
    key in sorted order (the loop's replay here and the Beam filter's decision both use it)."""
    best: tuple[str, float] | None = None
    for key, score in sorted(candidates):
        if best is None or score > best[1]:
            best = (key, score)
    return best


@dataclass
class Drop:
    position: int  # of the record among the run's texts as they were added
    filter: str
    reason: str
    matched: str
    score: float | None


def _take(column: pa.ChunkedArray, positions: np.ndarray) -> list[str]:
    return column.take(pa.array(positions, pa.int64())).to_pylist() if len(positions) else []


def _first_per_id(ids: pa.ChunkedArray) -> np.ndarray:
    """Positions of the first text of each published id (an LSH insert of a known key is ignored)."""
    if pc.count_distinct(ids).as_py() == len(ids):
        return np.arange(len(ids))
    seen: set[str] = set()
    keep = []
    for i, pid in enumerate(ids.to_pylist()):
        if pid not in seen:
            seen.add(pid)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def _candidate_rows(keys: np.ndarray, n_published: int) -> set[tuple[int, int]]:
    """Row pairs (i < j) equal in at least one band key; published rows (the first `n_published`) are never
    paired with each other."""
    pairs: set[tuple[int, int]] = set()
    if len(keys) < 2:
        return pairs
    for band in range(keys.shape[1]):
        column = keys[:, band]
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        sizes = np.diff(np.append(starts, len(ordered)))
        shared = sizes > 1
        for start, size in zip(starts[shared].tolist(), sizes[shared].tolist(), strict=True):
            members = np.sort(order[start:start + size]).tolist()
            for a, x in enumerate(members):
                for y in members[a + 1:]:
                    if y >= n_published:
                        pairs.add((x, y))
    return pairs


def duplicate_drops(run: HashedTexts, published: HashedTexts | None) -> list[Drop]:
    """The exact and near-duplicate drops among the run's texts (the records that survived the per-record
    filters, each with its non-empty text), against `published` (None: within the run only); in id order."""
    settings = run.settings
    n = run.rows
    if n == 0 or not (settings.exact or settings.near):
        return []
    ids = run.id_column()
    order = pc.sort_indices(ids).to_numpy()  # stable: records of one id stay in the order given
    digests = run.exact_digests()[order]
    _keys, first, group_of = np.unique(digests, return_index=True, return_inverse=True)
    group_of = group_of.ravel()  # sorted position → group; `first`: group → its first sorted position
    pub_edges: dict[int, list[tuple[str, float]]] = {}
    similar: dict[int, list[tuple[int, float]]] = {}
    if settings.near:
        pub_edges, similar = _verified_edges(run, published, order, first)
    drops: list[tuple[int, Drop]] = []
    edge_groups = np.fromiter(sorted({*pub_edges, *similar}), dtype=np.int64)
    positions = np.arange(n)
    in_edges = np.isin(group_of, edge_groups)
    plain = np.flatnonzero(~in_edges & (first[group_of] != positions))  # not the first of a pairless text
    if len(plain):
        matched = _take(ids, order[first[group_of[plain]]])
        for pos, other in zip(plain.tolist(), matched, strict=True):
            if settings.exact:
                drops.append((pos, Drop(int(order[pos]), "exact_duplicate", EXACT_REASON, other, None)))
            else:  # the same text: its signature is identical
                name, reason, other = near_duplicate_reason(other, 1.0)
                drops.append((pos, Drop(int(order[pos]), name, reason, other, 1.0)))
    replay = np.flatnonzero(in_edges)
    if len(replay):
        drops += _replay(replay, group_of, order, ids, pub_edges, similar, settings.exact)
    drops.sort(key=lambda d: d[0])
    return [d for _pos, d in drops]


def _verified_edges(run: HashedTexts, published: HashedTexts | None, order: np.ndarray, first: np.ndarray
                    ) -> tuple[dict[int, list[tuple[str, float]]], dict[int, list[tuple[int, float]]]]:
    """Verified pairs: group → [(published key, score)] and group → [(other group, score)], both ways."""
    threshold, num_perm = run.settings.near  # type: ignore[misc]
    bands, rows = lsh_params(threshold, num_perm)
    rep_rows = order[first]  # each group's first record, as added
    keys = [run.band_keys()[rep_rows]]
    pub_rows = np.empty(0, dtype=np.int64)
    if published is not None and published.rows:
        pub_ids = published.id_column()
        pub_rows = _first_per_id(pub_ids)
        keys.insert(0, published.band_keys()[pub_rows])
    n_pub = len(pub_rows)
    pairs = _candidate_rows(np.concatenate(keys), n_pub)
    if not pairs:
        return {}, {}
    members = np.unique(np.fromiter((x for pair in pairs for x in pair), dtype=np.int64))
    pub_members, run_members = members[members < n_pub], members[members >= n_pub]
    texts: list[str] = []
    pub_keys: dict[int, str] = {}
    if published is not None and len(pub_members):
        texts += _take(published.text_column(), pub_rows[pub_members])
        found = _take(published.id_column(), pub_rows[pub_members])
        pub_keys = {m: PUBLISHED + pid for m, pid in zip(pub_members.tolist(), found, strict=True)}
    texts += _take(run.text_column(), rep_rows[run_members - n_pub])
    signatures = minhash_signatures(texts, num_perm)  # only the texts in candidate pairs
    row_of = {m: k for k, m in enumerate(members.tolist())}
    pub_edges: dict[int, list[tuple[str, float]]] = {}
    similar: dict[int, list[tuple[int, float]]] = {}
    for x, y in sorted(pairs):
        a, b = signatures[row_of[x]], signatures[row_of[y]]
        if not shares_band(a, b, bands, rows):  # band keys collided: not an LSH candidate
            continue
        score = jaccard(a, b)
        if score < threshold:
            continue
        gy = y - n_pub
        if x < n_pub:
            pub_edges.setdefault(gy, []).append((pub_keys[x], score))
        else:
            gx = x - n_pub
            similar.setdefault(gx, []).append((gy, score))
            similar.setdefault(gy, []).append((gx, score))
    return pub_edges, similar


def _replay(positions: np.ndarray, group_of: np.ndarray, order: np.ndarray, ids: pa.ChunkedArray,
            pub_edges: dict[int, list[tuple[str, float]]], similar: dict[int, list[tuple[int, float]]],
            exact: bool) -> list[tuple[int, Drop]]:
    """The record-by-record rule, in id order, over the records whose text has a verified pair: what a
    `MinHashLSH` holding the published texts and the records kept so far would answer."""
    id_of = dict(zip(positions.tolist(), _take(ids, order[positions]), strict=True))
    seen: dict[int, str] = {}  # group → id of its first kept record
    kept: dict[int, list[str]] = {}  # group → ids of its kept records
    out = []
    for pos in positions.tolist():
        group, rid = int(group_of[pos]), id_of[pos]
        if exact and group in seen:
            out.append((pos, Drop(int(order[pos]), "exact_duplicate", EXACT_REASON, seen[group], None)))
            continue
        candidates = list(pub_edges.get(group, ()))
        for other, score in [*similar.get(group, ()), (group, 1.0)]:  # the same text: identical signature
            candidates += [(k, score) for k in kept.get(other, ())]
        best = best_match(candidates)
        if best is not None:
            name, reason, other = near_duplicate_reason(*best)
            out.append((pos, Drop(int(order[pos]), name, reason, other, best[1])))
            continue
        kept.setdefault(group, []).append(rid)
        seen.setdefault(group, rid)
    return out
