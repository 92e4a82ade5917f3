"""The GitHub-shaped server over real loopback HTTP: pagination, rate-limit headers, ETags, search, faults."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from corpus.github.server import GitHubShapedServer, fake_sha
from corpus.records import FileRecord, PRRecord, RepoRecord

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _pr(number: int, *, merged: bool = True) -> PRRecord:
    changed = FileRecord(
        "main.go",
        patch="@@ -1 +1 @@\n-a\n+b",
        before=f"package a // {number}\n",
        after=f"package b // {number}\n",
        additions=1,
        deletions=1,
    )
    return PRRecord(
        "acme/widgets",
        number,
        f"PR {number}",
        created_at=T0 + timedelta(days=number),
        merged_at=T0 + timedelta(days=number, hours=2) if merged else None,
        files=[changed],
    )


STORY = [
    (
        RepoRecord("acme/widgets", license_spdx="MIT", stars=900, description="Widgets for Go"),
        [_pr(n, merged=n != 3) for n in range(1, 6)],
    ),
    (RepoRecord("acme/gadgets", license_spdx="", stars=50, description="gadget tools"), []),
    (RepoRecord("other/fork", license_spdx="Apache-2.0", stars=2000, is_fork=True), []),
]


@pytest.fixture()
def server():
    with GitHubShapedServer(STORY, token="secret", per_page_max=2) as running:
        yield running


def _get(server, path, **kwargs):
    headers = {"Authorization": "Bearer secret", **kwargs.pop("headers", {})}
    return requests.get(server.base_url + path, headers=headers, timeout=5, **kwargs)


def test_pull_list_is_paged_with_link_headers_and_sorted(server):
    first = _get(
        server,
        "/repos/acme/widgets/pulls",
        params={"state": "closed", "sort": "updated", "direction": "desc", "per_page": 100},
    )
    assert [pr["number"] for pr in first.json()] == [5, 4]  # per_page capped at the server's maximum
    assert first.links["next"]["url"].endswith("page=2") and first.links["last"]["url"].endswith("page=3")
    numbers = [pr["number"] for pr in first.json()]
    url = first.links["next"]["url"]
    while url:
        page = requests.get(url, headers={"Authorization": "Bearer secret"}, timeout=5)
        numbers += [pr["number"] for pr in page.json()]
        url = page.links.get("next", {}).get("url")
    assert numbers == [5, 4, 3, 2, 1]
    assert _get(server, "/repos/acme/widgets/pulls").json() == []  # state defaults to open


def test_pull_json_carries_merge_state_and_derived_shas(server):
    pulls = _get(server, "/repos/acme/widgets/pulls", params={"state": "closed", "direction": "asc"}).json()
    assert [pr["number"] for pr in pulls] == [1, 2]
    assert pulls[0]["merged_at"] == "2024-03-02T02:00:00Z"
    assert pulls[0]["base"]["sha"] == fake_sha("acme/widgets", 1, "base")
    unmerged = _get(server, "/repos/acme/widgets/pulls/3").json()
    assert unmerged["state"] == "closed" and unmerged["merged_at"] is None


def test_rate_limit_headers_count_down_and_304_and_rate_limit_are_free(server):
    first = _get(server, "/repos/acme/widgets")
    remaining = int(first.headers["X-RateLimit-Remaining"])
    assert remaining == 4999 and first.headers["X-RateLimit-Used"] == "1"
    again = _get(server, "/repos/acme/widgets", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and int(again.headers["X-RateLimit-Remaining"]) == remaining
    limits = _get(server, "/rate_limit").json()
    assert limits["resources"]["core"]["remaining"] == remaining
    assert int(_get(server, "/repos/acme/gadgets").headers["X-RateLimit-Remaining"]) == remaining - 1


def test_unknown_repo_is_404_and_wrong_token_is_401(server):
    missing = _get(server, "/repos/acme/nothing")
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"
    wrong = requests.get(server.base_url + "/repos/acme/widgets", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["message"] == "Bad credentials"


def test_search_understands_qualifiers_and_words(server):
    def names(q):
        return [r["full_name"] for r in _get(server, "/search/repositories", params={"q": q}).json()["items"]]

    assert names("language:go stars:>100") == ["acme/widgets"]  # the fork is left out unless asked for
    assert names("language:go fork:true") == ["other/fork", "acme/widgets"]
    assert names("license:mit") == ["acme/widgets"]
    assert names("gadget") == ["acme/gadgets"]
    assert names("stars:10..100") == ["acme/gadgets"]
    repo = _get(server, "/repos/acme/gadgets").json()
    assert repo["license"] is None and _get(server, "/repos/acme/widgets").json()["license"]["spdx_id"] == "MIT"
    assert _get(server, "/search/repositories", params={"q": ""}).status_code == 422


def test_contents_serve_before_at_base_and_after_at_merge(server):
    base, merge = fake_sha("acme/widgets", 2, "base"), fake_sha("acme/widgets", 2, "merge")
    raw = {"Accept": "application/vnd.github.raw"}
    assert (
        _get(server, "/repos/acme/widgets/contents/main.go", params={"ref": base}, headers=raw).text
        == "package a // 2\n"
    )
    assert (
        _get(server, "/repos/acme/widgets/contents/main.go", params={"ref": merge}, headers=raw).text
        == "package b // 2\n"
    )
    as_json = _get(server, "/repos/acme/widgets/contents/main.go", params={"ref": merge}).json()
    assert base64.b64decode(as_json["content"]) == b"package b // 2\n"
    assert _get(server, "/repos/acme/widgets/contents/main.go", params={"ref": "0" * 40}).status_code == 404


def test_faults_switch_over_http(server):
    switched = requests.post(
        server.base_url + "/_hrgc/faults", json={"server_errors": 1, "secondary_limit": 1}, timeout=5
    )
    assert switched.json()["server_errors"] == 1
    assert _get(server, "/repos/acme/widgets").status_code in (502, 503)
    limited = _get(server, "/repos/acme/widgets")
    assert limited.status_code == 403 and limited.headers["Retry-After"] == "1"
    assert "secondary rate limit" in limited.json()["message"]
    assert _get(server, "/repos/acme/widgets").status_code == 200
    bad = requests.post(server.base_url + "/_hrgc/faults", json={"explode": True}, timeout=5)
    assert bad.status_code == 400 and "unknown fault" in bad.json()["message"]


def test_spent_primary_limit_answers_403_until_a_near_reset(server):
    server.faults.rate_limit_remaining = 0
    spent = _get(server, "/repos/acme/widgets")
    assert spent.status_code == 403 and spent.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(spent.headers["X-RateLimit-Reset"]) - time.time() <= 2
    server.faults.revoke_token = True
    assert _get(server, "/rate_limit").status_code == 401
