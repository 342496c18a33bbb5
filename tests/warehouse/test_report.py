"""`valuecorpus report` rendered in headless Chromium: one self-contained page (no request leaves it), every plot
drawn (marks in the DOM and non-background pixels in its screenshot), data-borne labels shown as text only.

Set VALUECORPUS_DOCS_SCREENSHOT=<path.png> to also save the screenshot used in docs/warehouse.md."""

from __future__ import annotations

import html
import io
import os
from collections import Counter
from pathlib import Path

import pytest
import yaml
from wh_kinds import XSS_LABEL, generated_dilemmas, stage_curated, stage_generated

from valuecorpus.schemas.layout import DataHome
from valuecorpus.schemas.taxonomies.loader import load_taxonomy
from valuecorpus.warehouse import publish

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PLOTS = ["coverage", "conflicts", "lengths", "agreement", "acceptance", "failures", "cost"]
# What each plot draws: bars (`.point` paths), heat-map cells (an image), markers.
MARKS = {"coverage": ".barlayer .point", "conflicts": ".hm image, .heatmaplayer image", "lengths": ".barlayer .point",
         "agreement": ".barlayer .point", "acceptance": ".barlayer .point", "failures": ".barlayer .point",
         "cost": ".barlayer .point, .scatterlayer .point"}


def non_background_share(png: bytes) -> float:
    """Share of pixels that differ from the image's most common colour (the background)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = Counter(image.getdata())
    _, background = colours.most_common(1)[0]
    return 1 - background / (image.width * image.height)


@pytest.fixture
def curated_dataset(home: Path) -> dict[str, object]:
    values = [n.name for n in load_taxonomy("dailydilemmas_values").nodes_at()][:12]
    dilemmas = generated_dilemmas(values, 40)
    dead = {"generate:http_429": 3, "parse:invalid_json": 2, "check:schema": 1}
    filtered = {"near_duplicate": 4, "length": 2}
    strata = stage_generated(home, "gen", dilemmas, dead, filtered)
    verdicts = (["accept"] * 5 + ["reject", "needs_edit", "accept", "tie", "accept"]) * 4
    stats = {"items": 10, "annotators": 3, "krippendorff_alpha": 0.61, "fleiss_kappa": 0.58, "level": "nominal"}
    agreement = {f"dilemma/b000{b}": {"verdict": {**stats, "krippendorff_alpha": 0.5 + b / 10},
                                      "rating": {**stats, "krippendorff_alpha": 0.3 + b / 20}} for b in (1, 2, 3, 4)}
    stage_curated(home, "gen-curated", "gen", dilemmas, verdicts, agreement)
    publish(home, "gen-curated", "reviewed")
    card = (DataHome(home).version_dir("reviewed", 1) / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["annotations_creators"] == ["expert-generated", "machine-generated"]
    assert "3 annotator(s) (pseudonymised), 120 annotations of 40 samples." in card
    assert "| dilemma/b0001 | verdict | 10 |" in card
    by_stratum = Counter((html.escape(st, quote=False), v) for st, v in zip(strata, verdicts, strict=True))
    return {"dead": dead, "filtered": filtered, "by_stratum": by_stratum}


def test_report_renders_every_plot_offline(home: Path, curated_dataset: dict, tmp_path: Path, cli) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is required (make setup-test installs it)"
    out = tmp_path / "report.html"
    result = cli("report", "reviewed@v1", "--out", str(out))
    assert result.code == 0, result.stderr
    assert f"{len(PLOTS)} plots" in result.stdout
    page_html = out.read_text(encoding="utf-8")
    assert "<script src=" not in page_html and "<link " not in page_html  # nothing to fetch
    assert XSS_LABEL not in page_html  # data-borne labels are escaped before they reach the page

    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 7",
                               timeout=60_000)
        page.wait_for_timeout(500)
        shots = {}
        for plot in PLOTS:
            div = page.locator(f"#plot-{plot}")
            marks = div.locator(MARKS[plot]).count()
            assert marks > 0, f"plot {plot} drew no marks"
            shots[plot] = non_background_share(div.screenshot())
        full = page.screenshot(full_page=True)
        (tmp_path / "report.png").write_bytes(full)
        shot = os.environ.get("VALUECORPUS_DOCS_SCREENSHOT")
        if shot:
            page.set_viewport_size({"width": 1280, "height": 1600})
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            page.screenshot(path=shot, full_page=False)
        # the probe label is on the page as text, and did nothing
        assert page.get_by_text("onerror", exact=False).count() >= 1
        assert page.evaluate("window.__xss_report") is None and page.locator("img[src='x']").count() == 0
        # the numbers behind two plots are the ones the runs hold
        failures = page.evaluate("document.getElementById('plot-failures').data.map(t => [t.y, t.x])")
        acceptance = page.evaluate(
            "document.getElementById('plot-acceptance').data.map(t => [t.name, t.y, t.x])")
        browser.close()

    assert dialogs == []
    assert all(url.startswith(("file:", "data:", "blob:", "about:")) for url in requests), requests
    for plot, share in shots.items():
        assert share > 0.01, f"plot {plot}: only {share:.2%} of its pixels differ from the background"
    dead_letters = dict(zip(*failures[0], strict=True))
    assert dead_letters == {k.replace(":", ": "): n for k, n in curated_dataset["dead"].items()}
    assert dict(zip(*failures[1], strict=True)) == curated_dataset["filtered"]
    # each sample counted under its plan's stratum (record id -> plan item -> stratum) and its verdict
    drawn = Counter({(stratum, name): x for name, ys, xs in acceptance for stratum, x in zip(ys, xs, strict=True)
                     if x})
    assert drawn == curated_dataset["by_stratum"]


def test_report_of_an_imported_version_says_what_it_lacks(home: Path, dilemma_run: str, tmp_path: Path) -> None:
    from valuecorpus.warehouse.report import write_report

    publish(home, dilemma_run, "dilemmas")
    result = write_report(home, "dilemmas", None, tmp_path / "r.html")
    assert "coverage" in result.plots and "lengths" in result.plots
    assert {"agreement", "acceptance", "failures", "cost"} <= set(result.empty)
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.count("No plot:") == len(result.empty) and "not curated" in text
