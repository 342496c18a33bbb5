"""The labeling UI in headless Chromium: sample text with script/img probes renders as text and runs nothing;
a verdict chosen and submitted in the UI comes back through `curate pull`.

Set VALUECORPUS_DOCS_SCREENSHOT=<path.png> to also save the screenshot used in docs/curation.md."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
from conftest import run_cli, tasks_by_sample
from curation_samples import XSS_IMG, XSS_SCRIPT, make, stage_run

from valuecorpus.annotation import projects
from valuecorpus.annotation.pull import pseudonym, salt_for
from valuecorpus.annotation.server import ServerFiles

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def test_probes_render_as_text_and_ui_decision_is_pulled(label_studio, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is required (make setup-test installs it)"
    home = tmp_path / "home"
    env = {"VALUECORPUS_HOME": str(home), **label_studio.env}
    run = stage_run(home / "runs", "ui", {"dilemma": 2})
    assert run_cli("curate", "push", "ui", env=env).code == 0
    project = projects.load(run)["dilemma:main:review"].project_id
    task = tasks_by_sample(label_studio.client, project)[make("dilemma", 0).id]
    creds = ServerFiles(label_studio.home / "annotation").read_credentials()
    assert creds is not None

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{label_studio.url}/user/login/")
        page.fill("input[name=email]", creds.username)
        page.fill("input[name=password]", creds.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url, timeout=120_000)
        page.goto(f"{label_studio.url}/projects/{project}/data?tab=&task={task}")
        page.get_by_text("Negative consequence of doing it", exact=True).first.wait_for(timeout=180_000)
        # the probes are shown literally, as text ...
        page.get_by_text(XSS_SCRIPT, exact=False).first.wait_for(timeout=30_000)
        assert page.get_by_text(XSS_IMG, exact=False).count() >= 1
        # ... and ran nothing: no dialog, no flag, no injected elements
        page.wait_for_timeout(1500)
        assert dialogs == []
        assert page.evaluate("[window.__xss_script, window.__xss_img]") == [None, None]
        assert page.locator("img[src='x']").count() == 0
        assert page.evaluate("Array.from(document.scripts).filter(s => s.text.includes('__xss')).length") == 0
        page.screenshot(path=str(tmp_path / "labeling.png"), full_page=False)
        # choose accept and submit in the UI
        page.locator("input[type=radio][name='accept']").first.check()
        page.get_by_role("button", name="Submit").click()
        for _ in range(60):  # the UI posts the annotation asynchronously
            if list(label_studio.client.annotations.list(id=task)):
                break
            page.wait_for_timeout(500)
        shot = os.environ.get("VALUECORPUS_DOCS_SCREENSHOT")
        if shot:
            clean = tasks_by_sample(label_studio.client, project)[make("dilemma", 1).id]
            page.goto(f"{label_studio.url}/projects/{project}/data?tab=&task={clean}")
            page.get_by_text("Negative consequence of doing it", exact=True).first.wait_for(timeout=180_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=shot, full_page=False)
        browser.close()

    assert (tmp_path / "labeling.png").stat().st_size > 10_000
    res = run_cli("curate", "pull", "ui", env=env)
    assert res.code == 0, res.stderr
    rows = [r for r in pq.read_table(run.path / "curation" / "decisions.parquet").to_pylist()
            if r["sample_id"] == make("dilemma", 0).id]
    assert len(rows) == 1 and rows[0]["verdict"] == "accept"
    assert rows[0]["labels"] == ["friendship", "honesty", "trust"]  # the run's labels, pre-filled as predictions
    admin_id = label_studio.client.users.whoami().id
    assert rows[0]["annotator"] == pseudonym(admin_id, salt_for(home / "annotation"))
    assert rows[0]["lead_time"] is not None and rows[0]["lead_time"] > 0
