"""Importing merged pull requests from local clones: the sample repositories and odd content."""

import pytest

from corpus.gitimport import (
    GitImportError,
    full_name_from_url,
    iter_pull_requests,
    read_repository,
)
from corpus.sample.build_git import build_sample_repos
from corpus.sample.story import sample_story
from tests.corpus.support import git


@pytest.fixture(scope="module")
def story():
    return sample_story()


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("samples")
    build_sample_repos(dest)
    return dest


@pytest.fixture(scope="module")
def imported(sample_dir, story):
    result = {}
    for repo, _ in story:
        path = sample_dir / repo.full_name.split("/")[1]
        result[repo.full_name] = list(iter_pull_requests(path, repo.full_name, go_only=False))
    return result


def test_building_twice_reuses_the_repositories(sample_dir):
    heads = {p.name: git(p, "rev-parse", "HEAD") for p in sample_dir.iterdir()}
    index_times = {p.name: (p / ".git" / "index").stat().st_mtime_ns for p in sample_dir.iterdir()}
    paths = build_sample_repos(sample_dir)
    assert sorted(p.name for p in paths) == ["csvtool", "httprouter-lite", "kvstore"]
    assert {p.name: git(p, "rev-parse", "HEAD") for p in paths} == heads
    assert {p.name: (p / ".git" / "index").stat().st_mtime_ns for p in paths} == index_times
    assert git(sample_dir / "kvstore", "status", "--porcelain") == ""


def test_build_is_deterministic_across_folders(sample_dir, story, tmp_path):
    [path] = build_sample_repos(tmp_path, story=story[:1])
    assert git(path, "rev-parse", "HEAD") == git(sample_dir / "kvstore", "rev-parse", "HEAD")


def test_an_incomplete_repository_is_rebuilt(story, tmp_path):
    [path] = build_sample_repos(tmp_path, story=story[:1])
    complete = git(path, "rev-parse", "HEAD")
    git(path, "update-ref", "refs/heads/main", "HEAD~1")  # as if a build had stopped early
    build_sample_repos(tmp_path, story=story[:1])
    assert git(path, "rev-parse", "HEAD") == complete
    (tmp_path / "httprouter-lite").mkdir()
    with pytest.raises(FileExistsError):
        build_sample_repos(tmp_path, story=story[1:2])


def test_history_uses_both_merge_styles(sample_dir):
    subjects = git(sample_dir / "csvtool", "log", "--first-parent", "--format=%s").splitlines()
    assert "Merge pull request #2 from noah-b/fix-head-printing-one-row-too-many" in subjects
    assert "Report unknown column names instead of selecting the first column (#3)" in subjects
    assert subjects[-1] == "Initial commit"


def test_read_repository_names_licence_and_head(sample_dir, story):
    for expected, _ in story:
        path = sample_dir / expected.full_name.split("/")[1]
        repo = read_repository(path)
        assert repo.full_name == expected.full_name  # from the origin remote
        assert repo.license_spdx == expected.license_spdx
        assert repo.source == "git" and repo.default_branch == "main"
        assert repo.head_commit == git(path, "rev-parse", "HEAD").strip()
        assert repo.provenance == str(path.resolve())
    assert read_repository(sample_dir / "kvstore", full_name="me/kv").full_name == "me/kv"


def test_import_finds_every_pull_request_of_the_story(story, imported):
    for repo, expected in story:
        got = imported[repo.full_name]
        assert [p.number for p in got] == [p.number for p in expected]
        for pull, want in zip(got, expected, strict=True):
            assert (pull.title, pull.body, pull.author) == (want.title, want.body, want.author)
            assert (pull.created_at, pull.merged_at) == (want.created_at, want.merged_at)
            assert [f.path for f in pull.files] == sorted(f.path for f in want.files)
            wanted = {f.path: f for f in want.files}
            for changed in pull.files:
                other = wanted[changed.path]
                assert (changed.status, changed.previous_path) == (other.status, other.previous_path)
                assert (changed.before, changed.after) == (other.before, other.after)
                assert (changed.additions, changed.deletions) == (other.additions, other.deletions)
                assert changed.patch.startswith("@@") or changed.status == "renamed"
            assert pull.merge_commit and pull.base_commit and pull.head_commit
            assert pull.source_url.endswith("@" + pull.merge_commit)


def test_merge_and_squash_commits_are_told_apart(imported):
    pulls = imported["hrgc-samples/kvstore"]
    merged, squashed = pulls[0], pulls[1]
    assert merged.head_commit != merged.merge_commit  # the branch tip, second parent of the merge
    assert squashed.head_commit == squashed.merge_commit


def test_go_only_skips_the_readme_pull_request(sample_dir):
    numbers = [p.number for p in iter_pull_requests(sample_dir / "kvstore", "hrgc-samples/kvstore")]
    assert 12 not in numbers and 14 in numbers


def test_reimport_yields_only_what_is_new(sample_dir, imported):
    path = sample_dir / "httprouter-lite"
    stored = {p.number for p in imported["hrgc-samples/httprouter-lite"]}
    assert list(iter_pull_requests(path, "x/y", known_numbers=stored, go_only=False)) == []
    newest = max(stored)
    again = iter_pull_requests(path, "x/y", known_numbers=stored - {newest}, go_only=False)
    assert [p.number for p in again] == [newest]
    head = git(path, "rev-parse", "HEAD").strip()
    assert list(iter_pull_requests(path, "x/y", since_commit=head, go_only=False)) == []


def test_odd_content_is_flagged_not_fatal(tmp_path):
    repo = tmp_path / "odd"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.go").write_text("package odd\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    (repo / "latin1.go").write_bytes(b"package odd\n\n// caf\xe9 au lait\nvar X = 1\n")
    (repo / "blob.go").write_bytes(b"package odd\x00\x01\x02\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (repo / "big.go").write_text("package odd\n\n" + "var Y = 1\n" * 50)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add odd files (#7)\n\nSome body.", author="ana")
    git(repo, "rm", "-q", "logo.png")
    git(repo, "commit", "-q", "-m", "Direct push without a pull request")

    [pull] = iter_pull_requests(repo, "local/odd", max_file_bytes=100, max_patch_bytes=120)
    files = {f.path: f for f in pull.files}
    assert (pull.number, pull.title, pull.body, pull.author) == (7, "Add odd files", "Some body.", "ana")
    assert "caf\ufffd au lait" in files["latin1.go"].after and files["latin1.go"].before is None
    assert files["blob.go"].is_binary and files["blob.go"].after is None
    assert files["logo.png"].is_binary and files["logo.png"].patch == ""
    big = files["big.go"]
    assert big.truncated_at == 100 and len(big.after) == 100 and len(big.patch) == 120
    assert big.additions == 52  # counted on the whole patch, before truncation
    assert read_repository(repo).full_name == "local/odd"
    assert read_repository(repo).license_spdx == ""


def test_a_folder_that_is_not_a_repository_is_refused(tmp_path, sample_dir):
    with pytest.raises(GitImportError, match="is not a git repository"):
        read_repository(tmp_path)
    with pytest.raises(GitImportError, match="is not a git repository"):
        list(iter_pull_requests(tmp_path / "missing", "x/y"))
    with pytest.raises(GitImportError, match="is not a git repository"):
        read_repository(sample_dir / "kvstore" / ".git" / "refs")


@pytest.mark.parametrize(
    ("url", "full_name"),
    [
        ("https://github.com/golang/go.git", "golang/go"),
        ("https://github.com/golang/go", "golang/go"),
        ("git@github.com:spf13/cobra.git", "spf13/cobra"),
        ("ssh://git@gitlab.example.com:2222/group/sub/tool.git", "sub/tool"),
        ("/srv/mirrors/tool", None),
        ("file:///srv/mirrors/tool", None),
    ],
)
def test_full_name_from_remote_url(url, full_name):
    assert full_name_from_url(url) == full_name
