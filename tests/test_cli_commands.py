"""The CLI as a whole: every command has --help, start-up imports nothing heavy, errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys

import typer
from typer.testing import CliRunner

from valuecorpus.cli import app

HEAVY = ["apache_beam", "great_expectations", "datasets", "llama_cpp", "label_studio_sdk", "duckdb", "pyarrow",
         "pandas", "openai", "torch", "plotly", "jinja2"]


def command_paths(cmd: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click, so no isinstance check)
        for name, sub in cmd.commands.items():
            paths += command_paths(sub, (*prefix, name))
    return paths


def test_every_command_answers_help() -> None:
    root = typer.main.get_command(app)
    paths = command_paths(root)
    names = {" ".join(p) for p in paths}
    # the commands each component contributes are all registered
    for expected in ["import", "taxonomy list", "generate", "dedupe", "runs", "run show", "run resume", "cache stats",
                     "validate", "publish", "versions", "sql", "diff", "annotation server start", "curate push",
                     "curate pull", "curate status", "utilities fit", "export", "report"]:
        assert expected in names, f"missing command: {expected}"
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_help_imports_nothing_heavy() -> None:
    """--help must answer fast: heavy libraries are imported inside commands only."""
    code = (
        "import sys, json\n"
        "from valuecorpus.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_user_error_is_one_line_and_nonzero(cli) -> None:
    result = cli("publish", "no-such-run", "--dataset", "dilemmas")
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no-such-run" in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(cli) -> None:
    result = cli("--debug", "publish", "no-such-run", "--dataset", "dilemmas")
    assert result.code != 0 and "Traceback" in result.stderr


def test_bad_setting_names_the_setting(cli, tmp_path) -> None:
    result = cli("versions", "dilemmas", env={"VALUECORPUS_LABEL_STUDIO_PORT": "not-a-port"})
    assert result.code != 0
    assert "label_studio_port" in result.stderr and len(result.stderr.strip().splitlines()) == 1
