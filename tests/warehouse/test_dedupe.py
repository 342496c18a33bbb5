"""Texts of stored records read by column are `text_of` over the full records, for every chain kind with texts;
`valuecorpus dedupe` makes the duplicate decision `apply_filters` makes on the same records and published
texts, and stages it as a new run (old filtered rows kept, the source and the version named)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from wh_kinds import stage_every_kind
from wh_staging import stage_run

from valuecorpus.pipelines.chains import CHAINS, chain_class
from valuecorpus.pipelines.filters import apply_filters
from valuecorpus.pipelines.filters.stored_texts import stored_texts
from valuecorpus.pipelines.recipes import parse_recipe
from valuecorpus.schemas.arrow import read_records, write_records
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma
from valuecorpus.schemas.run_tables import DeadLetter, FilteredSample
from valuecorpus.warehouse import publish
from valuecorpus.warehouse.versions import kind_files, version_info


def _recipe(kind: str, **filters: object) -> object:
    return parse_recipe({"kind": kind, "count": 1, "output": {"dataset": "dd"}, "filters": filters}, "t.yaml")


def test_texts_read_by_column_are_text_of_the_records(home: Path, reference_data: Path) -> None:
    stage_every_kind(home, reference_data)
    layout = DataHome(home).run("every-kind")
    checked = set()
    for name in CHAINS:
        cls = chain_class(name)
        if not cls.text_fields:
            continue
        chain = cls(_recipe(name, near_duplicate={"enabled": False}, exact_duplicate=False), None)
        for kind in cls.record_kinds:
            for path in layout.table_files(f"records/{kind}"):
                full = [(r.id, t) for r in read_records(path) if (t := chain.text_of(r))]
                assert list(stored_texts(chain, [str(path)])) == full, (name, kind)
                if full:
                    checked.add(name)
    assert checked == {n for n in CHAINS if chain_class(n).text_fields}, checked  # every kind had texts


def _variant(text: str, k: int) -> str:
    words = text.split()
    for pos in range(2, len(words), max(1, len(words) // k)):
        words[pos] = "quite"
    return " ".join(words)


def test_dedupe_makes_the_duplicate_decision_of_apply_filters(cli, home: Path, dilemmas: list[Dilemma],
                                                              dilemma_run: str) -> None:
    publish(home, dilemma_run, "dd")
    info = version_info(home, "dd")
    published_records = [r for p in kind_files(info, "dilemma") for r in read_records(p)]
    # a run generated before v1 was published: copies of published situations (exact and varied), copies
    # within the run, and new ones
    base = [d for d in dilemmas if len(d.dilemma_situation.split()) > 20]
    rows = []
    for i, d in enumerate(base[:6]):
        rows.append(d.model_copy(update={"id": f"a{i}", "dilemma_situation": _variant(d.dilemma_situation, 2)}))
    rows.append(base[6].model_copy(update={"id": "b0"}))  # the published text itself
    for i, d in enumerate(base[-8:]):
        new = " ".join(reversed(d.dilemma_situation.split()))
        rows.append(d.model_copy(update={"id": f"c{i}", "dilemma_situation": new}))
        rows.append(d.model_copy(update={"id": f"d{i}", "dilemma_situation": new.upper() + "!"}))
        rows.append(d.model_copy(update={"id": f"e{i}", "dilemma_situation": _variant(new, 3)}))
    filters = {"near_duplicate": {"threshold": 0.5}, "language": {"enabled": False}, "leakage": False,
               "echo": {"enabled": False}, "length": {"min_chars": 1, "max_chars": 100000},
               "schema_validity": False, "demographics": False}
    recipe = _recipe("dilemmas", **filters)
    stage_run(home, "second", {"dilemma": rows}, origin="generate", recipe=recipe.model_dump(mode="json"),
              filtered=1)
    layout = DataHome(home).run("second")
    old = FilteredSample(sample_id="zz", kind="dilemma", filter="length", reason="3 characters (bounds 20-400)")
    write_records(layout.filtered, [old], FilteredSample)
    write_records(layout.dead_letters, [], DeadLetter)

    res = cli("dedupe", "second", "--as", "second-d")
    assert res.code == 0, res.stderr
    assert "against dd@v1" in res.stdout

    chain = chain_class("dilemmas")(recipe, None)
    expected = apply_filters(chain, rows, [(r.id, chain.text_of(r)) for r in published_records], {})
    out = DataHome(home).run("second-d")
    kept = pq.read_table(out.records("dilemma")).column("id").to_pylist()
    assert sorted(kept) == sorted(r.id for r in expected.kept)
    new = [f for f in read_records(out.filtered, FilteredSample) if f.sample_id != "zz"]
    assert sorted(new, key=lambda f: f.sample_id) == sorted(expected.filtered, key=lambda f: f.sample_id)
    kinds = {(f.filter, "published" in f.reason) for f in new}
    assert {("exact_duplicate", False), ("near_duplicate", True), ("near_duplicate", False)} <= kinds
    assert old in read_records(out.filtered, FilteredSample)  # the run's own filtered rows stay
    assert out.dead_letters.read_bytes() == layout.dead_letters.read_bytes()  # copied as it is
    m = out.read_manifest()
    assert m.counts == {"dilemma": len(kept)} and m.filtered == len(new) + 1
    assert m.parent_runs == ["second"]
    assert m.model_extra["deduped"]["against"] == "dd@v1"
    assert m.model_extra["deduped"]["dropped"] == len(new)

    # a run already in the latest version: every record would match itself
    publish(home, "second-d", "dd")
    res = cli("dedupe", "second-d")
    assert res.code != 0 and res.stderr.startswith("error:") and "already published in dd@v2" in res.stderr


def test_dedupe_errors_and_a_dataset_without_versions(cli, home: Path, dilemmas: list[Dilemma],
                                                      dilemma_run: str) -> None:
    res = cli("dedupe", "no-such-run")
    assert res.code != 0 and res.stderr.startswith("error:") and "no-such-run" in res.stderr
    res = cli("dedupe", dilemma_run)  # an import: no recipe to take the filters from
    assert res.code != 0 and res.stderr.startswith("error:") and "no recipe" in res.stderr
    rows = [d.model_copy(update={"id": f"x{i}"}) for i, d in enumerate(dilemmas[:5])] * 1
    rows.append(dilemmas[0].model_copy(update={"id": "y0"}))
    stage_run(home, "gen", {"dilemma": rows}, origin="generate", recipe=_recipe("dilemmas").model_dump(mode="json"))
    res = cli("dedupe", "gen", "--dataset", "nothing_here", "--as", "gen-d")
    assert res.code == 0, res.stderr
    assert "no published version" in res.stderr
    filtered = read_records(DataHome(home).run("gen-d").filtered, FilteredSample)
    assert [(f.sample_id, f.filter, f.matched_id) for f in filtered] == [("y0", "exact_duplicate", "x0")]
    assert DataHome(home).run("gen-d").read_manifest().model_extra["deduped"]["against"] is None
    res = cli("dedupe", "gen", "--as", "gen-d")
    assert res.code != 0 and "already exists" in res.stderr
