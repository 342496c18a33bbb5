"""Running the `valuecorpus` command from a scheduler (Airflow, cron, Dagster, ...): nothing here knows which one.

A scheduled step runs the command line as a child process, exactly as a user would, so a scheduler adds no second
way of doing anything. What a scheduler needs on top:

- `run_cli`: the child process, with settings handed over in its environment (never on the command line, where
  `ps` and task logs would show a key); its stderr goes to the caller's stderr (the task log), its stdout is
  returned for `--json` output;
- `permanent`: whether an exit code means "retrying cannot help" (bad input, budget, validation, quality) or
  "try again" (an endpoint down, a kill);
- `derived_run_id`: a run id derived from the scheduler's own run id, so a retried step finds the run it made
  before (`--skip-existing`, `publish --once`) instead of making a second one;
- `settings_env`: the environment variables the CLI reads for each setting;
- `has_command`: whether the installed CLI has a command (a DAG uses `validate` where it exists).

Importing this module is cheap (no Beam, Great Expectations, DuckDB, pyarrow): DAG files import it at parse time.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass

# Exit codes of the CLI (valuecorpus.schemas.errors): 2 input, 3 endpoint, 4 budget, 5 validation, 6 quality.
PERMANENT_EXIT_CODES = frozenset({2, 4, 5, 6})
# Overrides the command that is run, e.g. "/opt/venvs/valuecorpus/bin/valuecorpus" on a worker whose Airflow
# lives in another environment. Default: this interpreter's `-m valuecorpus`.
CLI_ENV = "VALUECORPUS_CLI"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
MAX_RUN_ID = 128


@dataclass
class CliResult:
    args: tuple[str, ...]
    code: int
    stdout: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def permanent(self) -> bool:
        return permanent(self.code)


def permanent(code: int) -> bool:
    """A failure that a retry cannot fix: the input, the budget, the validation gate or the quality thresholds."""
    return code in PERMANENT_EXIT_CODES


def cli_command() -> list[str]:
    override = os.environ.get(CLI_ENV, "").strip()
    return shlex.split(override) if override else [sys.executable, "-m", "valuecorpus"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float | None = None) -> CliResult:
    """Run `valuecorpus ARGS...` with `env` added to this process's environment. Its stderr (progress, warnings,
    the one `error:` line) is passed through; its stdout is captured and returned."""
    sys.stderr.flush()
    proc = subprocess.run([*cli_command(), *args], env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                          text=True, timeout=timeout, check=False)
    return CliResult(tuple(args), proc.returncode, proc.stdout)


def has_command(name: str) -> bool:
    """Whether this installation's CLI has the command `name` (so a step can use a newer command where it is
    there, e.g. `validate`)."""
    proc = subprocess.run([*cli_command(), name, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False)
    return proc.returncode == 0


def settings_env(**values: str | None) -> dict[str, str]:
    """{setting name: value} → the environment variables the CLI reads (`openai_api_key` → OPENAI_API_KEY,
    `home` → VALUECORPUS_HOME, ...). Unset values are left out, so the child keeps what its environment has."""
    from valuecorpus.settings import ENV_ALIASES, ENV_PREFIX, Settings

    out: dict[str, str] = {}
    for name, value in values.items():
        if name not in Settings.model_fields:
            raise KeyError(f"unknown setting '{name}'")
        if value not in (None, ""):
            out[ENV_ALIASES.get(name, ENV_PREFIX + name.upper())] = str(value)
    return out


def derived_run_id(prefix: str, scheduler_run_id: str) -> str:
    """A valid run id that is the same every time it is derived from the same scheduler run: `prefix-slug`, with
    a short hash of the original when the slug had to be changed or cut (two scheduler runs never collide)."""
    slug = _SLUG.sub("-", scheduler_run_id).strip("-.") or "run"
    head = _SLUG.sub("-", prefix).strip("-.") or "run"
    run_id = f"{head}-{slug}"
    if slug != scheduler_run_id or len(run_id) > MAX_RUN_ID:
        digest = hashlib.sha256(f"{prefix}\0{scheduler_run_id}".encode()).hexdigest()[:8]
        run_id = f"{run_id[:MAX_RUN_ID - 9]}-{digest}"
    return run_id
