"""Import of every Agent-ValueBench reference file: spec only, non-executable until tools carry effects, the
source's key order kept through Parquet, cross-file problems reported as one warning line each (exit 0)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from valuecorpus.schemas.arrow import read_records
from valuecorpus.schemas.importers.agent_valuebench import import_path
from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.records import AgentCase, AgentEnvironment, Rubric

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "pipelines" / "chains" / "data" / "agent_environments"


@pytest.fixture(scope="module")
def avb() -> Path:
    root = Path(os.environ.get("VALUECORPUS_REFERENCE_DATA", REPO.parent / "shared" / "reference-data"))
    path = (root / "agent_valuebench").resolve()
    assert path.is_dir(), f"Agent-ValueBench reference data expected at {path}"
    return path


def source_files(avb: Path) -> dict[str, list[Path]]:
    files = sorted(p for p in avb.rglob("*.json") if p.name != "value_systems.json")
    return {kind: [p for p in files if p.parent.name == folder]
            for kind, folder in (("environment", "environment"), ("case", "case"), ("rubric", "rubric"),
                                 ("choice", "llm_choice"))}


def test_every_reference_file_imports(avb: Path) -> None:
    files = source_files(avb)
    result = import_path(avb)
    assert len(result.source_files) == sum(len(v) for v in files.values())
    envs = result.records["agent_environment"]
    cases = result.records["agent_case"]
    assert len(envs) == len(files["environment"]) and len(result.records["rubric"]) == len(files["rubric"])
    assert len(cases) == len(files["case"]) + len(files["choice"])
    assert all(isinstance(e, AgentEnvironment) and not e.executable for e in envs)  # spec only: no effects
    assert result.warnings == []  # every case's environment is there, its functions are its tools
    for path in files["environment"]:
        source = json.loads(path.read_text("utf-8"))
        env = next(e for e in envs if e.env_name == source["env_name"])
        assert [t.name for t in env.tools] == [t["name"] for t in source["tools"]]
    for path in files["choice"]:
        source = json.loads(path.read_text("utf-8"))
        case = next(c for c in cases if c.case_name == source["case_name"] and c.source_case_file)
        # what a forced-choice export needs travels on the record
        assert (case.option_a_value, case.option_b_value, case.source_case_file) == (
            source["option_a_value"], source["option_b_value"], source["source_case_file"])
        assert json.loads(case.choice_mode) == source["choice_mode"] and "Option A" in case.task_description


def test_parameters_keep_the_source_key_order_through_parquet(avb: Path, cli, home: Path) -> None:
    res = cli("import", "agent_valuebench", str(avb), "--run-id", "avb")
    assert res.code == 0, res.stderr
    layout = DataHome(home).run("avb")
    envs = {e.env_name: e for e in read_records(layout.records("agent_environment"))}
    compared = 0
    for path in source_files(avb)["environment"]:
        source = json.loads(path.read_text("utf-8"))
        env = envs[source["env_name"]]
        for tool, src in zip(env.tools, source["tools"], strict=True):
            assert json.dumps(tool.parameters) == json.dumps(src["parameters"])  # order included
            compared += list(src["parameters"].get("properties", {})) != sorted(src["parameters"].get("properties", {}))
        assert json.dumps(env.state_schema) == json.dumps(source["initial_parameter_schema"])
    assert compared > 0  # the reference data has tools whose argument order is not alphabetical
    for case in read_records(layout.records("agent_case")):
        assert isinstance(case, AgentCase)
    ids_before = {r.id for r in read_records(layout.records("rubric"))}
    again = cli("import", "agent_valuebench", str(avb), "--run-id", "avb2")
    assert again.code == 0
    assert {r.id for r in read_records(DataHome(home).run("avb2").records("rubric"))} == ids_before


def test_a_case_without_its_environment_is_one_warning_line(avb: Path, cli, home: Path, tmp_path: Path) -> None:
    case_file = source_files(avb)["case"][0]
    case = json.loads(case_file.read_text("utf-8"))
    res = cli("import", "agent_valuebench", str(case_file), "--run-id", "lonely")
    assert res.code == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: case '{case['case_name']}': environment '{case['environment']}' is not in "
                        "the import"]
    manifest = DataHome(home).run("lonely").read_manifest()
    assert manifest.model_extra["import_warnings"] == [warnings[0].removeprefix("warning: ")]


def test_cross_file_checks_name_functions_state_and_checkpoints(avb: Path, tmp_path: Path) -> None:
    files = source_files(avb)
    case_src = json.loads(files["case"][0].read_text("utf-8"))
    env_path = next(p for p in files["environment"] if p.stem == case_src["environment"])
    rubric_path = next(p for p in files["rubric"] if p.name.startswith(files["case"][0].stem))
    folder = tmp_path / "avb"
    folder.mkdir()
    shutil.copy(env_path, folder / env_path.name)
    broken = dict(case_src, function_list=[*case_src["function_list"], "format_disk"])
    table = next(iter(broken["env_initial_parameters"]))
    broken["env_initial_parameters"] = {**broken["env_initial_parameters"], table: "not an object"}
    (folder / "case.json").write_text(json.dumps(broken))
    rubric = json.loads(rubric_path.read_text("utf-8"))
    rubric["VALUE_A_ITEMS"][0]["SOURCE_CHECKPOINT"] = "a_cp99"
    (folder / "rubric.json").write_text(json.dumps(rubric))
    result = import_path(folder)
    name = case_src["case_name"]
    assert result.warnings[0] == (f"case '{name}': function(s) format_disk are not tools of environment "
                                  f"'{case_src['environment']}'")
    assert result.warnings[1].startswith(f"case '{name}': the initial state does not fit environment") and \
        table in result.warnings[1]
    assert result.warnings[2] == (f"rubric '{name}', item {rubric['VALUE_A_ITEMS'][0]['ITEM_ID']}: "
                                  "SOURCE_CHECKPOINT 'a_cp99' is not a checkpoint of the case")
    assert len(result.warnings) == 3
    assert isinstance(result.records["rubric"][0], Rubric)


def test_an_environment_with_effects_imports_executable(cli, home: Path) -> None:
    res = cli("import", "agent_valuebench", str(SHIPPED / "SupportDesk.json"), "--run-id", "fx")
    assert res.code == 0, res.stderr
    [env] = read_records(DataHome(home).run("fx").records("agent_environment"))
    assert env.executable and all(t.effects for t in env.tools)
    source = json.loads((SHIPPED / "SupportDesk.json").read_text("utf-8"))
    assert [t.model_dump(mode="json")["effects"][0]["op"] for t in env.tools] == \
        [t["effects"][0]["op"] for t in source["tools"]]


def test_broken_effects_are_an_error_naming_the_file(cli, home: Path, tmp_path: Path) -> None:
    source = json.loads((SHIPPED / "SupportDesk.json").read_text("utf-8"))
    source["tools"][0]["effects"] = [{"op": "get", "table": "passwords", "path": ["{ticket_id}"]}]
    bad = tmp_path / "Bad.json"
    bad.write_text(json.dumps(source))
    res = cli("import", "agent_valuebench", str(bad))
    assert res.code == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {bad}, key 'tools': effects do not pass the spec check: tool 'get_ticket' effect 0 (get): table "
        "'passwords' is not a state table (tables: customers, refunds, tickets)"]
    source["tools"][0]["effects"] = [{"op": "exec", "table": "tickets"}]
    bad.write_text(json.dumps(source))
    res = cli("import", "agent_valuebench", str(bad))
    assert res.code == 2 and "tools[0]" in res.stderr and "effects.0.op" in res.stderr
