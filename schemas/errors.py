"""User-facing errors: one clear line that names the file, row, key or setting, and an exit code."""

from __future__ import annotations


class ValueCorpusError(Exception):
    """An error a user can cause and fix. The CLI prints `str(err)` on one line and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # always one line


class InputFileError(ValueCorpusError):
    """A malformed input file: says which file and which row or key."""

    def __init__(self, path: object, where: str | None, problem: str) -> None:
        loc = f"{path}" + (f", {where}" if where else "")
        super().__init__(f"{loc}: {problem}")
        self.path, self.where, self.problem = str(path), where, problem


class TaxonomyError(ValueCorpusError):
    """A value that is not in a taxonomy (never silently added as a new node)."""


class RecipeError(ValueCorpusError):
    """A recipe that does not validate."""


class SettingsError(ValueCorpusError):
    """A missing or invalid setting."""


class EndpointError(ValueCorpusError):
    """An unreachable or misconfigured server (LLM endpoint, Label Studio)."""

    exit_code = 3


class BudgetExhausted(ValueCorpusError):
    """The cost or token cap was reached; what was spent is in the message."""

    exit_code = 4


class QualityBelowThreshold(ValueCorpusError):
    """A run's schema-valid or dead-letter rate crossed its recipe's `quality` thresholds."""

    exit_code = 6


class NotFoundError(ValueCorpusError):
    """A run, dataset or version that does not exist."""
