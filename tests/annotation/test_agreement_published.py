"""Agreement statistics against published worked examples."""

from __future__ import annotations

import math

from valuecorpus.annotation.agreement import (
    _set_distance,
    cohen_kappa,
    field_agreement,
    fleiss_kappa,
    krippendorff_alpha,
    set_alpha,
    set_field_agreement,
)

# Fleiss (1971) as tabulated on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters each,
# 5 categories; the table gives how many raters put each subject in each category. Published κ = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers, 12 units, missing
# values (None). Published: nominal α = 0.743, ordinal α = 0.815, interval α = 0.849.
KRIPPENDORFF = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def _kripp_ratings() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for observer, values in KRIPPENDORFF.items():
        for unit, value in enumerate(values):
            if value is not None:
                out.setdefault(f"u{unit:02d}", {})[observer] = value
    return out


def test_fleiss_kappa_matches_fleiss_1971_worked_example() -> None:
    items = [[cat for cat, n in enumerate(row) for _ in range(n)] for row in FLEISS_TABLE]
    assert round(fleiss_kappa(items), 3) == 0.210


def test_cohen_kappa_matches_textbook_example() -> None:
    # Two readers, 50 proposals: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> po .70, pe .50, κ = 0.40
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert math.isclose(cohen_kappa(pairs), 0.4, abs_tol=1e-9)


def test_krippendorff_alpha_matches_published_example_with_missing_values() -> None:
    ratings = _kripp_ratings()
    assert round(krippendorff_alpha(ratings, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(ratings, "ordinal"), 3) == 0.815
    assert round(krippendorff_alpha(ratings, "interval"), 3) == 0.849


def test_field_agreement_reports_what_applies() -> None:
    ratings = _kripp_ratings()
    stats = field_agreement(ratings, "nominal")
    assert stats["annotators"] == 4 and stats["cohen_kappa"] is None  # Cohen's κ is for two annotators
    assert round(stats["krippendorff_alpha"], 3) == 0.743
    # Fleiss uses the units with the most common number of ratings (here 4 ratings: units 2-9, 8 of them)
    assert stats["fleiss_items"] == 8 and stats["fleiss_kappa"] is not None
    two = {f"i{i}": {"x": a, "y": b} for i, (a, b) in enumerate([("yes", "yes")] * 20 + [("yes", "no")] * 5
                                                                  + [("no", "yes")] * 10 + [("no", "no")] * 15)}
    assert field_agreement(two)["cohen_kappa"] == 0.4


def test_undefined_statistics_are_none_not_errors() -> None:
    assert krippendorff_alpha({"i1": {"a": "x"}}, "nominal") is None  # nothing rated twice
    assert krippendorff_alpha({"i1": {"a": "x", "b": "x"}}, "nominal") is None  # one value only
    assert fleiss_kappa([["a", "b"], ["a"]]) is None  # unequal rating counts
    assert cohen_kappa([]) is None


# Set-valued labels. MASI (Passonneau 2006, "Measuring Agreement on Set-valued Items"): distance
# 1 - J * M, with J the Jaccard coefficient and M = 1 (same sets), 2/3 (one a subset of the other), 1/3 (some
# overlap), 0 (disjoint); Passonneau rounds M to 0.67 / 0.33. NLTK's documented examples (nltk/test/metrics.doctest):
# {1,2,3,4} vs {3,4,5}: Jaccard distance 0.6, MASI distance 0.868 (with M = 0.33).


def test_set_distances_match_passonneau_and_the_nltk_examples() -> None:
    masi, jaccard = _set_distance("masi"), _set_distance("jaccard")
    a, b = frozenset({"1", "2", "3", "4"}), frozenset({"3", "4", "5"})
    assert math.isclose(jaccard(a, b), 0.6)
    assert abs(masi(a, b) - 0.868) < 0.002  # 1 - 0.4 / 3 = 0.8667; Passonneau's rounded M gives 0.868
    assert abs(masi(frozenset({"1", "2"}), a) - 0.665) < 0.002  # subset: 1 - 0.5 * 2/3 (0.665 with M = 0.67)
    assert masi(a, a) == 0 and masi(frozenset({"1"}), frozenset({"2"})) == 1
    assert masi(frozenset(), frozenset()) == 0 and masi(frozenset(), a) == 1


def test_set_alpha_on_single_labels_is_krippendorffs_nominal_alpha() -> None:
    # With one label per set every set distance is the nominal one: Krippendorff's (2011) reliability data with
    # missing values must give his published nominal α = 0.743, through the set-valued path.
    sets = {item: {who: [str(v)] for who, v in per.items()} for item, per in _kripp_ratings().items()}
    assert round(set_alpha(sets, "masi"), 3) == 0.743
    assert round(set_alpha(sets, "jaccard"), 3) == 0.743


def test_partial_overlap_is_partial_agreement() -> None:
    # the walk in issue 15: annotators mostly agree value by value, never on the exact set
    ratings = {f"i{i}": {"a": [f"v{i}", f"w{i}", "x"], "b": [f"v{i}", f"w{i}", "y"]} for i in range(6)}
    exact = krippendorff_alpha({i: {w: "|".join(v) for w, v in r.items()} for i, r in ratings.items()})
    masi = set_alpha(ratings, "masi")
    assert exact is not None and exact <= 0 and masi is not None and masi > 0
    per_value = set_field_agreement(ratings)
    assert per_value["value_labels [per value] v0"]["krippendorff_alpha"] == 1.0


def test_per_value_kappa_matches_the_cohen_textbook_example() -> None:
    # the 50-proposal example above, read as "value v chosen or not": Cohen's κ = 0.40 for v
    pairs = [(True, True)] * 20 + [(True, False)] * 5 + [(False, True)] * 10 + [(False, False)] * 15
    ratings = {f"i{i}": {"x": ["v"] if a else ["w"], "y": ["v"] if b else ["w"]} for i, (a, b) in enumerate(pairs)}
    stats = set_field_agreement(ratings)
    assert stats["value_labels [per value] v"]["cohen_kappa"] == 0.4
    assert stats["value_labels [per value] v"]["level"] == "per value: chosen or not"
    assert stats["value_labels [set, MASI]"]["level"] == "set, MASI distance"
    assert stats["value_labels [set, Jaccard]"]["krippendorff_alpha"] is not None
