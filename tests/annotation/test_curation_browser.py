"""The labeling UI in headless Chromium (Debian's chromium driven by Playwright), as experts use it.

A curator: sample text with script/img probes renders as text and runs nothing; a value is found by typing part
of its name into the picker; typing outside the edit boxes changes no label; one word of a pre-filled edit box
is changed; the verdict is set with its shown key; the submitted annotation comes back through `curate pull`
with exactly that edit. An adjudicator reads both reviewers' verdicts, comments and proposed edits beside the
sample on the task page, and decides.

Set VALUECORPUS_DOCS_SCREENSHOT=<path.png> (and VALUECORPUS_DOCS_ADJ_SCREENSHOT=<path.png>) to also save the
screenshots used in the README and docs/curation.md."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import annotate, run_cli, tasks_by_sample
from curation_samples import XSS_IMG, XSS_SCRIPT, make, stage_run

from valuecorpus.annotation import projects
from valuecorpus.annotation.pull import pseudonym, salt_for
from valuecorpus.annotation.server import ServerFiles

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
DROPDOWN = ".htx-taxonomy-dropdown"
DIALOGS: list[str] = []  # every alert/confirm the pages raised
VERDICT_CHECKED = ", ".join(f"input[type=radio][name='{v}']:checked" for v in ("accept", "reject", "needs_edit"))


@pytest.fixture(scope="module")
def page(label_studio) -> Iterator[Any]:
    """One logged-in browser page for the module (the admin account, the only one with a password)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is required (make setup-test installs it)"
    creds = ServerFiles(label_studio.home / "annotation").read_credentials()
    assert creds is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 1400})
        pg.on("dialog", lambda d: (DIALOGS.append(d.message), d.dismiss()))
        pg.goto(f"{label_studio.url}/user/login/")
        pg.fill("input[name=email]", creds.username)
        pg.fill("input[name=password]", creds.password)
        pg.click("button[type=submit]")
        pg.wait_for_url(lambda url: "/user/login" not in url, timeout=120_000)
        yield pg
        browser.close()


def _open_task(page: Any, url: str, project: int, task: int, wait_text: str) -> None:
    page.goto(f"{url}/projects/{project}/data?tab=&task={task}")
    page.get_by_text(wait_text, exact=True).first.wait_for(timeout=180_000)
    page.wait_for_timeout(1000)


def _selected_values(page: Any) -> list[str]:
    return sorted(page.locator(".ant-select-selection-item-content").all_inner_texts())


def _wait_for_annotations(client: Any, task: int, n: int, page: Any) -> None:
    for _ in range(60):  # the UI posts the annotation asynchronously
        if len(list(client.annotations.list(id=task))) >= n:
            return
        page.wait_for_timeout(500)


def _decisions(run: Any, sample_id: str, role: str = "review") -> list[dict[str, Any]]:
    return [r for r in pq.read_table(run.path / "curation" / "decisions.parquet").to_pylist()
            if r["sample_id"] == sample_id and r["role"] == role]


def test_curator_finds_values_types_safely_edits_one_word_and_submits(label_studio, page, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"VALUECORPUS_HOME": str(home), **label_studio.env}
    run = stage_run(home / "runs", "ui", {"dilemma": 2})
    assert run_cli("curate", "push", "ui", env=env).code == 0
    project = projects.load(run)["dilemma:main:review"].project_id
    tasks = tasks_by_sample(label_studio.client, project)
    _open_task(page, label_studio.url, project, tasks[make("dilemma", 0).id], "Negative consequence of doing it")

    # the probes are shown literally, as text (in the sample and in its pre-filled edit box), and ran nothing:
    # no dialog, no flag, no injected elements
    page.get_by_text(XSS_SCRIPT, exact=False).first.wait_for(timeout=30_000)
    assert page.get_by_text(XSS_IMG, exact=False).count() >= 1
    assert any(XSS_SCRIPT in v for v in page.locator("textarea").evaluate_all("els => els.map(e => e.value)"))
    page.wait_for_timeout(1500)
    assert DIALOGS == []
    assert page.evaluate("[window.__xss_script, window.__xss_img]") == [None, None]
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("Array.from(document.scripts).filter(s => s.text.includes('__xss')).length") == 0

    # the curator's work, on the other sample
    sample = make("dilemma", 1)
    task = tasks[sample.id]
    _open_task(page, label_studio.url, project, task, "Negative consequence of doing it")
    # the verdict keys are shown on the page
    assert page.get_by_text("Verdict (keys 1 accept · 2 reject · 3 needs_edit)").count() == 1

    # the run's values are pre-selected; a value is found by typing part of its name
    assert _selected_values(page) == ["Doing it / friendship", "Doing it / trust", "Not doing it / honesty"]
    page.locator(".ant-select-selector").first.click()
    search = page.locator(f"{DROPDOWN} input[name=taxonomy-search-input]")
    search.wait_for(timeout=30_000)
    search.press_sequentially("oyal")  # focuses the search box itself, then types
    # the tree filters after a debounce and expands the parents of what matches: wait for the match, not a time
    page.locator(f"{DROPDOWN} .ant-select-tree-title", has_text="loyalty").first.wait_for(timeout=30_000)
    shown = page.locator(f"{DROPDOWN} .ant-select-tree-title").all_inner_texts()
    assert "loyalty" in shown and "honesty" not in shown and "trust" not in shown  # the tree is filtered
    shot = os.environ.get("VALUECORPUS_DOCS_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=False)
    page.locator(f"{DROPDOWN} .ant-select-tree-title", has_text="loyalty").first.click()  # under "Doing it"
    page.keyboard.press("Escape")
    page.mouse.click(640, 1350)  # empty space: the focus leaves every box
    page.wait_for_timeout(500)
    before = _selected_values(page)
    assert before == ["Doing it / friendship", "Doing it / loyalty", "Doing it / trust", "Not doing it / honesty"]

    # typing outside the edit boxes changes no label and no verdict
    page.keyboard.type("qwerty asdfgh zxcvbn loyal uiop")
    page.wait_for_timeout(800)
    assert _selected_values(page) == before
    assert page.locator(VERDICT_CHECKED).count() == 0

    # one word of a pre-filled edit box changes; every other box keeps the current text
    box = page.locator("textarea").first
    assert box.input_value() == sample.basic_situation
    box.click()
    box.press("End")
    box.press("Control+Shift+ArrowLeft")  # the last word
    page.keyboard.type("tomorrow")
    assert box.input_value() == "helping a friend move house tomorrow"  # was "… house 1"
    page.mouse.click(640, 1350)
    page.keyboard.press("3")  # the verdict's shown key: needs_edit
    page.wait_for_timeout(500)
    assert page.locator(VERDICT_CHECKED).count() == 1
    page.screenshot(path=str(tmp_path / "labeling.png"), full_page=False)
    page.get_by_role("button", name="Submit").click()
    _wait_for_annotations(label_studio.client, task, 1, page)

    assert (tmp_path / "labeling.png").stat().st_size > 10_000
    res = run_cli("curate", "pull", "ui", env=env)
    assert res.code == 0, res.stderr
    rows = _decisions(run, sample.id)
    assert len(rows) == 1 and rows[0]["verdict"] == "needs_edit"
    assert _decisions(run, make("dilemma", 0).id) == []  # the probe sample was only looked at
    assert rows[0]["edits"] == '{"basic_situation": "helping a friend move house tomorrow"}'
    assert rows[0]["labels"] == ["not_to_do/honesty", "to_do/friendship", "to_do/loyalty", "to_do/trust"]
    admin_id = label_studio.client.users.whoami().id
    assert rows[0]["annotator"] == pseudonym(admin_id, salt_for(home / "annotation"))
    assert rows[0]["lead_time"] is not None and rows[0]["lead_time"] > 0


def test_adjudicator_reads_both_reviews_beside_the_sample(label_studio, annotators, page, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"VALUECORPUS_HOME": str(home), **label_studio.env}
    run = stage_run(home / "runs", "ui-adj", {"dilemma": 2})
    assert run_cli("curate", "push", "ui-adj", "--overlap", "2", env=env).code == 0
    sample = make("dilemma", 1)
    task = tasks_by_sample(label_studio.client, projects.load(run)["dilemma:main:review"].project_id)[sample.id]
    client, to = label_studio.client, "basic_situation"
    annotate(client, task, annotators["ann1"], "needs_edit", to, 2,
             edits={"to_do_action": "Help the friend carry the boxes"})
    annotate(client, task, annotators["ann2"], "reject", to, 1, comment="The sister's visit can move; no dilemma.")
    assert run_cli("curate", "pull", "ui-adj", env=env).code == 0
    out = run_cli("curate", "adjudicate", "ui-adj", env=env)
    assert out.code == 0 and "1 added" in out.stdout, out.stderr
    adj_project = projects.load(run)["dilemma:main:adjudication"].project_id
    adj_task = tasks_by_sample(client, adj_project)[sample.id]
    reviewers = {d["verdict"]: d["annotator"] for d in _decisions(run, sample.id)}

    _open_task(page, label_studio.url, adj_project, adj_task, "Negative consequence of doing it")
    page.get_by_text("Reviews (pseudonymous)", exact=False).first.wait_for(timeout=30_000)
    text = page.inner_text("body")
    # both reviewers' verdicts, ratings, comment and proposed edit, under their pseudonyms, beside the original
    assert f"{reviewers['needs_edit']}: needs_edit, rating 2" in text
    assert "proposed to do action: Help the friend carry the boxes" in text
    assert f"{reviewers['reject']}: reject, rating 1" in text
    assert "comment: The sister's visit can move; no dilemma." in text
    assert sample.actions[0].action in text and sample.dilemma_situation in text
    shot = os.environ.get("VALUECORPUS_DOCS_ADJ_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=False)
    page.mouse.click(640, 1350)
    page.keyboard.press("1")  # accept
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Submit").click()
    _wait_for_annotations(client, adj_task, 1, page)
    assert run_cli("curate", "pull", "ui-adj", env=env).code == 0
    res = {r["sample_id"]: r for r in pq.read_table(run.path / "curation" / "resolutions.parquet").to_pylist()}
    assert res[sample.id]["status"] == "adjudicated" and res[sample.id]["verdict"] == "accept"
