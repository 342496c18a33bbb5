"""The `valuecorpus run ...` command group, shared by the modules that add commands to it (`run show`,
`run resume`, ...). Each module decorates `run_app` and calls `attach(app)`; the group is added once."""

from __future__ import annotations

import typer

run_app = typer.Typer(name="run", help="Inspect and resume runs.", no_args_is_help=True)
_attached: set[int] = set()


def attach(app: typer.Typer) -> None:
    if id(app) in _attached:
        return
    app.add_typer(run_app, name="run")
    _attached.add(id(app))
