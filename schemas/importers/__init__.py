"""Importers of the published reference corpora into records."""
