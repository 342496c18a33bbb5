"""Test and benchmark tools shared by `tests/` and `bench/`: the fault-injecting fake OpenAI-compatible server.

Not part of the product: installed into the development venv only (`make setup` installs `tests/support`
editable), never shipped in the valuecorpus wheel.
"""
