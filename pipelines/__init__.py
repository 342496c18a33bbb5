"""pipelines component."""
