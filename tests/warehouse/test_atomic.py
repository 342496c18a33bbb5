"""Publishing is atomic: a process killed at any moment leaves the complete version or none, readers never see
a partial one, and concurrent publishers get distinct version numbers."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from wh_staging import stage_run, tree_bytes

from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import Dilemma
from valuecorpus.warehouse import PUBLISH_STEPS, list_versions, publish, verify_version, version_numbers
from valuecorpus.warehouse.catalog import query
from valuecorpus.warehouse.publishing import TMP_PREFIX

PUBLISHER = Path(__file__).with_name("wh_publisher.py")


def _assert_only_complete_versions(home: Path, dataset: str) -> list[int]:
    numbers = version_numbers(home, dataset)
    for n in numbers:
        assert verify_version(home, dataset, n) == [], f"v{n} does not verify"
    ddir = DataHome(home).dataset_dir(dataset)
    if ddir.exists():  # nothing but complete versions, temp dirs, the lock file and the suite file
        for path in ddir.iterdir():
            known = {f"v{n}" for n in numbers} | {".publish.lock", "suite.yaml"}
            assert path.name in known or path.name.startswith(TMP_PREFIX)
    return numbers


def test_crash_at_every_step_leaves_the_version_or_nothing(home: Path, dilemma_run: str, cli) -> None:
    publish(home, dilemma_run, "dilemmas")
    v1 = tree_bytes(DataHome(home).version_dir("dilemmas", 1))
    expected = [1]
    ddir = DataHome(home).dataset_dir("dilemmas")
    for step in PUBLISH_STEPS:
        result = cli("publish", dilemma_run, "--dataset", "dilemmas", env={"VALUECORPUS_TEST_CRASH_AT": step})
        assert result.code == 137, (step, result.stderr)
        if PUBLISH_STEPS.index(step) >= PUBLISH_STEPS.index("renamed"):
            expected.append(expected[-1] + 1)  # killed after the rename: the version is there, complete
        assert _assert_only_complete_versions(home, "dilemmas") == expected, step
        assert query(home, "SELECT count(*) AS n FROM dilemmas").column("n").to_pylist() == [1360]
        # Killed between making the temp dir and the rename: its temp dir is left (the previous one was
        # cleaned up by this publish, its owner being dead).
        left = list(ddir.glob(f"{TMP_PREFIX}*"))
        assert len(left) == (1 if step in PUBLISH_STEPS[1:7] else 0), step
    ok = cli("publish", dilemma_run, "--dataset", "dilemmas")
    assert ok.code == 0 and f"published dilemmas v{expected[-1] + 1}: dilemma=1360" in ok.stdout
    assert not list(ddir.glob(f"{TMP_PREFIX}*")), "the next publish cleans up after dead publishers"
    assert tree_bytes(DataHome(home).version_dir("dilemmas", 1)) == v1


def _start_publisher(home: Path, run: str, dataset: str, go: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(PUBLISHER), str(home), run, dataset, str(go)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_random_sigkill_during_publish(home: Path, dilemma_run: str, tmp_path: Path) -> None:
    # How long a publish takes in a publisher process: the kills land at random moments inside that window.
    proc = _start_publisher(home, dilemma_run, "dilemmas", tmp_path / "go")
    (tmp_path / "go").touch()
    window = float(proc.communicate(timeout=600)[0].split()[1])
    rng = random.Random(20261127)
    outcomes = {"complete": 0, "none": 0}
    for i in range(12):
        before = version_numbers(home, "dilemmas")
        go = tmp_path / f"go-{i}"
        proc = _start_publisher(home, dilemma_run, "dilemmas", go)
        go.touch()
        time.sleep(rng.uniform(0, window * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = _assert_only_complete_versions(home, "dilemmas")
        assert after in (before, [*before, before[-1] + 1])
        outcomes["complete" if after != before else "none"] += 1
    print("sigkill outcomes", outcomes)
    assert sum(outcomes.values()) == 12
    assert [v.version for v in list_versions(home, "dilemmas")] == version_numbers(home, "dilemmas")


def test_concurrent_publishers_get_distinct_versions(home: Path, dilemmas: list[Dilemma],
                                                     tmp_path: Path) -> None:
    # 100..103 rows, to tell the versions apart
    runs = {f"run-{i}": dilemmas[i * 100:(i + 1) * 100 + i] for i in range(4)}
    for run_id, records in runs.items():
        stage_run(home, run_id, {"dilemma": records})
    go = tmp_path / "go"
    procs = [_start_publisher(home, run_id, "dilemmas", go) for run_id in runs]

    seen_by_reader: set[int] = set()
    reader_problems: list[str] = []
    stop = threading.Event()

    def reader() -> None:  # a reader during the publishes sees only complete versions
        while not stop.is_set():
            for n in version_numbers(home, "dilemmas"):
                seen_by_reader.add(n)
                reader_problems.extend(verify_version(home, "dilemmas", n))

    thread = threading.Thread(target=reader)
    thread.start()
    go.touch()
    reported = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0
        reported.append(int(out.split()[0]))
    stop.set()
    thread.join()

    assert sorted(reported) == [1, 2, 3, 4]
    versions = list_versions(home, "dilemmas")
    assert [v.version for v in versions] == [1, 2, 3, 4]
    by_run = {v.manifest.lineage["runs"][0]["run_id"]: v.manifest.row_counts["dilemma"] for v in versions}
    assert by_run == {run_id: len(records) for run_id, records in runs.items()}
    assert all(verify_version(home, "dilemmas", n) == [] for n in (1, 2, 3, 4))
    assert seen_by_reader <= {1, 2, 3, 4} and reader_problems == []


def test_concurrent_cli_publishers(home: Path, dilemma_run: str) -> None:
    command = [sys.executable, "-m", "valuecorpus", "publish", dilemma_run, "--dataset", "dd"]
    procs = [subprocess.Popen(command,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    published = [line.split(":")[0] for out in outputs for line in out.splitlines() if line.startswith("pub")]
    assert sorted(published) == ["published dd v1", "published dd v2", "published dd v3"]
    assert _assert_only_complete_versions(home, "dd") == [1, 2, 3]
