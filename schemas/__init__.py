"""Records, taxonomies, layouts and importers: the contracts every other component builds on.

This package imports nothing else of valuecorpus.
"""
