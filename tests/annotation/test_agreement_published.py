"""Agreement statistics against published worked examples."""

from __future__ import annotations

import math

from valuecorpus.annotation.agreement import cohen_kappa, field_agreement, fleiss_kappa, krippendorff_alpha

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
