"""The warehouse on an S3-compatible store (moto's server on 127.0.0.1): no rename there, so a version becomes
visible when its manifest is written, last; a number is claimed with a conditional write, so two publishers
never take the same one, and a publisher killed at any step leaves nothing a reader sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wh_staging import THEORIES, stage_run, with_value_labels

from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma
from valuecorpus.warehouse import PUBLISH_STEPS, verify_version, version_numbers
from valuecorpus.warehouse.catalog import query

PUBLISHER = Path(__file__).with_name("wh_publisher.py")


def test_publish_on_the_store_is_all_or_nothing_at_every_step(object_store, dilemmas: list[Dilemma],
                                                               cli) -> None:
    home = object_store.url("homes", "crash")
    records = with_value_labels(dilemmas[:300])
    stage_run(home, "import-dd", {"dilemma": records})
    env = {"VALUECORPUS_HOME": home}
    visible = 0
    numbers: list[int] = []
    for step in PUBLISH_STEPS:
        res = cli("publish", "import-dd", "--dataset", "dilemmas", env={**env, "VALUECORPUS_TEST_CRASH_AT": step})
        assert res.code == 137, (step, res.stderr[-2000:])
        visible += PUBLISH_STEPS.index(step) >= PUBLISH_STEPS.index("manifest-written")
        numbers = version_numbers(home, "dilemmas")
        assert len(numbers) == visible, step  # killed before the manifest: nothing a reader sees
        for n in numbers:
            assert verify_version(home, "dilemmas", n) == [], (step, n)
    ok = cli("publish", "import-dd", "--dataset", "dilemmas", env=env)
    assert ok.code == 0, ok.stderr[-2000:]
    final = version_numbers(home, "dilemmas")
    assert final[:-1] == numbers and final[-1] > max(numbers)  # a killed publisher's number is never reused
    assert f"published dilemmas v{final[-1]}: dilemma=300" in ok.stdout
    table = query(home, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM dilemmas")
    assert table.to_pylist() == [{"n": 300, "ids": 300}]
    # the flat value-label companion travels to the store with the version (verified above with the rest)
    labels = sum(getattr(v, t) is not None for d in records for a in d.actions for v in a.values
                 for t in ("name", *THEORIES))
    assert query(home, "SELECT count(*) AS n FROM dilemmas__values").to_pylist() == [{"n": labels}]
    listed = cli("versions", "dilemmas", env=env)
    assert listed.code == 0 and f"v{final[-1]}" in listed.stdout


def test_concurrent_publishers_on_the_store_get_distinct_numbers(object_store, dilemmas: list[Dilemma],
                                                                tmp_path: Path) -> None:
    home = object_store.url("homes", "race")
    stage_run(home, "import-dd", {"dilemma": dilemmas[:50]})
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(PUBLISHER), home, "import-dd", "dilemmas", str(go)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    numbers = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        numbers.append(int(out.split()[0]))
    assert sorted(numbers) == [1, 2, 3, 4]
    assert version_numbers(home, "dilemmas") == [1, 2, 3, 4]
    assert all(verify_version(home, "dilemmas", n) == [] for n in numbers)


def test_runs_on_the_store_appear_with_their_manifest(object_store, dilemmas: list[Dilemma]) -> None:
    home = DataHome(object_store.url("homes", "runs"))
    layout = home.run("half")
    from valuecorpus.schemas.arrow import write_records

    write_records(layout.records("dilemma"), dilemmas[:5])  # a run being written (or killed): no manifest
    assert home.list_runs() == []
    stage_run(home.url, "whole", {"dilemma": dilemmas[:5]})
    assert [r.run_id for r in home.list_runs()] == ["whole"]
    assert len(home.run("whole").read_records("records/dilemma")) == 5
