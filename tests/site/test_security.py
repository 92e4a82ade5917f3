"""Serving on a network: proxy/cookie/HSTS switches, login throttling, no password-reset views, the admin
never shows the token, links built from other servers' data are http(s) only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse


def make_user(username: str, password: str, superuser: bool = False):
    from django.contrib.auth.models import User

    if superuser:
        return User.objects.create_superuser(username, password=password)
    return User.objects.create_user(username, password=password)


ROOT = Path(__file__).resolve().parents[2]
NAMES = [
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_SSL_REDIRECT",
]


def _settings_with(env: dict[str, str]) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {NAMES!r}}}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HRGC_") or k == "HRGC_DATA_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "hrgc_site.test_settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_network_switches_come_from_the_environment():
    default = _settings_with({})
    assert default["SECURE_PROXY_SSL_HEADER"] is None
    assert not default["SESSION_COOKIE_SECURE"] and not default["CSRF_COOKIE_SECURE"]
    assert default["SECURE_HSTS_SECONDS"] == 0 and not default["SECURE_SSL_REDIRECT"]
    served = _settings_with(
        {
            "HRGC_BEHIND_PROXY": "1",
            "HRGC_SECURE_COOKIES": "1",
            "HRGC_HSTS_SECONDS": "31536000",
            "HRGC_SSL_REDIRECT": "1",
        }
    )
    assert served["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert served["SESSION_COOKIE_SECURE"] and served["CSRF_COOKIE_SECURE"]
    assert served["SECURE_HSTS_SECONDS"] == 31536000 and served["SECURE_SSL_REDIRECT"]


def test_hsts_header_is_sent_on_https_when_configured(client, settings, db):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    assert response["Strict-Transport-Security"].startswith("max-age=3600")


def test_password_reset_views_are_not_mounted(client, db):
    for name in ("password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=["a", "b"] if name == "password_reset_confirm" else [])
    assert client.get("/accounts/password_reset/").status_code in (302, 404)
    assert client.post("/accounts/password_reset/", {"email": "a@example.com"}).status_code in (302, 404)


@pytest.fixture
def fresh_cache(db):
    cache.clear()
    yield
    cache.clear()


def test_login_is_throttled_per_user_name_and_address(client, settings, fresh_cache):
    settings.HRGC_LOGIN_MAX_FAILURES = 3
    user = make_user("alice", password="right-password-1")
    url = reverse("login")
    for _ in range(3):
        assert client.post(url, {"username": "alice", "password": "wrong"}).status_code == 200
    locked = client.post(url, {"username": "alice", "password": "right-password-1"})
    assert locked.status_code == 429 and "Too many failed attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session  # the right password does not get in while locked
    other = client.post(url, {"username": "alice", "password": "right-password-1"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


def test_a_successful_login_clears_the_failures(client, settings, fresh_cache):
    settings.HRGC_LOGIN_MAX_FAILURES = 3
    make_user("bob", password="right-password-1")
    url = reverse("login")
    for _ in range(2):
        client.post(url, {"username": "bob", "password": "wrong"})
    assert client.post(url, {"username": "bob", "password": "right-password-1"}).status_code == 302
    client.logout()
    for _ in range(2):
        assert client.post(url, {"username": "bob", "password": "wrong"}).status_code == 200
    assert client.post(url, {"username": "bob", "password": "right-password-1"}).status_code == 302


def test_many_user_names_from_one_address_are_throttled(client, settings, fresh_cache):
    settings.HRGC_LOGIN_MAX_FAILURES_PER_ADDRESS = 4
    url = reverse("login")
    for number in range(4):
        assert client.post(url, {"username": f"guess{number}", "password": "x"}).status_code == 200
    assert client.post(url, {"username": "guess-next", "password": "x"}).status_code == 429


def test_admin_never_shows_the_token(db, client):
    from corpus.models import GitHubSettings

    admin = make_user("root", password="root-password-1", superuser=True)
    client.force_login(admin)
    row = GitHubSettings.load()
    row.token, row.token_api_url = "ghp_admin_must_not_show", "https://api.github.com"
    row.save()
    for url in (
        reverse("admin:corpus_githubsettings_change", args=[row.pk]),
        reverse("admin:corpus_githubsettings_changelist"),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert "ghp_admin_must_not_show" not in page.content.decode()
    assert (
        "stored for https://api.github.com"
        in client.get(reverse("admin:corpus_githubsettings_change", args=[row.pk])).content.decode()
    )
    # Saving a new API URL in the admin drops the token entered for the old one.
    response = client.post(
        reverse("admin:corpus_githubsettings_change", args=[row.pk]),
        {
            "api_url": "https://ghe.example.com/api/v3",
            "allowed_licenses": row.allowed_licenses,
            "go_only": "on",
            "concurrency": 4,
            "max_file_bytes": 1000000,
        },
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.api_url == "https://ghe.example.com/api/v3" and row.token == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/a/b/pull/1", "https://github.com/a/b/pull/1"),
        ("http://ghe.local/a/b/pull/2", "http://ghe.local/a/b/pull/2"),
        ("javascript:alert(document.cookie)", ""),
        ("JavaScript:alert(1)", ""),
        (" javascript:alert(1)", ""),
        ("data:text/html,<script>alert(1)</script>", ""),
        ("file:///srv/clones/x@abc", ""),
        ("https:evil", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_http_url_filter(url, expected):
    assert Template("{% load hrgc %}{{ url|http_url }}").render(Context({"url": url})) == expected


def test_a_javascript_source_url_is_not_a_link(viewer_client):
    from corpus.models import PullRequest, Repository

    repo = Repository.objects.create(full_name="evil/repo")
    pull = PullRequest.objects.create(
        repository=repo, number=1, title="Looks fine", source_url="javascript:fetch('/admin/')"
    )
    good = PullRequest.objects.create(
        repository=repo, number=2, title="Fine", source_url="https://github.com/evil/repo/pull/2"
    )
    page = viewer_client.get(pull.get_absolute_url()).content.decode()
    assert 'href="javascript:' not in page and "javascript:fetch" in page  # shown as text, not linked
    page = viewer_client.get(good.get_absolute_url()).content.decode()
    assert 'href="https://github.com/evil/repo/pull/2"' in page


def test_behind_a_proxy_the_address_is_the_one_the_proxy_appended(client, settings, fresh_cache):
    settings.HRGC_LOGIN_MAX_FAILURES = 2
    settings.HRGC_BEHIND_PROXY = True
    make_user("carol", password="right-password-1")
    url = reverse("login")
    for _ in range(2):  # a client cannot pick its address by sending its own X-Forwarded-For first
        client.post(url, {"username": "carol", "password": "x"}, HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4")
    blocked = client.post(url, {"username": "carol", "password": "x"}, HTTP_X_FORWARDED_FOR="7.7.7.7, 1.2.3.4")
    assert blocked.status_code == 429
    other = client.post(url, {"username": "carol", "password": "right-password-1"}, HTTP_X_FORWARDED_FOR="5.6.7.8")
    assert other.status_code == 302
