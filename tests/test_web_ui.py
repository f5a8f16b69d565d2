"""The Temporal Web UI tells a batch's story without the CLI: headless Chromium reads it.

A batch is enforced and rolled back on the sandbox through the starter, as a person
does; then Chromium opens the dev server's own Web UI on each workflow's page, as a
person would, and the test reads what it rendered: the execution's status, the summary,
the details (the plan: counts per kind, the blocked artists, the policy, where the undo
goes) and the current details (the batch's counts in human words, the rollback's link
back to the batch it undid).

Chromium is Debian's ``chromium``, driven by Playwright (its own browser download is
never used). ``scripts/install-chromium.sh`` installs it where it is missing (``make
pytest`` runs it first; this module runs it when Chromium is still missing); the test is
skipped, with the script's reason, only where it cannot be installed.

The dev server here is one of this module's own, with its Web UI on a free port: the
session's server runs without one. Set ``ENFORCER_WEB_UI_SCREENSHOT`` to a path to keep
the screenshot of the batch's page (``docs/web-ui-batch.png`` is made so).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect, sync_playwright
from temporalio.testing import WorkflowEnvironment

from tests.support.cli import Cli
from tests.support.temporal import free_port, start_dev_server, temporal_schedule_list
from tests.test_starter_enforce import planned
from tests.workflows.test_keep_enforced import until
from workflows.enforcement import enforcement_workflow_id
from workflows.rollback import rollback_workflow_id

INSTALL_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-chromium.sh"
SCREENSHOT_VARIABLE = "ENFORCER_WEB_UI_SCREENSHOT"
RENDER_TIMEOUT_MS = 20_000
"""How long the Web UI (a JavaScript app) may take to render a page and its metadata."""
RELOAD_PATIENCE = 60.0
"""Seconds a page is reloaded for news that reaches the Web UI late (the Schedules list
is read from Temporal's visibility store, which follows the schedule with a delay)."""
KIND_NAMES = {
    "liked_song": "liked songs",
    "playlist_item": "playlist entries",
    "saved_album": "saved albums",
    "followed_artist": "followed artists",
}


@dataclass(frozen=True)
class WebUi:
    env: WorkflowEnvironment
    url: str


@pytest.fixture(scope="module")
async def web_ui() -> AsyncIterator[WebUi]:
    """A dev server of this module's own, with its Web UI (the session's has none)."""
    ui_port = free_port()
    env = await start_dev_server(ui_port=ui_port)
    try:
        yield WebUi(env, f"http://127.0.0.1:{ui_port}")
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
def temporal_env(web_ui: WebUi) -> WorkflowEnvironment:
    """The starter and its worker (``enforcer_cli``) use the server the Web UI shows."""
    return web_ui.env


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium, installed by the project's script where it is missing."""
    found = shutil.which("chromium")
    if found is None:
        tried = subprocess.run(  # noqa: S603 - our own script
            [str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False
        )
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"no Chromium for the Web UI test: {tried.stderr.strip()}")
    return found


@contextlib.contextmanager
def browser_of(chromium: str) -> Iterator[Browser]:
    """A headless Chromium under Playwright. Playwright runs an event loop of its own in
    this thread while it is open: the starter (which runs its own) must have finished."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def open_metadata(browser: Browser, web_ui: WebUi, workflow_id: str) -> Page:
    """The workflow's page, opened as a person opens it, on its "User Metadata" tab."""
    page = browser.new_page(viewport={"width": 1280, "height": 1280})
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    page.goto(f"{web_ui.url}/namespaces/default/workflows/{quote(workflow_id, safe='')}")
    page.get_by_text("User Metadata", exact=True).click()
    return page


def panel(page: Page, name: str) -> FrameLocator:
    """One of the tab's panels (``summary``, ``details``, ``current-details``): the UI
    renders each one's Markdown in a frame of its own."""
    return page.frame_locator(f"#user-metadata-{name}")


def shown(page: Page, name: str, *texts: str) -> str:
    """Waits until panel ``name`` shows each of ``texts``; the panel's text."""
    body = panel(page, name).locator("body")
    for text in texts:
        expect(body).to_contain_text(text, timeout=RENDER_TIMEOUT_MS)
    return body.inner_text()


def per_kind(plan: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for action in plan["actions"]:
        counts[action["entity_type"]] = counts.get(action["entity_type"], 0) + 1
    return counts


def test_the_web_ui_shows_a_batchs_status_summary_and_details(
    enforcer_cli: Cli, web_ui: WebUi, chromium: str, tmp_path: Path
) -> None:
    plan = planned(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", plan["id"])
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--watch")
    enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    with browser_of(chromium) as browser:
        the_batch_page_tells_it(browser, web_ui, plan, tmp_path)
        the_rollback_page_tells_it(browser, web_ui, plan)


def the_batch_page_tells_it(
    browser: Browser, web_ui: WebUi, plan: dict[str, Any], tmp_path: Path
) -> None:
    (blocked,) = (artist["name"] for artist in plan["blocklist"])
    batch_id = enforcement_workflow_id("alice", plan["id"])
    rollback_id = rollback_workflow_id(batch_id)
    kinds = per_kind(plan)
    removed = sum(kinds.values())
    page = open_metadata(browser, web_ui, batch_id)
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    shown(page, "summary", f"Remove {removed} items for alice")
    details = shown(
        page,
        "details",
        f"Plan {plan['id']} for account alice",
        f"Removes {removed} items",
        f"Blocked artists (1): {blocked}",
        "Policy: featured",
        f"puts it all back, as {rollback_id}",
    )
    for kind, count in kinds.items():
        assert f"{KIND_NAMES[kind]}: {count} of " in details
    current = shown(page, "current-details", "status: completed", "requests to Spotify: ")
    for raw_name in KIND_NAMES:
        assert raw_name not in details + current, "a kind shown by its raw name"
    for kind, count in kinds.items():
        assert f"{KIND_NAMES[kind]}: {count} removed, 0 failed, 0 skipped of {count}" in current
    undo = panel(page, "details").get_by_role("link", name=rollback_id)
    expect(undo).to_have_attribute(
        "href", f"/namespaces/default/workflows/{quote(rollback_id, safe='')}"
    )
    screenshot = tmp_path / "web-ui-batch.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000, "the page rendered nearly empty"
    if target := os.environ.get(SCREENSHOT_VARIABLE):
        shutil.copyfile(screenshot, target)


def the_rollback_page_tells_it(browser: Browser, web_ui: WebUi, plan: dict[str, Any]) -> None:
    """The rollback's page names the batch it undid, with a link to it, and what came back."""
    batch_id = enforcement_workflow_id("alice", plan["id"])
    rollback_id = rollback_workflow_id(batch_id)
    removed = len(plan["actions"])
    page = open_metadata(browser, web_ui, rollback_id)
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    shown(page, "summary", f"Put back {removed} items of {batch_id} for alice")
    shown(page, "details", f"Undoes the whole batch {batch_id}", f"Puts back {removed} items")
    shown(
        page,
        "current-details",
        "status: completed",
        f"undid {batch_id}: {removed} of {removed} removed items back",
    )
    back = panel(page, "current-details").get_by_role("link", name=batch_id)
    expect(back).to_have_attribute(
        "href", f"/namespaces/default/workflows/{quote(batch_id, safe='')}"
    )


def test_the_web_ui_shows_the_schedule_its_last_run_and_that_pause_stopped_it(
    enforcer_cli: Cli, web_ui: WebUi, chromium: str
) -> None:
    cli = enforcer_cli
    # A day between runs: the one run here is the one `schedule trigger` starts.
    cli.ok("schedule", "create", "--every", "1d", "--settle", "0")
    try:
        until("temporal schedule list", lambda: "keep/alice" in temporal_schedule_list(web_ui.env))
        assert "runs now" in cli.ok("schedule", "trigger")
        run = until("the triggered run to end", lambda: ended_runs(cli))[-1]
        assert run["state"] == "completed", run
        assert "is paused" in cli.ok("schedule", "pause")
        with browser_of(chromium) as browser:
            the_schedules_page_lists_it_paused(browser, web_ui, run["run_id"])
            the_schedule_page_shows_it_paused_and_its_run(browser, web_ui, run["run_id"])
    finally:
        cli("schedule", "delete")


def ended_runs(cli: Cli) -> list[dict[str, Any]] | None:
    """The schedule's recent runs once there is one and none is going on."""
    runs: list[dict[str, Any]] = json.loads(cli.ok("schedule", "show", "--format", "json"))[
        "recent_runs"
    ]
    return runs if runs and all(run["state"] != "running" for run in runs) else None


def reloaded_until(page: Page, url: str, shows_it: Callable[[], None]) -> None:
    """Opens ``url`` again until ``shows_it`` (Playwright's expectations) holds: a page of
    the Web UI shows what it read when it loaded, and is not refreshed by itself."""
    deadline = time.monotonic() + RELOAD_PATIENCE
    while True:
        page.goto(url)
        try:
            shows_it()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def the_schedules_page_lists_it_paused(browser: Browser, web_ui: WebUi, run_id: str) -> None:
    """The Schedules page: a row for keep/alice, paused, its workflow type, its last run."""
    page = browser.new_page(viewport={"width": 1280, "height": 1280})
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    row = page.get_by_role("row").filter(has_text="keep/alice")

    def shows_it() -> None:
        expect(row.get_by_test_id("execution-status")).to_have_text("Paused", timeout=5_000)

    reloaded_until(page, f"{web_ui.url}/namespaces/default/schedules", shows_it)
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name="keep/alice", exact=True)).to_have_attribute(
        "href", f"/namespaces/default/schedules/{quote('keep/alice', safe='')}"
    )
    expect(row).to_contain_text("KeepEnforcedWorkflow")
    expect(row).to_contain_text("Every 1 day(s)")
    last_run = row.locator(f'a[href^="/namespaces/default/workflows/{quote(run_id, safe="")}/"]')
    expect(last_run).to_have_count(1)
    page.close()


def the_schedule_page_shows_it_paused_and_its_run(
    browser: Browser, web_ui: WebUi, run_id: str
) -> None:
    """keep/alice's own page: paused (by whom, in its note), its policy, and the run that
    `schedule trigger` started among its recent runs, completed, with a link to it."""
    page = browser.new_page(viewport={"width": 1280, "height": 1280})
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    recent = page.get_by_role("tabpanel").get_by_role("listitem").filter(has_text=run_id)

    def shows_it() -> None:
        expect(recent.get_by_test_id("execution-status")).to_have_text("Completed", timeout=5_000)

    url = f"{web_ui.url}/namespaces/default/schedules/{quote('keep/alice', safe='')}"
    reloaded_until(page, url, shows_it)
    title = page.get_by_test_id("schedule-name")
    expect(title).to_contain_text("keep/alice")
    expect(title.get_by_test_id("execution-status")).to_have_text("Paused")
    expect(page.get_by_role("button", name="Unpause")).to_be_visible()
    expect(page.get_by_text("paused by starter.py schedule pause")).to_be_visible()
    body = page.locator("body")
    expect(body).to_contain_text(re.compile(r"Overlap Policy\s*Skip"))
    expect(body).to_contain_text(re.compile(r"Catchup Window Policy\s*1 day"))
    expect(recent.get_by_role("link", name=run_id)).to_have_attribute(
        "href", re.compile(f"^/namespaces/default/workflows/{re.escape(quote(run_id, safe=''))}/")
    )
    page.close()
