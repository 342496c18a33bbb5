"""Utility Engineering implicit lotteries (`expected_utility_implicit/.../options.json`): base options with
probability-weighted sub-options import as lottery outcomes, beside plain outcome sets in one folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from valuecorpus.schemas.errors import InputFileError
from valuecorpus.schemas.importers import import_path

LOTTERIES = {"base_options": [
    {"option": "A team from the league wins the cup", "sub_options": [
        {"option": "The first team wins the cup", "probability": 0.5},
        {"option": "The second team wins the cup", "probability": 0.3},
        {"option": "The third team wins the cup", "probability": 0.2}]},
    {"option": "A new park opens in the city by 2030", "sub_options": [
        {"option": "A park opens by the river by 2030", "probability": 0.25},
        {"option": "A park opens on the old rail yard by 2030", "probability": 0.75}]},
]}


def _experiment(tmp_path: Path, reference_data: Path, lotteries: dict) -> Path:
    root = tmp_path / "utility_analysis"
    folder = root / "experiments" / "expected_utility_implicit" / "implicit_lotteries"
    folder.mkdir(parents=True)
    (folder / "options.json").write_text(json.dumps(lotteries), "utf-8")
    shared = root / "shared_options"
    shared.mkdir()
    shutil.copy(reference_data / "emergent_values" / "options_hierarchical.json", shared)
    return root


def test_lotteries_import_beside_an_outcome_set(tmp_path: Path, reference_data: Path) -> None:
    result = import_path("emergent_values", _experiment(tmp_path, reference_data, LOTTERIES))
    outcomes = result.records["outcome"]
    lottery_set = [o for o in outcomes if o.outcome_set == "options"]
    plain = [o for o in outcomes if o.outcome_set == "options_hierarchical"]
    assert len(plain) == 510 and len(result.source_files) == 2
    assert len(lottery_set) == 2 + 5
    by_id = {o.id: o for o in outcomes}
    bases = [o for o in lottery_set if o.category == "lottery"]
    assert [b.description for b in bases] == [b["option"] for b in LOTTERIES["base_options"]]
    for base, src in zip(bases, LOTTERIES["base_options"], strict=True):
        assert [(br.description, br.probability) for br in base.lottery] == [
            (s["option"], s["probability"]) for s in src["sub_options"]]
        for branch in base.lottery:  # each branch is an outcome of its own, referenced by id
            sub = by_id[branch.outcome_id]
            assert (sub.category, sub.description, sub.lottery) == ("lottery_branch", branch.description, [])
        assert sum(b.probability for b in base.lottery) == pytest.approx(1.0)
    assert [o.index for o in lottery_set] == list(range(7))


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["base_options"][1]["sub_options"][0].update(probability=1.5),
     r"base_options\[1\]\.sub_options\[0\]\.probability"),
    (lambda d: d["base_options"][0]["sub_options"].pop(), r"base_options\[0\]\.sub_options: the probabilities sum"),
    (lambda d: d["base_options"][0].pop("sub_options"), r"base_options\[0\]: missing key"),
])
def test_bad_lotteries_name_the_row(tmp_path: Path, reference_data: Path, change, where: str) -> None:
    data = json.loads(json.dumps(LOTTERIES))
    change(data)
    with pytest.raises(InputFileError, match=where):
        import_path("emergent_values", _experiment(tmp_path, reference_data, data))


def test_lottery_folder_stages_through_the_cli(tmp_path: Path, reference_data: Path, cli) -> None:
    root = _experiment(tmp_path, reference_data, LOTTERIES)
    res = cli("import", "emergent_values", str(root), "--run-id", "lotteries")
    assert res.code == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "lotteries" and "517" in res.stdout
