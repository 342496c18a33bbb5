"""Labeling configs, one XML file per record kind. A config that offers value labels holds the marker
`<!--taxonomy-choices-->` inside its `value_labels` Choices; `render` replaces it with one `<Choice>` per
taxonomy node (canonical name as value, English name as hint when it differs)."""

from __future__ import annotations

from importlib import resources
from xml.sax.saxutils import quoteattr

from valuecorpus.annotation.tasks import spec

MARKER = "<!--taxonomy-choices-->"


def template(kind: str) -> str:
    spec(kind)  # an unknown kind is a clear error
    return (resources.files(__package__) / f"{kind}.xml").read_text(encoding="utf-8")


def taxonomy_choices(taxonomy_name: str) -> tuple[str, list[str]]:
    """(taxonomy ref 'name@version', the Choice elements) for a taxonomy."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    tax = load_taxonomy(taxonomy_name)
    names: set[str] = set()
    out = []
    for node in tax.nodes_at():
        if node.name in names:  # a name shared by nodes at several levels is offered once
            continue
        names.add(node.name)
        hint = node.names.get("en")
        attrs = f"value={quoteattr(node.name)}" + (f" hint={quoteattr(hint)}" if hint and hint != node.name else "")
        out.append(f"<Choice {attrs}/>")
    return tax.ref, out


def render(kind: str) -> tuple[str, str | None]:
    """(label config XML, taxonomy ref or None) for a kind."""
    xml = template(kind)
    taxonomy = spec(kind).taxonomy
    if taxonomy is None:
        return xml, None
    ref, choices = taxonomy_choices(taxonomy)
    return xml.replace(MARKER, "\n    ".join(choices)), ref
