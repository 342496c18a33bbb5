"""MinHash signatures of word 3-shingles and LSH banding, shared by the loop filter and its Beam form.

One signature function for both, so the loop and Beam keep and drop the same records:

- each shingle is hashed once with xxHash3 (64-bit, non-cryptographic, the same on every machine and process;
  its low 32 bits are used);
- the `num_perm` permutations are `h ↦ (a·h + b) mod 2³²` with odd `a` (bijections, as datasketch 2's
  "affine32" scheme; the shingle hash is already well mixed), drawn once per process from a fixed seed; a
  signature value is the minimum over the text's shingles. Computed with numpy over texts × shingles ×
  permutations for a block of texts at once (datasketch's `MinHash.update` costs a Python call per shingle and
  re-derives the permutations for every text);
- the estimated Jaccard of two texts is the share of equal signature values, as datasketch's `MinHash.jaccard`;
- LSH banding takes datasketch's `MinHashLSH` parameters (b bands of r rows for the threshold and `num_perm`):
  two texts are candidates when one band is equal, as a `MinHashLSH.query` finds them.

Signatures are uint32 (half the memory of datasketch's legacy uint64 values, which hold 32-bit values too).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import xxhash

from valuecorpus.pipelines.filters.text import CJK, normalise, normalised_tokens

SIG_DTYPE = np.uint32
_EMPTY = np.iinfo(SIG_DTYPE).max  # the signature of a text without shingles (datasketch: its max hash)
_SEED = 1
_CHUNK = 4096  # texts hashed per chunk
_BLOCK = 1 << 18  # texts × shingles × permutations per numpy block: 1 MiB of uint32 (cache-sized: 3× faster
# than 16 MiB blocks here)


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the permutations, each shape (1, 1, num_perm); built once per process and `num_perm`."""
    rng = np.random.RandomState(_SEED)  # the legacy generator: the same stream on every numpy version
    a = rng.randint(0, 2**31, size=num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)  # odd multipliers
    b = rng.randint(0, 2**32, size=num_perm, dtype=np.uint64).astype(np.uint32)
    return a.reshape(1, 1, -1), b.reshape(1, 1, -1)


# (threshold, num_perm) -> (bands, rows) as `MinHashLSH` derives them, for the usual settings: importing datasketch
# (it brings scipy.integrate) is half a second of CPU in every run. tests/pipelines/test_filters_minhash.py
# checks every entry against datasketch.
KNOWN_LSH_PARAMS: dict[tuple[float, int], tuple[int, int]] = {
    (0.5, 64): (14, 4), (0.55, 64): (12, 5), (0.6, 64): (10, 6), (0.65, 64): (9, 7), (0.7, 64): (8, 8),
    (0.75, 64): (7, 9), (0.8, 64): (5, 11), (0.85, 64): (4, 15), (0.9, 64): (3, 21), (0.95, 64): (2, 32),
    (0.5, 128): (25, 5), (0.55, 128): (21, 6), (0.6, 128): (18, 7), (0.65, 128): (16, 8), (0.7, 128): (14, 9),
    (0.75, 128): (11, 11), (0.8, 128): (9, 13), (0.85, 128): (8, 16), (0.9, 128): (5, 25), (0.95, 128): (3, 42),
    (0.5, 256): (42, 6), (0.55, 256): (36, 7), (0.6, 256): (32, 8), (0.65, 256): (28, 9), (0.7, 256): (25, 10),
    (0.75, 256): (21, 12), (0.8, 256): (17, 15), (0.85, 256): (13, 19), (0.9, 256): (9, 28), (0.95, 256): (5, 51),
}


@lru_cache(maxsize=8)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that datasketch's `MinHashLSH` derives for the threshold (equal false positive and false
    negative weights)."""
    known = KNOWN_LSH_PARAMS.get((threshold, num_perm))
    if known is not None:
        return known
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def shingle_hashes(text: str) -> np.ndarray:
    """Hashes of a text's word 3-shingles (`text.shingles`, a repeated shingle hashed again: a minimum does not
    mind): xxHash3 64-bit of the UTF-8 shingle, its low 32 bits (all of its bits are mixed)."""
    return normalised_shingle_hashes(normalise(text))


def normalised_shingle_hashes(norm: str) -> np.ndarray:
    """`shingle_hashes` of a text whose normalised form is `norm`."""
    # outside CJK text `norm` is words joined by single spaces: the same tokens as `normalised_tokens`, encoded
    # at once
    tokens = ([t.encode("utf-8") for t in normalised_tokens(norm)] if CJK.search(norm)
              else norm.encode("utf-8").split())
    if len(tokens) < 3:
        grams = [b" ".join(tokens)] if tokens else []
    else:
        grams = list(map(b" ".join, zip(tokens, tokens[1:], tokens[2:], strict=False)))
    return np.array(list(map(xxhash.xxh3_64_intdigest, grams)), dtype=np.uint64).astype(np.uint32)


def minhash_signatures(texts: Sequence[str], num_perm: int) -> np.ndarray:
    """The signatures of `texts`, shape (len(texts), num_perm), dtype uint32; each text hashed once."""
    out = np.full((len(texts), num_perm), _EMPTY, dtype=SIG_DTYPE)
    for start in range(0, len(texts), _CHUNK):
        _chunk([shingle_hashes(t) for t in texts[start:start + _CHUNK]], num_perm, out[start:start + _CHUNK])
    return out


def hashed_signatures(hashed: list[np.ndarray], num_perm: int) -> np.ndarray:
    """The signatures of texts given by their `shingle_hashes` (what `minhash_signatures` gives the texts)."""
    out = np.full((len(hashed), num_perm), _EMPTY, dtype=SIG_DTYPE)
    for start in range(0, len(hashed), _CHUNK):
        _chunk(hashed[start:start + _CHUNK], num_perm, out[start:start + _CHUNK])
    return out


def _chunk(hashed: list[np.ndarray], num_perm: int, out: np.ndarray) -> None:
    """Signatures of one chunk: texts ordered by shingle count and cut into blocks of similar counts, each
    block a (texts, shingles, permutations) array padded with the text's first hash (a minimum ignores it)."""
    a, b = _permutations(num_perm)
    lengths = np.fromiter((len(h) for h in hashed), dtype=np.int64, count=len(hashed))
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0].tolist()
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j + 1 - i) * int(lengths[order[j]]) * num_perm <= _BLOCK:
            j += 1
        rows = order[i:j]
        width = int(lengths[rows[-1]])
        block = np.empty((len(rows), width), dtype=np.uint32)
        for k, row in enumerate(rows):
            h = hashed[row]
            block[k, :len(h)] = h
            block[k, len(h):] = h[0]
        with np.errstate(over="ignore"):  # arithmetic modulo 2**32 is the point
            permuted = block[:, :, None] * a
            permuted += b
        out[rows] = permuted.min(axis=1)
        i = j


def minhash_values(text: str, num_perm: int) -> np.ndarray:
    """The signature of one text (the same values `minhash_signatures` gives it in a batch)."""
    return minhash_signatures([text], num_perm)[0]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


_MIX = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment and multipliers
_MUL1, _MUL2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 per (text, band), shape (texts, bands): equal bands give equal keys, so texts that share a
    band share its key (a different band may collide on a key too: candidates found by key are verified on the
    signatures, `filters/duplicates.py`). 8 bytes per band instead of the band's `rows` × 4."""
    out = np.empty((len(signatures), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for band in range(bands):
            h = np.full(len(signatures), np.uint64(band + 1) * _MIX, dtype=np.uint64)
            for col in range(band * rows, (band + 1) * rows):
                h ^= signatures[:, col].astype(np.uint64)
                h *= _MUL1
                h ^= h >> np.uint64(31)
                h *= _MUL2
            out[:, band] = h ^ (h >> np.uint64(29))
    return out


def shares_band(a: np.ndarray, b: np.ndarray, bands: int, rows: int) -> bool:
    """Whether two signatures are equal in at least one band (an LSH candidate pair, as `candidate_pairs`)."""
    equal = (a[:bands * rows] == b[:bands * rows]).reshape(bands, rows)
    return bool(equal.all(axis=1).any())


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Row pairs (i < j) of `signatures` equal in at least one band (the buckets of each band, by sorting)."""
    pairs: set[tuple[int, int]] = set()
    if len(signatures) < 2:
        return pairs
    for band in range(bands):
        block = signatures[:, band * rows:(band + 1) * rows]
        _, inverse, counts = np.unique(block, axis=0, return_inverse=True, return_counts=True)
        shared = np.flatnonzero(counts > 1)
        if not len(shared):
            continue
        inverse = inverse.ravel()
        members = np.flatnonzero(np.isin(inverse, shared))
        members = members[np.argsort(inverse[members], kind="stable")]  # grouped by bucket, rows ascending
        bounds = np.flatnonzero(np.diff(inverse[members])) + 1
        for bucket in np.split(members, bounds):
            rows_ = bucket.tolist()
            for i, x in enumerate(rows_):
                for y in rows_[i + 1:]:
                    pairs.add((x, y))
    return pairs
