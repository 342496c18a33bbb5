"""Labeling configs, one XML file per record kind, and expert instructions, one template per kind.

A config that offers value labels holds the marker `<!--taxonomy-choices-->` inside its `value_labels`
`<Taxonomy>`; `render` replaces it with the taxonomy as a tree of `<Choice>`s: grouped by the taxonomy's own
hierarchy (CVC level → core → derived, Agent-ValueBench system → value) or, for kinds whose values belong to a
part of the record (a dilemma's two actions), by that part; sorted by name; the shown name carries the English
name where it differs, the stored result is the canonical name (`alias`), and the hover hint holds the
definition, synonyms or theory labels. Label Studio's Taxonomy has a search box that filters the tree as the
curator types, and its choices take no keyboard shortcuts, so typing outside a text box never changes a label
(Label Studio gives every `<Choices>` choice without a `hotkey` an automatic one; every `<Choice>` of
`<Choices>` in our configs therefore has an explicit key, named in its header).

The adjudication config is the review config with the reviewers' decisions shown beside the sample.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources
from xml.sax.saxutils import quoteattr

from valuecorpus.annotation.tasks import spec

MARKER = "<!--taxonomy-choices-->"
INSTRUCTIONS = "instructions"
REVIEWS_KEY = "reviews"  # adjudication task data: the reviewers' decisions as plain text


def template(kind: str) -> str:
    spec(kind)  # an unknown kind is a clear error
    return (resources.files(__package__) / f"{kind}.xml").read_text(encoding="utf-8")


def instructions(kind: str, role: str = "review") -> str:
    """The expert instructions (HTML written by us, shown by Label Studio before labeling) for a kind."""
    spec(kind)
    folder = resources.files(__package__) / INSTRUCTIONS
    text = (folder / f"{kind}.html").read_text(encoding="utf-8")
    if role == "adjudication":
        text = (folder / "adjudication.html").read_text(encoding="utf-8") + text
    return text


def _hint(node: object) -> str | None:
    parts: list[str] = []
    definition = getattr(node, "definition", None)
    if definition:
        parts.append(definition)
    labels = getattr(node, "labels", {}) or {}
    if labels:
        parts.append("; ".join(f"{k}: {v}" for k, v in sorted(labels.items())))
    names = {v for v in (getattr(node, "names", {}) or {}).values()} | set(getattr(node, "synonyms", []) or [])
    names.discard(getattr(node, "name", ""))
    if names:
        parts.append("also: " + ", ".join(sorted(names)))
    return " · ".join(parts) or None


def _shown(node: object) -> str:
    name = getattr(node, "name", "")
    english = (getattr(node, "names", {}) or {}).get("en")
    return f"{name} · {english}" if english and english != name else name


def _choice(node: object, children: list[str], indent: str) -> str:
    attrs = f"value={quoteattr(_shown(node))}"
    if _shown(node) != getattr(node, "name", ""):
        attrs += f" alias={quoteattr(getattr(node, 'name', ''))}"  # the result stores the canonical name
    hint = _hint(node)
    if hint:
        attrs += f" hint={quoteattr(hint)}"
    if not children:
        return f"{indent}<Choice {attrs}/>"
    return f"{indent}<Choice {attrs}>\n" + "\n".join(children) + f"\n{indent}</Choice>"


def taxonomy_choices(taxonomy_name: str, groups: tuple[tuple[str, str], ...] = ()) -> tuple[str, list[str]]:
    """(taxonomy ref 'name@version', the `<Choice>` tree) for a taxonomy, optionally under record-part groups."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    tax = load_taxonomy(taxonomy_name)
    children: dict[str | None, list[object]] = {}
    for node in tax.nodes_at():
        children.setdefault(node.parent if node.parent in tax.nodes else None, []).append(node)

    def tree(parent: str | None, indent: str) -> list[str]:
        out, seen = [], set()
        for node in sorted(children.get(parent, []), key=lambda n: _shown(n).casefold()):
            if _shown(node) in seen:  # Label Studio needs distinct siblings
                continue
            seen.add(_shown(node))
            out.append(_choice(node, tree(node.id, indent + "  "), indent))
        return out

    if not groups:
        return tax.ref, tree(None, "    ")
    out = []
    for key, shown in groups:
        inner = "\n".join(tree(None, "      "))
        out.append(f"    <Choice value={quoteattr(shown)} alias={quoteattr(key)}>\n{inner}\n    </Choice>")
    return tax.ref, out


def label_path(taxonomy_name: str, label: str, groups: tuple[tuple[str, str], ...] = (),
               parent_name: str | None = None) -> list[str] | None:
    """The Taxonomy result path (aliases from the root) of one stored label, or None if it is not offered."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    tax = load_taxonomy(taxonomy_name)
    prefix: list[str] = []
    if groups:
        group, _, label = label.partition("/")
        if group not in {k for k, _ in groups}:
            return None
        prefix = [group]
    nodes = [n for n in tax.nodes_at() if n.name == label]
    if parent_name is not None:  # e.g. an agent case's value system
        nodes = sorted(nodes, key=lambda n: tax.nodes[n.parent].name != parent_name if n.parent in tax.nodes
                       else True)
    if not nodes:
        return None
    path, node = [], nodes[0]
    while node is not None:
        path.insert(0, node.name)
        node = tax.nodes.get(node.parent) if node.parent else None
    return prefix + path


def _adjudication(xml: str) -> str:
    """The review config with the reviewers' decisions beside the sample: sample fields on the left, the
    reviews on the right, then the same controls as the review."""
    root = ET.fromstring(xml)
    items = list(root)
    first_control = next(i for i, el in enumerate(items) if el.tag == "Header" and
                         el.get("value", "").startswith("Verdict"))
    left = ET.Element("View", {"style": "flex: 1; min-width: 0; padding-right: 1em"})
    left.extend(items[1:first_control] if items and items[0].tag == "Header" else items[:first_control])
    right = ET.Element("View", {"style": "flex: 1; min-width: 0; padding-left: 1em; border-left: 1px solid #ccc"})
    ET.SubElement(right, "Header", {"value": "Reviews (pseudonymous): verdict, rating, comment, proposed edits",
                                    "size": "5"})
    ET.SubElement(right, "Text", {"name": REVIEWS_KEY, "value": f"${REVIEWS_KEY}", "valueType": "text"})
    row = ET.Element("View", {"style": "display: flex; align-items: flex-start"})
    row.extend([left, right])
    for el in items[:first_control]:
        root.remove(el)
    head = [items[0]] if items and items[0].tag == "Header" else []
    for i, el in enumerate([*head, row]):
        root.insert(i, el)
    return ET.tostring(root, encoding="unicode")


def render(kind: str, role: str = "review", marker: str | None = None) -> tuple[str, str | None]:
    """(label config XML, taxonomy ref or None) for a kind. `marker` is kept as an XML comment: Label Studio
    stores it with the project's config, where the labeling UI never shows it."""
    xml = template(kind)
    s = spec(kind)
    ref = None
    if s.taxonomy is not None:
        ref, choices = taxonomy_choices(s.taxonomy, s.label_groups)
        xml = xml.replace(f"    {MARKER}", "\n".join(choices))
        if s.label_groups:  # a chosen value shows its group ("Doing it / trust"): the same name sits in each
            xml = xml.replace('<Taxonomy name="value_labels"', '<Taxonomy name="value_labels" showFullPath="true"')
    if role == "adjudication":
        xml = _adjudication(xml)
    if marker:
        xml = xml.replace("<View>", f"<View>\n  <!-- {marker} -->", 1)
    return xml, ref
