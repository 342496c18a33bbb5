"""Validation suites (Great Expectations 1.x) per record kind, generated from the record model, the declarations
in `schemas.constraints` and the taxonomies, with thresholds in a per-dataset suite file; the gate `publish`
runs. See docs/warehouse.md ("Validation")."""

from valuecorpus.warehouse.validation.gate import (
    ValidationFailed,
    failure_message,
    run_target,
    validate,
    version_target,
)

__all__ = ["ValidationFailed", "failure_message", "run_target", "validate", "version_target"]
