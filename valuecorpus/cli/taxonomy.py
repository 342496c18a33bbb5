"""`valuecorpus taxonomy list | show | lookup`: the shipped taxonomies, their nodes, and resolving a value."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from valuecorpus.schemas.taxonomies.loader import Node

taxonomy_app = typer.Typer(
    help="Inspect the versioned taxonomies and look values up in them.", no_args_is_help=True
)


def _node_line(node: Node) -> str:
    extras = []
    if node.parent:
        extras.append(f"parent={node.parent}")
    if node.labels:
        extras.append(" ".join(f"{k}={v}" for k, v in sorted(node.labels.items())))
    en = node.names.get("en")
    name = f"{node.name} ({en})" if en and en != node.name else node.name
    return "  ".join([node.id, node.level, name, *extras])


@taxonomy_app.command("list")
def list_taxonomies() -> None:
    """Every taxonomy: name, version and node counts per level."""
    from valuecorpus.schemas.taxonomies.loader import available, load_taxonomy

    for name in available():
        tax = load_taxonomy(name)
        counts = " ".join(f"{lvl}={len(tax.nodes_at(lvl))}" for lvl in tax.data.levels)
        print(f"{name:<22} {tax.version:<8} {counts:<34} {tax.data.title}")


@taxonomy_app.command("show")
def show(
    name: str = typer.Argument(..., help="taxonomy name, e.g. cvc (see `taxonomy list`)"),
    level: str | None = typer.Option(None, "--level", help="only the nodes at this level"),
    as_json: bool = typer.Option(False, "--json", help="print the nodes as JSON"),
) -> None:
    """The nodes of a taxonomy (id, level, name, parent, labels), optionally one level only."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    tax = load_taxonomy(name)
    nodes = tax.nodes_at(level)
    if as_json:
        print(json.dumps([n.model_dump(mode="json") for n in nodes], ensure_ascii=False, indent=2))
        return
    print(f"{tax.ref}  {tax.data.title}")
    print(f"source: {tax.data.source}")
    print(f"licence: {tax.data.licence}")
    for node in nodes:
        print(_node_line(node))


@taxonomy_app.command("lookup")
def lookup(
    name: str = typer.Argument(..., help="taxonomy name, e.g. cvc"),
    value: str = typer.Argument(..., help="a name, id, translation or synonym, e.g. 法制教育"),
    level: str | None = typer.Option(None, "--level", help="look only at this level"),
    under: str | None = typer.Option(None, "--under", help="look only below this node, e.g. a value system"),
) -> None:
    """Resolve a value to its node; an unknown value fails naming the closest names."""
    from valuecorpus.schemas.taxonomies.loader import load_taxonomy

    tax = load_taxonomy(name)
    node = tax.lookup(value, level, under)
    print(json.dumps({"taxonomy": tax.ref, **node.model_dump(mode="json"),
                      "ancestors": [a.id for a in tax.ancestors(node)]}, ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(taxonomy_app, name="taxonomy")
