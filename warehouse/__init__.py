"""The warehouse: immutable numbered versions of datasets, published from staged runs, read through Arrow
and a read-only DuckDB catalog.

Public API (imported lazily so that importing the package stays cheap):
`publish`, `latest_version`, `list_versions`, `version_info`, `load_version`, `load_records`,
`verify_version`, `query`, `diff_versions`, `release_changes`, `validate` (with `run_target` /
`version_target`), `export` (training and evaluation files), `write_report` (the HTML report).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "publish": "publishing", "ValidationFailed": "publishing", "PUBLISH_STEPS": "publishing",
    "latest_version": "versions", "list_versions": "versions", "list_datasets": "versions",
    "version_info": "versions", "load_version": "versions", "load_records": "versions",
    "verify_version": "versions", "version_numbers": "versions", "published_from": "versions",
    "query": "catalog", "connect": "catalog",
    "diff_versions": "diff", "release_changes": "diff",
    "validate": "validation.gate", "run_target": "validation.gate", "version_target": "validation.gate",
    "failure_message": "validation.gate",
    "export": "exports", "write_report": "report",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'valuecorpus.warehouse' has no attribute '{name}'")
    return getattr(import_module(f"valuecorpus.warehouse.{_API[name]}"), name)
