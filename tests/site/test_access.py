"""Walk every URL the project defines: anonymous → login; viewers read but get 403 on every action;
operators are allowed; forms without a CSRF token are refused."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import make_export_with_file, make_lineage

OBJECT_ID = 424242
# POST endpoints that only read: a viewer may use them.
VIEWER_POSTS = {"models_registry:playground_generate", "training:tokenizer_encode", "logout", "login"}
# Pages that are only a form to start something: viewers get 403 for them too.
OPERATOR_PAGES = {"training:run_new", "training:run_clone"}
SKIP_PREFIXES = ("admin", "accounts", "static")
PARAM_RE = re.compile(r"<(?:(\w+):)?(\w+)>")


def _walk(resolver, prefix="", namespace=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern)


def _fill(route: str) -> str:
    def value(match):
        converter, name = match.groups()
        if converter == "int":
            return str(OBJECT_ID)
        if name == "name":
            return "model.gguf"
        return "x"

    return "/" + PARAM_RE.sub(value, route).lstrip("^").rstrip("$")


def project_urls() -> list[tuple[str, str]]:
    urls = [(name, _fill(route)) for name, route in _walk(get_resolver())]
    return [(name, url) for name, url in urls if not url.strip("/").startswith(SKIP_PREFIXES)]


@pytest.fixture
def world(db):
    """One object of every kind, all with the same id, so every <int:...> in a URL finds something."""
    from corpus.models import FetchJob, PullRequest, Repository
    from training.models import Checkpoint

    run = make_lineage("acc")
    repo = Repository.objects.create(pk=OBJECT_ID, full_name="acme/widgets")
    PullRequest.objects.create(pk=OBJECT_ID, repository=repo, number=1, title="Fix it")
    FetchJob.objects.create(pk=OBJECT_ID, targets=["acme/widgets"], status="finished")
    _clone_with_id(run)
    Checkpoint.objects.create(pk=OBJECT_ID, run_id=OBJECT_ID, step=10, path="/nonexistent")
    export = make_export_with_file(run, b"GGUF-bytes")
    type(export).objects.filter(pk=export.pk).update(id=OBJECT_ID, run_id=OBJECT_ID)


def _clone_with_id(run):
    """Copies of the lineage rows under OBJECT_ID (primary keys cannot be changed in place safely)."""
    snapshot, tokenizer, dataset = run.dataset.snapshot, run.dataset.tokenizer, run.dataset
    for obj, extra in (
        (snapshot, {}),
        (tokenizer, {"snapshot_id": OBJECT_ID}),
        (dataset, {"snapshot_id": OBJECT_ID, "tokenizer_id": OBJECT_ID}),
        (run, {"dataset_id": OBJECT_ID}),
    ):
        obj.pk = OBJECT_ID
        obj.id = OBJECT_ID
        obj.name = f"{obj.name}-x"
        for key, val in extra.items():
            setattr(obj, key, val)
        obj.save(force_insert=True)


def test_there_are_urls_to_check():
    names = {name for name, _ in project_urls()}
    assert {"home", "system", "corpus:repositories", "training:runs", "models_registry:models"} <= names


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_sent_to_login_everywhere(client, world, method):
    for name, url in project_urls():
        response = getattr(client, method)(url)
        assert response.status_code == 302, (name, url, response.status_code)
        assert "/accounts/login/" in response["Location"], (name, url)


def test_viewer_reads_every_page_and_cannot_act(viewer_client, world):
    for name, url in project_urls():
        response = viewer_client.get(url)
        allowed = (403,) if name in OPERATOR_PAGES else (200, 302, 400, 404, 405, 409)
        assert response.status_code in allowed, (name, url, response.status_code)
        if name in VIEWER_POSTS:
            continue
        response = viewer_client.post(url)
        assert response.status_code in (403, 405), (name, url, response.status_code)


def test_operator_is_allowed_everywhere(operator_client, world):
    for name, url in project_urls():
        for method in ("get", "post"):
            response = getattr(operator_client, method)(url)
            assert response.status_code not in (403, 500), (name, method, url, response.status_code)


def test_forms_without_csrf_token_are_refused(operator_user, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    for name, url in project_urls():
        response = client.post(url)
        assert response.status_code in (403, 405), (name, url, response.status_code)
