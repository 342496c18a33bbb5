"""`valuecorpus report`: one self-contained HTML page about a version, for a reviewer to open in a browser.

Plots are Plotly figures; plotly.js is inlined once in the page, so nothing is fetched when it is viewed. Every
label that comes from the data (values, strata, batches, run ids) is HTML-escaped before it reaches Plotly,
whose labels accept a subset of HTML."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuecorpus.schemas.layout import DataHome
from valuecorpus.warehouse.report_data import ReportData, gather
from valuecorpus.warehouse.versions import as_home, version_info

TEMPLATES = Path(__file__).parent / "templates"
REPORT_TEMPLATE = "report.html.j2"
TOP_LABELS = 40
TOP_CONFLICT_VALUES = 20
TOP_STRATA = 40
OUTCOME_ORDER = ("accept", "needs_edit", "reject", "pending", "tie", "unresolved")


@dataclass
class ReportResult:
    path: Path
    version: int
    plots: list[str] = field(default_factory=list)  # ids of the plots drawn
    empty: dict[str, str] = field(default_factory=dict)  # section -> why it has no plot


def _e(text: Any) -> str:
    return html.escape(str(text), quote=False)


def _layout(fig: Any, title: str, height: int = 420, **extra: Any) -> Any:
    fig.update_layout(title={"text": _e(title)}, template="plotly_white", height=height,
                      margin={"l": 60, "r": 30, "t": 60, "b": 60}, **extra)
    return fig


def coverage_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go

    if not data.labels:
        return None
    top = data.labels.most_common(TOP_LABELS)
    kinds = sorted({kind for (kind, _), _ in top})
    fig = go.Figure([go.Bar(name=_e(kind), orientation="h",
                            y=[_e(label) for (k, label), _ in top if k == kind],
                            x=[n for (k, _), n in top if k == kind]) for kind in kinds])
    covered = "; ".join(f"{c['taxonomy']}: {c['used']} of {c['total']} nodes" for c in data.coverage)
    title = f"Taxonomy coverage: the {len(top)} most used value labels" + (f" ({covered})" if covered else "")
    return _layout(fig, title, height=max(420, 18 * len(top) + 120), barmode="stack",
                   yaxis={"autorange": "reversed", "automargin": True}, xaxis={"title": {"text": "records"}})


def conflict_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go

    if not data.conflicts:
        return None
    weight: dict[str, int] = {}
    for (a, b), n in data.conflicts.items():
        weight[a] = weight.get(a, 0) + n
        weight[b] = weight.get(b, 0) + n
    values = sorted(weight, key=lambda v: (-weight[v], v))[:TOP_CONFLICT_VALUES]
    z = [[data.conflicts.get(tuple(sorted((a, b))), 0) for b in values] for a in values]
    labels = [_e(v) for v in values]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Reds", hoverongaps=False,
                               colorbar={"title": {"text": "conflicts"}}))
    return _layout(fig, f"Value-pair conflicts (the {len(values)} values most often in conflict)",
                   height=max(480, 22 * len(values) + 200), xaxis={"automargin": True},
                   yaxis={"automargin": True, "autorange": "reversed"})


def length_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go

    if not data.lengths:
        return None
    fig = go.Figure()
    for name, h in sorted(data.lengths.items()):
        edges = h["edges"]
        centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(edges) - 1)]
        fig.add_trace(go.Bar(name=_e(f"{name} (median {h['median']:.0f})"), x=centres, y=h["counts"],
                             width=[edges[i + 1] - edges[i] for i in range(len(edges) - 1)], opacity=0.6))
    return _layout(fig, "Text length distributions (characters)", barmode="overlay",
                   xaxis={"title": {"text": "characters"}}, yaxis={"title": {"text": "records"}})


def agreement_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go

    if not data.agreement:
        return None
    fields = sorted({(a["field"], a["statistic"]) for a in data.agreement})
    fig = go.Figure([go.Bar(name=_e(f"{f} ({s.replace('_', ' ')})"),
                            x=[_e(a["batch"]) for a in data.agreement if (a["field"], a["statistic"]) == (f, s)],
                            y=[a["value"] for a in data.agreement if (a["field"], a["statistic"]) == (f, s)])
                     for f, s in fields])
    return _layout(fig, "Inter-annotator agreement per batch", barmode="group",
                   yaxis={"title": {"text": "agreement"}, "range": [min(0.0, *(a["value"] for a in data.agreement)),
                                                                    1.0]})


def acceptance_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go

    if not data.acceptance:
        return None
    strata = sorted(data.acceptance, key=lambda s: (-sum(data.acceptance[s].values()), s))[:TOP_STRATA]
    outcomes = [o for o in OUTCOME_ORDER if any(data.acceptance[s][o] for s in strata)]
    outcomes += sorted({o for s in strata for o in data.acceptance[s]} - set(outcomes))
    fig = go.Figure([go.Bar(name=_e(o), orientation="h", y=[_e(s) for s in strata],
                            x=[data.acceptance[s][o] for s in strata]) for o in outcomes])
    return _layout(fig, "Curation outcome by stratum", height=max(420, 20 * len(strata) + 140), barmode="stack",
                   yaxis={"autorange": "reversed", "automargin": True}, xaxis={"title": {"text": "samples"}})


def failure_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go

    if not data.dead_letters and not data.filtered:
        return None
    fig = go.Figure()
    if data.dead_letters:
        top = data.dead_letters.most_common(30)
        fig.add_trace(go.Bar(name="dead letters (stage: error class)", orientation="h",
                             y=[_e(k) for k, _ in top], x=[n for _, n in top]))
    if data.filtered:
        top = data.filtered.most_common(30)
        fig.add_trace(go.Bar(name="filtered (filter)", orientation="h", y=[_e(k) for k, _ in top],
                             x=[n for _, n in top]))
    rows = len(data.dead_letters) + len(data.filtered)
    return _layout(fig, "Dead-letter reasons and filtered samples", height=max(360, 24 * rows + 140),
                   yaxis={"autorange": "reversed", "automargin": True}, xaxis={"title": {"text": "samples"}})


def cost_figure(data: ReportData) -> Any | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    runs = [c for c in data.cost if c["cost_usd"] or c["prompt_tokens"] or c["completion_tokens"]]
    if not runs:
        return None
    names = [_e(c["run_id"]) for c in runs]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(name="prompt tokens", x=names, y=[c["prompt_tokens"] for c in runs]))
    fig.add_trace(go.Bar(name="completion tokens", x=names, y=[c["completion_tokens"] for c in runs]))
    fig.add_trace(go.Scatter(name="cost (USD)", x=names, y=[c["cost_usd"] for c in runs], mode="markers+lines",
                             marker={"size": 12}), secondary_y=True)
    fig.update_yaxes(title_text="tokens", secondary_y=False)
    fig.update_yaxes(title_text="USD", secondary_y=True, rangemode="tozero")
    total = sum(c["cost_usd"] for c in runs)
    return _layout(fig, f"Tokens and cost per run (total {total:.4f} USD)", barmode="stack")


SECTIONS = [
    ("coverage", "Taxonomy coverage", coverage_figure, "no record kind of this version carries value labels"),
    ("conflicts", "Value-pair conflicts", conflict_figure, "no record kind of this version opposes two values"),
    ("lengths", "Length distributions", length_figure, "no text columns"),
    ("agreement", "Agreement per batch", agreement_figure, "not curated: no agreement figures in the manifest"),
    ("acceptance", "Acceptance by stratum", acceptance_figure, "no curation results in the lineage's runs"),
    ("failures", "Dead letters and filtered samples", failure_figure,
     "no dead letters or filtered samples in the lineage's runs"),
    ("cost", "Cost", cost_figure, "no tokens or cost recorded (imported records, or runs not found)"),
]


def render_report(home: DataHome, dataset: str, version: int | str | None = None) -> tuple[str, ReportResult]:
    import jinja2
    import plotly.offline

    info = version_info(home, dataset, version)
    data = gather(home, info)
    result = ReportResult(Path(), info.version)
    sections = []
    for key, title, build, why_empty in SECTIONS:
        fig = build(data)
        if fig is None:
            result.empty[key] = why_empty
            sections.append({"id": key, "title": title, "plot": None, "empty": why_empty})
            continue
        result.plots.append(key)
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{key}",
                          config={"displaylogo": False, "responsive": True})
        sections.append({"id": key, "title": title, "plot": div, "empty": None})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    page = env.get_template(REPORT_TEMPLATE).render(
        m=info.manifest, sections=sections, data=data, sources=(info.manifest.model_extra or {}).get("sources", []),
        plotlyjs=plotly.offline.get_plotlyjs(), total=sum(info.manifest.row_counts.values()),
    )
    return page, result


def write_report(home: DataHome | str | Path, dataset: str, version: int | str | None, out: str | Path
                 ) -> ReportResult:
    """Write the report of a version (latest by default) to `out`, atomically."""
    page, result = render_report(as_home(home), dataset, version)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    result.path = out
    return result
