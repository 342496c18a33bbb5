"""The generation engine: every LLM call the toolkit makes goes through here (see `types.py` for the contract)."""
