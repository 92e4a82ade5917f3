"""The curation walk in real Chromium: import the sample, search, read a PR, exclude, undo, snapshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from corpus.models import PullRequest, Snapshot
from corpus.selectors import filtered_pull_requests
from corpus.services.snapshots import snapshot_file_sha256

pytestmark = pytest.mark.e2e
SCREENSHOT = Path(__file__).resolve().parents[2] / "static" / "screenshots" / "pr.png"


def test_import_search_read_curate_and_snapshot(operator_page, live_stack):
    page, url = operator_page, live_stack.url

    # Import the sample corpus with the button; the real worker runs it and the page follows live.
    page.goto(url + "/corpus/add/")
    page.click("#import-sample button")
    page.wait_for_url(re.compile(r"/corpus/fetches/\d+/$"))
    expect(page.locator("#job-status")).to_have_text("finished", timeout=120_000)
    assert PullRequest.objects.count() > 20

    # Find a PR by full-text search and open it.
    page.goto(url + "/corpus/pulls/")
    page.fill("input[name=q]", "nil map panic")
    page.click("#filters button[type=submit]")
    expect(page.locator("#pullrequests tbody tr")).to_have_count(1)
    page.click("#pullrequests tbody a")
    expect(page.locator("h1")).to_contain_text("Fix nil map panic")
    expect(page.locator("#files .diff .add").first).to_be_visible()
    expect(page.locator("#plan")).to_contain_text("<INTENT:FIX>")
    page.click("#training-text-box summary")  # folded; unfolding loads it
    expect(page.locator("#training-text .sec-code")).to_contain_text("<CODE>")
    expect(page.locator("#training-text")).to_contain_text("<PR_TITLE> Fix nil map panic")
    page.set_viewport_size({"width": 1400, "height": 900})
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Exclude a batch (two checked rows of one repository) with a reason.
    page.goto(url + "/corpus/pulls/?repo=hrgc-samples%2Fcsvtool&included=yes&sort=number")
    boxes = page.locator("input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#bulk-apply")  # no reason: refused in the page, and the checked rows stay checked
    assert page.evaluate("document.getElementById('bulk-reason').validationMessage") == "Give a reason for excluding."
    assert boxes.nth(0).is_checked() and boxes.nth(1).is_checked()
    # Applying to everything matching the filter asks first; dismissed, nothing changes.
    page.check("#all-matching")
    page.fill("#bulk-reason", "everything")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#bulk-apply")
    page.wait_for_timeout(500)
    assert asked and asked[0].startswith("Exclude all ") and asked[0].endswith("pull requests matching this filter?")
    assert not PullRequest.objects.filter(excluded_reason="everything").exists()
    page.uncheck("#all-matching")
    page.fill("#bulk-reason", "too small to teach anything")
    page.click("#bulk-apply")
    expect(page.locator(".messages")).to_contain_text("2 pull requests excluded")
    assert PullRequest.objects.filter(excluded_reason="too small to teach anything").count() == 2

    # Exclude one more from its page, then undo that one from the history.
    page.goto(url + "/corpus/pulls/?repo=hrgc-samples%2Fkvstore&included=yes&sort=number")
    page.locator("#pullrequests tbody a").first.click()
    page.fill("#pr-curate input[name=reason]", "duplicate of upstream")
    page.click("#pr-curate button")
    expect(page.locator("#curation")).to_contain_text("duplicate of upstream")
    page.goto(url + "/corpus/curation/")
    # Two by hand, newest first. The sample import's rules exclude nothing (no duplicate changes, no blocked
    # PRs), so there is no automatic entry; tests/corpus/test_curation_history.py covers that entry.
    expect(page.locator("#curation tbody tr")).to_have_count(2)
    page.locator("#curation tbody tr").first.locator("button").click()
    expect(page.locator(".messages")).to_contain_text("Undone: 1 pull request is back")
    assert not PullRequest.objects.filter(excluded_reason="duplicate of upstream").exists()

    # Freeze a snapshot; its page shows the count and the sha256 of the JSONL file.
    page.goto(url + "/corpus/snapshots/")
    page.fill("#snapshot-form input[name=name]", "e2e-first")
    page.click("#snapshot-form button")
    expect(page.locator("#snap-status")).to_have_text("finished", timeout=60_000)
    snapshot = Snapshot.objects.get(name="e2e-first")
    included = filtered_pull_requests({}, force_included=True).count()
    assert snapshot.pr_count == included
    expect(page.locator("#snap-count")).to_have_text(str(included))
    expect(page.locator("#snap-sha256")).to_have_text(snapshot_file_sha256(snapshot.file_path))
