"""A pull request imported from a clone of a GitHub repository links to its page there."""

from __future__ import annotations

from corpus.gitimport import github_web_url, iter_pull_requests
from tests.corpus.support import git


def test_github_remotes_in_every_spelling():
    for url in (
        "https://github.com/gin-gonic/gin.git",
        "https://github.com/gin-gonic/gin",
        "ssh://git@github.com/gin-gonic/gin.git",
        "git@github.com:gin-gonic/gin.git",
        "https://token@github.com/gin-gonic/gin/",
    ):
        assert github_web_url(url) == "https://github.com/gin-gonic/gin", url


def test_other_hosts_and_paths_have_no_github_page():
    for url in ("https://gitlab.com/acme/web.git", "/srv/mirrors/web.git", "git@example.com:acme/web.git", ""):
        assert github_web_url(url) is None, url


def _repo_with_origin(path, origin: str):
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "main.go").write_text("package main\n\nfunc main() {}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Initial commit")
    (path / "main.go").write_text("package main\n\nfunc main() { println(1) }\n")
    git(path, "commit", "-q", "-am", "Print one (#7)", date="2024-02-03T04:05:06+00:00")
    git(path, "remote", "add", "origin", origin)
    return path


def test_an_import_from_a_github_clone_links_each_pull_request(tmp_path):
    path = _repo_with_origin(tmp_path / "gin", "git@github.com:gin-gonic/gin.git")
    (pull,) = list(iter_pull_requests(path, "gin-gonic/gin"))
    assert pull.number == 7 and pull.source_url == "https://github.com/gin-gonic/gin/pull/7"


def test_an_import_from_elsewhere_keeps_its_clone_provenance(tmp_path):
    path = _repo_with_origin(tmp_path / "web", "https://gitlab.com/acme/web.git")
    (pull,) = list(iter_pull_requests(path, "acme/web"))
    assert pull.source_url.startswith("file://") and pull.source_url.endswith("@" + pull.merge_commit)
