"""The pipeline on a real distributed runner: Beam's Dask runner against a scheduler and two workers on
127.0.0.1, the data home on a local S3-compatible store. Same recipe and seed → the same run, row for row, as
the plain loop on a local disk; a rerun of the finished job sends nothing; the run publishes and queries on
the store."""

from __future__ import annotations

from pathlib import Path

from run_content import run_content

from valuecorpus.schemas.layout import DataHome


def _chat(server) -> int:
    return server.stats()["by_path"].get("/v1/chat/completions", 0)


def test_dask_runner_with_the_home_on_object_storage_gives_the_loop_run(cli, home: Path, fake_llm, object_store,
                                                                        dask_cluster) -> None:
    common = ("dilemmas", "--n", "4", "--base-url", fake_llm.base_url, "--model", "fake-model", "--no-progress")
    loop = cli("generate", *common, "--run-id", "loop", "--executor", "loop")
    assert loop.code == 0, loop.stderr[-3000:]
    remote = object_store.url("homes", "dask")
    on_store = {"VALUECORPUS_HOME": remote}
    before = _chat(fake_llm)
    dask = cli("generate", *common, "--run-id", "dask", "--executor", "beam", "--", *dask_cluster.beam_args,
               env=on_store)
    assert dask.code == 0, dask.stderr[-3000:]
    store_home = DataHome(remote)
    layout = store_home.run("dask")
    assert [r.run_id for r in store_home.list_runs()] == ["dask"]
    expected = run_content(DataHome(home).run("loop"))
    assert len(expected["dilemma"]) >= 3
    assert run_content(layout) == expected  # ids and content, row for row
    manifest = layout.read_manifest()
    assert manifest.model_extra["executor"] == "beam" and manifest.counts["dilemma"] == len(expected["dilemma"])
    assert manifest.dead_letters == len(expected["dead"]) and manifest.filtered == len(expected["filtered"])
    sent = _chat(fake_llm)
    assert sent > before  # the workers asked the server (a fresh cache on the store)

    # the finished job again, through the Dask runner: every answer comes from the cache on the store
    again = cli("generate", *common, "--run-id", "dask-again", "--executor", "beam", "--", *dask_cluster.beam_args,
                env=on_store)
    assert again.code == 0, again.stderr[-3000:]
    assert _chat(fake_llm) == sent
    assert run_content(store_home.run("dask-again")) == expected

    # publish on the store; DuckDB reads it through an fsspec filesystem registered on its connection
    pub = cli("publish", "dask", "--dataset", "dilemmas", env=on_store)
    assert pub.code == 0, pub.stderr[-3000:]
    sql = cli("sql", "SELECT count(*) AS n FROM dilemmas", env=on_store)
    assert sql.code == 0, sql.stderr[-3000:]
    assert str(len(expected["dilemma"])) in sql.stdout
