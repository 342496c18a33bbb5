"""The lean duplicate stage (band keys per text, candidates verified on recomputed signatures) decides what the
full-signature stage decided: the same drops, reasons, matched ids and scores, within a run and against a
published version; a band-key collision never passes for a candidate."""

from __future__ import annotations

import random

import numpy as np

from valuecorpus.pipelines.filters.duplicates import (
    EXACT_REASON,
    DuplicateSettings,
    HashedTexts,
    duplicate_drops,
    hash_texts,
    near_duplicate_reason,
)
from valuecorpus.pipelines.filters.minhash import (
    candidate_pairs,
    jaccard,
    lsh_params,
    minhash_signatures,
    minhash_values,
    shares_band,
)
from valuecorpus.pipelines.filters.text import text_hash

WORDS = [f"word{i}" for i in range(400)]


def _full_signature_rule(ids: list[str], texts: list[str], published: list[tuple[str, str]], exact: bool,
                         near: tuple[float, int] | None) -> list[tuple[str, str, str, str, float | None]]:
    """The stage as it was before band keys: a full signature per published text and per distinct normalised
    text of the run, `candidate_pairs` over all of them, then the record-by-record rule in id order."""
    records = sorted(zip(ids, texts, strict=True))
    keys = [text_hash(t) for _i, t in records]
    groups = {k: t for (_i, t), k in reversed(list(zip(records, keys, strict=True)))}
    similar: dict[str, list[tuple[str, float]]] = {}
    pub_match: dict[str, list[tuple[str, float]]] = {}
    if near:
        threshold, num_perm = near
        pub_keys, pub_texts, seen = [], [], set()
        for pid, text in published:
            if f"published:{pid}" not in seen:
                seen.add(f"published:{pid}")
                pub_keys.append(f"published:{pid}")
                pub_texts.append(text)
        group_keys = list(groups)
        sigs = minhash_signatures([*pub_texts, *groups.values()], num_perm)
        n_pub = len(pub_keys)
        for i, j in candidate_pairs(sigs, *lsh_params(threshold, num_perm)):
            score = jaccard(sigs[i], sigs[j])
            if j < n_pub or score < threshold:
                continue
            gj = group_keys[j - n_pub]
            if i < n_pub:
                pub_match.setdefault(gj, []).append((pub_keys[i], score))
            else:
                gi = group_keys[i - n_pub]
                similar.setdefault(gi, []).append((gj, score))
                similar.setdefault(gj, []).append((gi, score))
    out = []
    seen_keys: dict[str, str] = {}
    kept: dict[str, list[str]] = {}
    for (rid, _text), key in zip(records, keys, strict=True):
        if exact and key in seen_keys:
            out.append((rid, "exact_duplicate", EXACT_REASON, seen_keys[key], None))
            continue
        if near:
            candidates = list(pub_match.get(key, ()))
            for other, score in [*similar.get(key, ()), (key, 1.0)]:
                candidates += [(k, score) for k in kept.get(other, ())]
            best = None
            for k, score in sorted(candidates):
                if best is None or score > best[1]:
                    best = (k, score)
            if best is not None:
                name, reason, other = near_duplicate_reason(*best)
                out.append((rid, name, reason, other, best[1]))
                continue
            kept.setdefault(key, []).append(rid)
        seen_keys.setdefault(key, rid)
    return out


def _planted(seed: int) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """A run and a published version with exact copies (case and punctuation variants), near copies (a few
    words changed) within the run and of published texts, chains of near copies, and unrelated texts."""
    rng = random.Random(seed)

    def text() -> list[str]:
        return [rng.choice(WORDS) for _ in range(rng.randint(25, 60))]

    def vary(words: list[str], k: int) -> list[str]:
        out = list(words)
        for pos in rng.sample(range(len(out)), k):
            out[pos] = rng.choice(WORDS)
        return out

    published = [(f"p{i:03d}", " ".join(text())) for i in range(60)]
    published.append(("p000", "a repeated published id keeps its first text only"))
    texts = []
    for _ in range(40):
        texts.append(" ".join(text()))
    for _pid, ptext in published[:25]:
        texts.append(" ".join(vary(ptext.split(), rng.randint(0, 6))))
    for base in list(texts[:30]):
        words = base.split()
        texts.append(base.upper() + " !")  # the same normalised text
        texts.append(" ".join(vary(words, rng.randint(1, 8))))
        texts.append(" ".join(vary(vary(words, 3), rng.randint(1, 8))))
    ids = [f"r{rng.randrange(10**6):06d}" for _ in texts]
    return ids, texts, published


def _lean(ids: list[str], texts: list[str], published: list[tuple[str, str]], exact: bool,
          near: tuple[float, int] | None, chunk: int = 37) -> list[tuple[str, str, str, str, float | None]]:
    settings = DuplicateSettings(exact, near)
    run = hash_texts(settings, [(ids[i:i + chunk], texts[i:i + chunk]) for i in range(0, len(ids), chunk)])
    pub = hash_texts(settings, [([p for p, _t in published], [t for _p, t in published])], exact_keys=False)
    return [(ids[d.position], d.filter, d.reason, d.matched, d.score) for d in duplicate_drops(run, pub)]


def test_the_lean_stage_decides_what_full_signatures_decided() -> None:
    for seed, exact, near in [(1, True, (0.5, 128)), (2, False, (0.6, 64)), (3, True, (0.8, 128)),
                              (4, True, None), (5, False, (0.3, 128))]:
        ids, texts, published = _planted(seed)
        expected = _full_signature_rule(ids, texts, published, exact, near)
        found = _lean(ids, texts, published, exact, near)
        assert found == expected, (seed, exact, near)
        kinds = {f for _i, f, *_ in expected}
        assert "exact_duplicate" in kinds or not exact  # the planted duplicates are found at all
        if near:
            assert any("published version" in r for _i, _f, r, *_ in expected)
            assert any("in this run" in r for _i, _f, r, *_ in expected)


def test_a_band_key_collision_is_verified_away() -> None:
    """Two texts above the threshold that share no band are no LSH candidates (kept, as before); giving one
    the other's band keys (a collision of every key) does not make them a pair."""
    threshold, num_perm = 0.5, 128
    bands, rows = lsh_params(threshold, num_perm)
    rng = random.Random(7)
    pair = None
    for _ in range(2000):
        words = [rng.choice(WORDS) for _ in range(50)]
        other = list(words)
        for pos in rng.sample(range(50), 6):
            other[pos] = rng.choice(WORDS)
        a, b = minhash_values(" ".join(words), num_perm), minhash_values(" ".join(other), num_perm)
        if jaccard(a, b) >= threshold and not shares_band(a, b, bands, rows):
            pair = (" ".join(words), " ".join(other))
            break
    assert pair is not None
    settings = DuplicateSettings(True, (threshold, num_perm))
    assert _lean(["a", "b"], list(pair), [], True, (threshold, num_perm)) == []
    run = hash_texts(settings, [(["a", "b"], list(pair))])
    run.bands = [np.repeat(run.band_keys()[:1], 2, axis=0)]  # b collides with a in every band key
    assert duplicate_drops(run, None) == []
    published = HashedTexts(settings, exact_keys=False)
    published.add(["p"], [pair[0]])
    forced = hash_texts(settings, [(["b"], [pair[1]])])
    forced.bands = [published.band_keys().copy()]
    assert duplicate_drops(forced, published) == []
