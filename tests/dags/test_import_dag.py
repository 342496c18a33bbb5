"""`airflow dags test valuecorpus_import`: a reference corpus staged, validated and published, with the stage and
publish tasks killed once each (publish in the middle of publishing): the retries leave one run and one version."""

from __future__ import annotations

from pathlib import Path

from airflow_harness import Airflow, flaky

from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse import list_versions, version_info
from valuecorpus.warehouse.publishing import TMP_PREFIX


def test_import_dag_publishes_once_although_its_tasks_were_killed(airflow: Airflow, tmp_path: Path,
                                                                  reference_data: Path) -> None:
    home = tmp_path / "home"
    env = {"AIRFLOW_VAR_VALUECORPUS_HOME": str(home),
           **flaky(tmp_path / "flaky", "import,publish@data-copied,publish@renamed")}
    conf = {"kind": "dailydilemmas", "path": str(reference_data / "daily_dilemmas"), "dataset": "daily"}
    run = airflow.dags_test("valuecorpus_import", conf, env)
    assert run.code == 0, run.output[-5000:]
    assert run.states == {"stage": "success", "validate": "success", "publish": "success"}
    # stage: killed after staging, then retried; publish: killed mid-publish, then after publishing, then retried
    assert run.tries["stage"] == 2 and run.tries["publish"] == 3, run.tries
    assert "killed before reporting success" in run.output and "will be killed at step data-copied" in run.output

    runs = [layout for layout in DataHome(home).list_runs() if layout.exists()]
    assert [r.run_id for r in runs] == [run.xcoms["stage"]]  # one run, although the import ran twice
    versions = list_versions(home, "daily")
    assert [v.version for v in versions] == [1]  # one version, although publish ran three times
    assert run.xcoms["publish"] == "daily@v1"
    staged = runs[0].read_manifest()
    assert versions[0].manifest.row_counts == staged.counts
    assert versions[0].manifest.lineage["runs"][0]["run_id"] == staged.run_id
    # XComs carry run ids and version names, never data
    assert all(isinstance(v, str) and len(v) < 200 for v in run.xcoms.values()), run.xcoms
    # the publish killed mid-way left a temp dir; the next publish cleaned it up
    assert not [p for p in (home / "warehouse" / "daily").iterdir() if p.name.startswith(TMP_PREFIX)]
    version_info(home, "daily", 1)  # the version reads

