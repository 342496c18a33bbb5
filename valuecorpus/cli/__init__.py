"""The `valuecorpus` command. Each component's commands live in a module of this package with a `register(app)`
function; heavy libraries (Beam, Great Expectations, datasets, llama.cpp) are imported inside commands only, so
`--help` stays fast."""

from __future__ import annotations

import importlib
import os
import sys

# Plain click help: typer's rich help formatter alone costs ~150 ms at start-up, which --help cannot afford.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from valuecorpus.cli.common import state

app = typer.Typer(
    name="valuecorpus",
    help="Build, curate, validate and publish value-alignment corpora.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, in the order a record flows through the toolkit.
COMMAND_MODULES = ["data", "taxonomy", "generate", "dedupe", "utilities", "moral_graph", "curate", "warehouse",
                   "outputs", "cache", "engine", "environments"]


@app.callback()
def _root(
    home: str | None = typer.Option(None, "--home", help="Data home (default: $VALUECORPUS_HOME or ./corpus-home)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    state.home = home
    state.debug = debug


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"valuecorpus.cli.{_name}")
    except ModuleNotFoundError as _err:  # a component not built yet
        if _err.name != f"valuecorpus.cli.{_name}":
            raise
        continue
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    from valuecorpus.cli.common import run_app

    code = run_app(app, argv)
    if argv is None:  # the command itself, not a caller in this process
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Exit with the command's code once the exit handlers have run, skipping the interpreter's teardown: there
    a native thread pool (Arrow's, DuckDB's) destroyed while one of its threads is alive can abort the process
    (SIGABRT, "terminate called without an active exception") after the work is done and its code decided —
    seen once in a CI run, `env run` exiting -6 instead of 2 (apache/arrow#34314)."""
    import atexit
    import contextlib

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
