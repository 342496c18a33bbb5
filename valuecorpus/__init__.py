"""valuecorpus: build, curate, validate and publish value-alignment corpora.

Components live in top-level folders mapped into this namespace:
`valuecorpus.schemas` (the ground: records, taxonomies, layouts), `valuecorpus.pipelines`,
`valuecorpus.annotation`, `valuecorpus.warehouse`. This package holds what spans them: the CLI and settings.
"""

__version__ = "0.1.0"
