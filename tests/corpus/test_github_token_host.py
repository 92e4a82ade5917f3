"""The stored GitHub token follows only its host: a changed base URL, a redirect or a link elsewhere never
receives it; internal addresses are refused unless allow-listed; errors do not repeat other servers' bodies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from corpus.forms import GitHubSettingsForm
from corpus.github.client import GitHubClient, GitHubError, UnsafeURL, check_api_url, same_api
from corpus.models import GitHubSettings

STORED = "ghp_stored_for_server_a"
ENV_TOKEN = "ghp_from_the_environment"


class Recorder:
    """A tiny HTTP server that records each request's path and Authorization header and answers by rule."""

    def __init__(self, answer=None):
        self.seen: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = (answer or recorder.default)(self.path)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                # GraphQL is a POST; its request carries the token like any other.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def default(path):
        body = json.dumps({"total_count": 0, "items": []}).encode()
        return 200, {"Content-Type": "application/json"}, body

    @property
    def tokens(self) -> list[str | None]:
        return [auth for _, auth in self.seen]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    made = [Recorder(), Recorder()]
    yield made
    for server in made:
        server.close()


def test_same_api_compares_scheme_host_port_and_path():
    assert same_api("https://api.github.com", "https://API.github.com:443/")
    assert not same_api("https://api.github.com", "http://api.github.com")
    assert not same_api("https://ghe.example.com/api/v3", "https://ghe.example.com/api/v4")
    assert not same_api("https://api.github.com", "https://api.github.com.evil.example")


def test_the_stored_token_belongs_to_the_url_it_was_entered_for(db, settings):
    settings.GITHUB_API_URL, settings.GITHUB_TOKEN = "https://api.github.com", ENV_TOKEN
    row = GitHubSettings.load()
    row.api_url, row.token = "https://ghe.example.com/api/v3", STORED
    row.save()
    assert row.token_api_url == "https://ghe.example.com/api/v3"
    assert row.token_for("https://ghe.example.com/api/v3/") == STORED
    assert row.token_for("https://evil.example") == ""  # neither the stored nor the environment's token
    assert row.token_for("https://api.github.com") == ENV_TOKEN  # GITHUB_TOKEN goes to GITHUB_API_URL only
    row.api_url = "https://evil.example"  # changed without entering a token again: the token is dropped
    row.save()
    assert row.token == "" and row.effective_token == ""


def test_a_new_base_url_does_not_receive_the_stored_token_on_search(operator_client, servers, settings):
    a, b = servers
    settings.GITHUB_TOKEN = ENV_TOKEN  # GITHUB_API_URL stays api.github.com
    operator_client.post(
        reverse("corpus:settings"), {"api_url": a.url, "token": STORED, "allowed_licenses": "MIT", "go_only": "on"}
    )
    operator_client.get(reverse("corpus:add"), {"q": "kvstore"})
    assert a.tokens == [f"Bearer {STORED}"]
    # The operator points the dashboard at their own server and searches: no token arrives there.
    operator_client.post(reverse("corpus:settings"), {"api_url": b.url, "allowed_licenses": "MIT", "go_only": "on"})
    operator_client.get(reverse("corpus:add"), {"q": "kvstore"})
    assert b.seen and b.tokens == [None]
    assert GitHubSettings.load().token == ""


def test_a_redirect_to_another_host_is_not_followed(servers):
    a, b = servers
    redirecting = Recorder(lambda path: (302, {"Location": b.url + "/steal" + path}, b""))
    try:
        client = GitHubClient(redirecting.url, STORED, max_retries=0)
        with pytest.raises(GitHubError, match="redirected outside"):
            client.get_json("/repos/a/b")
        assert b.seen == []
    finally:
        redirecting.close()


def test_a_redirect_inside_the_api_is_followed_with_the_token(servers):
    a, _ = servers
    moved = Recorder(
        lambda path: (
            (301, {"Location": "/repositories/7"}, b"")
            if path.startswith("/repos/")
            else (200, {"Content-Type": "application/json"}, b'{"id": 7}')
        )
    )
    try:
        client = GitHubClient(moved.url, STORED, max_retries=0)
        assert client.get_json("/repos/a/b").data == {"id": 7}
        assert moved.tokens == [f"Bearer {STORED}"] * 2
    finally:
        moved.close()


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (400, "text/html", b"<html>internal admin panel SECRET-INTERNAL</html>"),
        (403, "text/plain", b"SECRET-INTERNAL"),
        (200, "text/html", b"<html>SECRET-INTERNAL</html>"),
    ],
)
def test_errors_do_not_repeat_the_body_of_an_answer(status, content_type, body):
    server = Recorder(lambda path: (status, {"Content-Type": content_type}, body))
    try:
        client = GitHubClient(server.url, None, max_retries=0)
        with pytest.raises(GitHubError) as caught:
            client.get_json("/repos/a/b")
        assert "SECRET-INTERNAL" not in str(caught.value)
    finally:
        server.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://localhost:8000",
        "http://[::1]:80",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3",
        "http://192.168.0.1",
        "http://0.0.0.0:5432",
        "ftp://api.github.com",
        "http://user:pass@api.github.com",
    ],
)
def test_internal_or_odd_base_urls_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_api_url(url, allowed_hosts=())


def test_an_allow_listed_host_is_accepted():
    check_api_url("http://127.0.0.1:8765", allowed_hosts=["127.0.0.1"])
    check_api_url("http://LOCALHOST:8000", allowed_hosts=["localhost"])


def test_the_client_refuses_an_internal_host_before_sending_anything(servers):
    a, _ = servers
    client = GitHubClient(a.url, STORED, allowed_hosts=[])
    with pytest.raises(UnsafeURL):
        client.get_json("/rate_limit")
    assert a.seen == []


def test_the_settings_form_refuses_internal_hosts_unless_allowed(db, settings):
    settings.HRGC_GITHUB_ALLOWED_HOSTS = []
    form = GitHubSettingsForm({"api_url": "http://127.0.0.1:8765", "allowed_licenses": "MIT"})
    assert not form.is_valid() and "internal address" in form.errors["api_url"][0]
    settings.HRGC_GITHUB_ALLOWED_HOSTS = ["127.0.0.1"]
    assert GitHubSettingsForm({"api_url": "http://127.0.0.1:8765", "allowed_licenses": "MIT"}).is_valid()


def test_the_search_refuses_an_internal_host_that_is_not_allowed(operator_client, servers, settings):
    a, _ = servers
    row = GitHubSettings.load()
    row.api_url = a.url
    row.save()
    settings.HRGC_GITHUB_ALLOWED_HOSTS = []
    page = operator_client.get(reverse("corpus:add"), {"q": "x"}).content.decode()
    assert "internal address" in page and a.seen == []


def test_a_fetch_job_for_another_api_url_does_not_carry_the_stored_token(db, servers, settings):
    """`fetch_github --api-url B` (or a retry of such a job) while the token was entered for A."""
    from corpus.services import fetch_jobs
    from hrgc_site.jobs import claim, finish

    a, b = servers
    settings.GITHUB_TOKEN = ENV_TOKEN
    settings.HRGC_GITHUB_ALLOWED_HOSTS = []  # B's host is allowed because the command line named it
    row = GitHubSettings.load()
    row.api_url, row.token = a.url, STORED
    row.save()
    job = fetch_jobs.create_fetch_job(kind="github", targets=["acme/widgets"], api_url=b.url, enqueue=False)
    job = claim(type(job), job.pk)
    status, message = fetch_jobs.run_fetch(job)
    finish(job, status, message)
    assert b.seen and set(b.tokens) == {None}, b.seen
    assert a.seen == []


def test_a_fetch_job_on_the_configured_api_sends_its_token(db, servers):
    from corpus.services import fetch_jobs
    from hrgc_site.jobs import claim, finish

    a, _ = servers
    row = GitHubSettings.load()
    row.api_url, row.token = a.url, STORED
    row.save()
    job = fetch_jobs.create_fetch_job(kind="github", targets=["acme/widgets"], enqueue=False)
    job = claim(type(job), job.pk)
    finish(job, *fetch_jobs.run_fetch(job))
    assert a.seen and set(a.tokens) == {f"Bearer {STORED}"}
