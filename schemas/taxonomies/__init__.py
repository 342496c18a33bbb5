"""Versioned taxonomies (data files under `data/`) and their loader."""
