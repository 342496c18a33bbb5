"""`airflow dags test` of valuecorpus_generate and valuecorpus_curate end to end: a fake OpenAI-compatible server
that requires an API key (given only as an Airflow connection), the session's real Label Studio (also a
connection), the data home as an Airflow variable. Every mutating task is killed once after doing its work; the
retries duplicate no sample, Label Studio task, curated run or version, and no key reaches a log or an XCom."""

from __future__ import annotations

import json
import re
import secrets
import sys
from pathlib import Path

from airflow_harness import REPO, Airflow, DagRun, flaky
from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig
from valuecorpus_testing.label_studio import LabelStudio

from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse import list_versions, load_records

sys.path.insert(0, str(REPO / "tests" / "pipelines"))
from canned import Responder  # the pipelines tests' canned answers

SKIPPED_AFTER_SELECT = {"select": "skipped", "adjudicate": "skipped", "finalize": "skipped", "validate": "skipped",
                        "publish": "skipped"}


def _connection(host: str, password: str, **extra: str) -> str:
    return json.dumps({"conn_type": "generic", "host": host, "password": password, "extra": extra})


def _review(label_studio: LabelStudio, project_id: int, verdicts: dict[str, str]) -> None:
    """Submit one review per task (sample id -> verdict) as the labeling UI shapes it."""
    client = label_studio.client
    config = client.projects.get(id=project_id).label_config
    to_name = re.search(r'<Choices name="verdict" toName="([^"]+)"', config).group(1)
    for task in client.tasks.list(project=project_id):
        result = [{"from_name": "verdict", "to_name": to_name, "type": "choices",
                   "value": {"choices": [verdicts[task.data["sample_id"]]]}}]
        client.annotations.create(id=task.id, result=result, lead_time=3.0)


def _assert_no_secret(secrets_: list[str], runs: list[DagRun], airflow: Airflow, home: Path) -> None:
    stored = airflow.stored_text()
    for secret in secrets_:
        for run in runs:
            assert secret not in run.output, f"a secret is in the output of {run.dag_id}"
            assert secret not in json.dumps(run.xcoms), f"a secret is in an XCom of {run.dag_id}"
        assert secret not in stored, "a secret is in Airflow's database or logs"
        for path in home.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"a secret is in {path}"


def test_generate_then_curate_dags_end_to_end_with_retries(airflow: Airflow, label_studio: LabelStudio,
                                                          tmp_path: Path) -> None:
    key = "sk-dagtest-" + secrets.token_hex(12)
    home = tmp_path / "home"
    with FakeServer(FakeServerConfig(responder=Responder(), model="fake-model", api_key=key)) as llm:
        env = {
            "AIRFLOW_CONN_VALUECORPUS_LLM": _connection(llm.base_url, key, model="fake-model"),
            "AIRFLOW_CONN_VALUECORPUS_LABEL_STUDIO": _connection(label_studio.url, label_studio.token),
            "AIRFLOW_VAR_VALUECORPUS_HOME": str(home),
        }
        gen = airflow.dags_test("valuecorpus_generate", {"recipe": "demo", "count": 3, "batch": "dag"},
                                {**env, **flaky(tmp_path / "flaky-gen", "generate,curate push")})
        sent = llm.stats()["by_path"].get("/v1/chat/completions", 0)
    assert gen.code == 0, gen.output[-6000:]
    assert gen.states == {"generate": "success", "quality": "success", "push": "success"}
    assert gen.tries["generate"] == 2 and gen.tries["push"] == 2, gen.tries  # each killed once, then retried

    # one run, although generate ran twice
    data = DataHome(home)
    runs = [r for r in data.list_runs() if r.exists()]
    assert [r.run_id for r in runs] == [gen.xcoms["generate"]] == [gen.xcoms["push"]]
    run = runs[0]
    manifest = run.read_manifest()
    assert sent >= manifest.model_extra["engine"]["requests"] > 0  # the key from the connection was accepted
    assert "already staged: nothing generated" in gen.output  # the retry found the run
    records = run.read_records("records/dilemma")
    assert records, "the canned answers make dilemmas"

    # one Label Studio task per sample, although push ran twice
    (project,) = json.loads((run.path / "curation" / "projects.json").read_text())["projects"]
    tasks = list(label_studio.client.tasks.list(project=project["project_id"]))
    assert sorted(t.data["sample_id"] for t in tasks) == sorted(r.id for r in records)

    # curate before anyone reviewed: nothing is ready, the rest is skipped, nothing failed
    waiting = airflow.dags_test("valuecorpus_curate", {}, env)
    assert waiting.code == 0, waiting.output[-6000:]
    assert waiting.states == {"find_runs": "success", "pull": "success", **SKIPPED_AFTER_SELECT}

    # the expert accepts all but one; curate finalizes and publishes, each of those killed once
    rejected = records[0].id
    _review(label_studio, project["project_id"], {r.id: "reject" if r.id == rejected else "accept" for r in records})
    cur = airflow.dags_test("valuecorpus_curate", {}, {**env, **flaky(tmp_path / "flaky-cur",
                                                                      "curate finalize,publish@renamed")})
    assert cur.code == 0, cur.output[-6000:]
    assert set(cur.states.values()) == {"success"}, cur.states
    assert cur.tries["finalize"] == 2 and cur.tries["publish"] == 2, cur.tries
    curated = [r for r in data.list_runs() if r.exists() and r.read_manifest().origin == "curate"]
    assert [r.run_id for r in curated] == cur.xcoms["finalize"]
    versions = list_versions(home, "demo_dilemmas")
    assert [v.version for v in versions] == [1] and cur.xcoms["publish"] == ["demo_dilemmas@v1"]
    published = load_records(home, "demo_dilemmas", 1, "dilemma")
    assert sorted(r.id for r in published) == sorted(r.id for r in records if r.id != rejected)

    # nothing left to curate: the DAG run skips everything after find_runs, and succeeds
    idle = airflow.dags_test("valuecorpus_curate", {}, env)
    assert idle.code == 0, idle.output[-6000:]
    assert idle.states == {"find_runs": "skipped", "pull": "skipped", **SKIPPED_AFTER_SELECT}
    assert [v.version for v in list_versions(home, "demo_dilemmas")] == [1]

    _assert_no_secret([key, label_studio.token], [gen, waiting, cur, idle], airflow, home)
