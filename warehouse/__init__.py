"""warehouse component."""
