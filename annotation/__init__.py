"""annotation component."""
