"""In real Chromium against gunicorn and a real cluster: log in, visit every section, check the workers."""

import pytest

pytestmark = pytest.mark.e2e

NAV = ["Corpus", "Tokenizers", "Datasets", "Runs", "Models", "Leaderboard", "System"]


def test_login_visit_every_section_and_check_workers(operator_page, live_stack):
    page = operator_page
    assert page.locator("#next-step").is_visible()
    for label in NAV:
        page.click(f"header nav >> text={label}")
        page.wait_for_load_state()
        assert page.locator("h1").first.is_visible()
        assert page.locator("header nav a.active").inner_text() == label
    page.click("header nav >> text=System")
    assert "postgresql" in page.locator("#database").inner_text()
    page.click("#check-workers")
    result = page.locator("#check-result.ok")
    result.wait_for(timeout=30_000)
    assert "answered" in result.inner_text()
    assert "PostgreSQL" in result.inner_text()


def test_wrong_password_is_refused(page, live_stack, operator_user):
    page.goto(live_stack.url + "/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", operator_user.username)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator("text=didn't match").is_visible()
