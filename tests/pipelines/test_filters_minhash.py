"""The shared MinHash signature: its estimated Jaccard tracks the true Jaccard of the shingle sets, a batch gives
each text the signature it gets alone, and LSH banding finds exactly the candidates datasketch's `MinHashLSH`
finds with the same b and r."""

from __future__ import annotations

import random
import statistics

import numpy as np
from datasketch import MinHash, MinHashLSH

from valuecorpus.pipelines.filters.minhash import (
    KNOWN_LSH_PARAMS,
    candidate_pairs,
    jaccard,
    lsh_params,
    minhash_signatures,
    minhash_values,
)
from valuecorpus.pipelines.filters.text import shingles

WORDS = [f"w{i}" for i in range(300)]


def _pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Text pairs over the whole range of overlap: the second text replaces a random share of the first's words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        base = [rng.choice(WORDS) for _ in range(rng.randint(20, 80))]
        other = list(base)
        for k in rng.sample(range(len(other)), int(len(other) * rng.random())):
            other[k] = rng.choice(WORDS)
        out.append((" ".join(base), " ".join(other)))
    return out


def _true_jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_estimated_jaccard_tracks_the_true_jaccard() -> None:
    pairs = _pairs(400, seed=11)
    num_perm = 128
    sigs = minhash_signatures([t for pair in pairs for t in pair], num_perm)
    errors = [jaccard(sigs[2 * i], sigs[2 * i + 1]) - _true_jaccard(a, b) for i, (a, b) in enumerate(pairs)]
    # one estimate's standard error is at most 0.5 / sqrt(128) ≈ 0.044: no bias, and no estimate beyond 5 of them
    assert abs(statistics.fmean(errors)) < 0.01
    assert statistics.fmean(abs(e) for e in errors) < 0.04
    assert max(abs(e) for e in errors) < 0.22
    assert [jaccard(sigs[2 * i], sigs[2 * i]) for i in range(5)] == [1.0] * 5


def test_a_batch_gives_each_text_its_own_signature() -> None:
    texts = [t for pair in _pairs(50, seed=2) for t in pair] + ["", "?!", "one two"]
    batch = minhash_signatures(texts, 64)
    assert batch.shape == (len(texts), 64)
    for i, text in enumerate(texts):
        assert np.array_equal(batch[i], minhash_values(text, 64))
    assert np.array_equal(minhash_values("A, b  C d!", 64), minhash_values("a b c D", 64))  # normalised text


def test_banding_finds_what_datasketch_lsh_finds() -> None:
    threshold, num_perm = 0.5, 128
    texts = [t for pair in _pairs(150, seed=5) for t in pair]
    sigs = minhash_signatures(texts, num_perm)
    bands, rows = lsh_params(threshold, num_perm)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert (lsh.b, lsh.r) == (bands, rows)
    hashes = [MinHash(num_perm=num_perm, hashvalues=s, scheme="affine32") for s in sigs]
    for i, mh in enumerate(hashes):
        lsh.insert(i, mh)
    expected = {(min(i, j), max(i, j)) for i, mh in enumerate(hashes) for j in lsh.query(mh) if j != i}
    found = candidate_pairs(sigs, bands, rows)
    assert found == expected
    assert len(found) >= 20  # the input has candidates to find


def test_the_known_lsh_parameters_are_datasketchs() -> None:
    """The table that spares a run datasketch's import gives what `MinHashLSH` derives, and a setting outside
    it is derived by datasketch."""
    for (threshold, num_perm), params in KNOWN_LSH_PARAMS.items():
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert (lsh.b, lsh.r) == params, (threshold, num_perm)
    lsh = MinHashLSH(threshold=0.42, num_perm=96)
    assert lsh_params(0.42, 96) == (lsh.b, lsh.r)


def test_the_hashed_shingles_are_the_shingle_set() -> None:
    import xxhash

    from valuecorpus.pipelines.filters.minhash import shingle_hashes

    for text in ["Hello, big wide World! Hello big wide world", "两难问题关于诚实", "one two", "one", "", "?!"]:
        expected = {xxhash.xxh3_64_intdigest(s.encode("utf-8")) & 0xFFFFFFFF for s in shingles(text)}
        assert set(shingle_hashes(text).tolist()) == expected
