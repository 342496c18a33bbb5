"""What every command shares: global options, settings, and turning errors into one line and an exit code."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from valuecorpus.settings import Settings


@dataclass
class _State:
    home: str | None = None
    debug: bool = False


state = _State()


def settings(**overrides: object) -> Settings:
    from valuecorpus.settings import load_settings

    return load_settings(home=state.home, **overrides)


def debugging() -> bool:
    """--debug or VALUECORPUS_DEBUG=1: tracebacks and the runner's own logs are shown."""
    return state.debug or os.environ.get("VALUECORPUS_DEBUG") == "1"


def err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the CLI; a user error ends with one line and a non-zero exit, no traceback unless --debug."""
    from click.exceptions import Abort, ClickException, Exit

    from valuecorpus.schemas.errors import ValueCorpusError

    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or os.environ.get("VALUECORPUS_DEBUG") == "1"
    try:
        # outside standalone mode click returns (not raises) the code of a `typer.Exit(code)`
        code = app(args=argv, standalone_mode=False)
        return code if type(code) is int else 0
    except Exit as exc:
        return exc.exit_code
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except Abort:
        err("aborted")
        return 130
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except ValueCorpusError as exc:
        if debug:
            raise
        err(str(exc))
        return exc.exit_code
    except Exception as exc:  # an unexpected failure: still one line, the traceback only with --debug
        if debug:
            raise
        err(f"{exc.__class__.__name__}: {' '.join(str(exc).split())} (run with --debug for the traceback)")
        return 1
