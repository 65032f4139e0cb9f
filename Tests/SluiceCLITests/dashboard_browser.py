"""Drives `sluice ui` in headless Chromium (Playwright, the system browser) over a project made by real runs.

Usage: dashboard_browser.py BASE_URL PROJECT_DIR SLUICE_BINARY CHROMIUM SCREENSHOT_DIR

Checks each page's DOM against the JSON API, clicks from a run to a step to an artifact to its lineage to a model
version, promotes and rolls back from the page, and watches a run started meanwhile appear and finish without a
reload. Prints one line per check; exits 1 when any check failed.
"""

import json
import os
import subprocess
import sys
import urllib.request

from playwright.sync_api import sync_playwright

BASE, PROJECT, SLUICE, CHROMIUM, SHOTS = sys.argv[1:6]
os.makedirs(SHOTS, exist_ok=True)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def api(path):
    with urllib.request.urlopen(BASE + path) as response:
        return json.load(response)


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, name + ".png"), full_page=False)


runs = api("/api/runs")["runs"]
by_status = {}
for run in runs:
    by_status.setdefault(run["status"], []).append(run["id"])
failed_id = by_status["failed"][0]
first_id = runs[-1]["id"]
first = api("/api/runs/" + first_id)
outputs = {step["name"]: {o["slot"]: o["id"] for o in step["outputs"]} for step in first["steps"]}

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Runs: every run, with its state.
    page.goto(BASE + "/runs")
    rows = page.locator("#runs tbody tr[data-run]")
    check(rows.count() == len(runs), f"the runs page lists all {len(runs)} runs")
    statuses = rows.evaluate_all("rows => rows.map(r => r.dataset.status)")
    check(statuses == [r["status"] for r in runs], f"each run's state is shown: {statuses}")
    check(page.locator(f'#runs tr[data-run="{failed_id}"] .badge.failed').count() == 1, "the failed run is marked failed")
    shot(page, "runs")

    # A failed run: its graph coloured by state, dependents skipped, cached steps linked to their originals.
    page.click(f'#runs a[href="/runs/{failed_id}"]')
    page.wait_for_url(BASE + f"/runs/{failed_id}")
    failed_graph = page.locator("svg.graph")
    check(failed_graph.locator('g.node.failed[data-node="train"]').count() == 1, "train is drawn failed")
    check(failed_graph.locator("g.node.skipped").count() == 2, "evaluate and register are drawn skipped")
    check(failed_graph.locator("g.node.cached").count() == 6, "the six steps before train are drawn cached")
    check("no label column 'nosuchcolumn'" in page.locator("pre.error").inner_text(), "the run's error is shown")
    check(page.locator("#steps a[href^='/runs/run-'][href$='/steps/ingest']").count() >= 2,
          "a cached step links to the run it was cached from")
    shot(page, "run-failed")

    # Click through: the first run → its evaluate step → the model bundle → its lineage → the model version.
    page.goto(BASE + f"/runs/{first_id}")
    graph = page.locator("svg.graph")
    check(graph.locator("g.node.completed").count() == 9, "every step of the first run is drawn completed")
    check(graph.locator("path.edge").count() >= 8, "the graph has its edges")
    shot(page, "run")
    page.click('svg.graph a[href$="/steps/ingest"]')
    page.wait_for_url(BASE + f"/runs/{first_id}/steps/ingest")
    check(page.locator("h1").inner_text().startswith("Step ingest"), "a box of the graph opens its step")
    page.go_back()
    page.click('#steps a[href$="/steps/evaluate"]')
    page.wait_for_url(BASE + f"/runs/{first_id}/steps/evaluate")
    check(page.locator("#step-status").inner_text() == "completed", "the step page shows the step's state")
    cache_key = [s for s in first["steps"] if s["name"] == "evaluate"][0]["cacheKey"]
    check(cache_key in page.content(), "the step page shows its cache key")
    check(page.locator('#metrics tr[data-metric="accuracy"]').count() == 1, "the step page lists its metrics")
    bundle = outputs["evaluate"]["bundle"]
    page.click(f'#outputs a[href="/artifacts/{bundle}"]')
    page.wait_for_url(BASE + f"/artifacts/{bundle}")
    check("ModelBundle" in page.locator("dl.facts").first.inner_text(), "the artifact page shows the bundle's type")
    card = page.frame_locator("#report")
    check("Model card: penguins" in card.locator("h1").inner_text(), "the model card is rendered in the page")
    shot(page, "artifact-model-card")
    page.click(f'a[href="/artifacts/{bundle}/lineage"]')
    page.wait_for_url(BASE + f"/artifacts/{bundle}/lineage")
    lineage = page.locator("svg.graph")
    check(lineage.locator(f'g.node.root[data-node="{bundle}"]').count() == 1, "the lineage is centred on the bundle")
    check(lineage.locator('g.node[data-node^="step-"]').count() >= 8, "its producing steps are in the lineage")
    check(lineage.locator('g.node[data-node="model:penguins@1"]').count() == 1, "the lineage reaches penguins@1")
    shot(page, "lineage")
    page.click('svg.graph a[href="/models/penguins#v1"]')
    page.wait_for_url(BASE + "/models/penguins#v1")
    check(page.locator("#versions tr#v1").get_attribute("data-stage") == "production", "v1 is in production")
    check("KB" in page.locator("#v1").inner_text(), "v1's profile (bundle size, latency) is beside its metrics")
    shot(page, "model")

    # Promote v2 from the page, then roll back.
    page.locator("#v2 select[name=stage]").select_option("production")
    page.locator("#v2 input[name=reason]").fill("better on the new data")
    page.locator("#v2 button[type=submit]").click()
    page.wait_for_selector("p.notice")
    check(page.locator("p.notice").inner_text() == "Moved v2 to production.", "promoting says what happened")
    check(page.locator("#v2").get_attribute("data-stage") == "production", "v2 is in production after promotion")
    check(page.locator("#v1").get_attribute("data-stage") == "archived", "v1 is archived after promotion")
    history = page.locator("#history tbody tr").first.inner_text()
    check("better on the new data" in history and "production" in history, "the stage history records why")
    page.locator("#rollback-form input[name=reason]").fill("v2 misbehaves")
    page.locator("#rollback-form button").click()
    page.wait_for_selector("p.notice >> text=Rolled back")
    check(page.locator("#v1").get_attribute("data-stage") == "production", "roll back restores v1")
    registry = api("/api/models/penguins")
    check(registry["stageChanges"][-1]["reason"] == "v2 misbehaves", "the registry recorded the roll back")

    # Reports and tables.
    page.goto(BASE + f"/artifacts/{outputs['statistics']['report']}")
    report = page.frame_locator("#report")
    check("344 rows" in report.locator("body").inner_text(), "the statistics report is shown inline")
    escaped = page.frame(url=lambda url: url.endswith("/view")).evaluate(
        "() => { try { return parent.document.title; } catch (e) { return 'blocked'; } }")
    check(escaped == "blocked", "a report cannot reach the dashboard's page")
    shot(page, "artifact-statistics")
    page.goto(BASE + f"/artifacts/{outputs['ingest']['table']}")
    check(page.locator("#schema tbody tr").count() == 8, "a table shows its schema")
    check(page.locator("#rows tbody tr").count() == 20, "a table shows its first rows")
    shot(page, "artifact-table")
    page.goto(BASE + f"/artifacts/{outputs['validate']['output']}")
    check("passed" in page.locator("h2", has_text="Validation").inner_text(), "the validation result is shown")
    page.goto(BASE + f"/artifacts/{outputs['evaluate']['report']}")
    check(page.frame_locator("#report").locator("svg").count() > 0, "the evaluation report draws its curves")
    shot(page, "artifact-evaluation")

    # Compare two runs that trained differently.
    page.goto(BASE + "/runs")
    for run_id in (first_id, by_status["completed"][0]):
        page.check(f'input[name=runs][value="{run_id}"]')
    page.click("text=Compare selected runs")
    page.wait_for_url(BASE + "/compare?**")
    check(page.locator('#comparison tr.differs[data-key="train.rounds"]').count() == 1, "compare marks train.rounds")
    check(page.locator('svg.chart[data-metric="train.train_loss"] polyline').count() == 2,
          "training loss is drawn for both runs")
    shot(page, "compare")

    page.goto(BASE + "/datasets")
    dataset_row = page.locator("#datasets tbody tr[data-dataset]")
    check(dataset_row.count() == 1, "one dataset version")
    check("penguins@1" in dataset_row.inner_text() and "penguins@2" in dataset_row.inner_text(),
          "the dataset lists the models trained on it")
    shot(page, "datasets")

    # A run started while the page is open appears and finishes without a reload.
    page.goto(BASE + "/runs")
    page.evaluate("window.__stayed = 42")
    before = page.locator("#runs tbody tr[data-run]").count()
    started = subprocess.run([SLUICE, "demo", "--set", "train.rounds=30"], cwd=PROJECT, capture_output=True, text=True)
    check(started.returncode == 0, "a new run completes: " + started.stderr[-300:])
    page.wait_for_function(
        f"document.querySelectorAll('#runs tbody tr[data-run]').length === {before + 1}", timeout=30000)
    newest = api("/api/runs")["runs"][0]["id"]
    page.wait_for_selector(f'#runs tr[data-run="{newest}"][data-status="completed"]', timeout=30000)
    check(page.evaluate("window.__stayed") == 42, "the new run appeared live, without reloading the page")
    check(int(page.evaluate("document.body.dataset.refreshed || 0")) >= 1, "the page refreshed from the event stream")

    check(errors == [], f"no script errors: {errors}")
    browser.close()

print(f"{len(failures)} failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
