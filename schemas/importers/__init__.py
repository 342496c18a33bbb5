"""Importers of the published reference corpora into records (one module per corpus), and staging their
output as a run. `import_path(kind, path)` reads; `stage_import(...)` writes the run."""

from valuecorpus.schemas.importers.base import ImportResult
from valuecorpus.schemas.importers.registry import IMPORTERS, import_path, importer_name

__all__ = ["IMPORTERS", "ImportResult", "import_path", "importer_name"]
