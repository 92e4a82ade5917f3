"""The offline sample story is a consistent, realistic history of three Go repositories."""

import re

import pytest

from corpus.golang import syntax_ok
from corpus.licenses import detect_spdx
from corpus.sample.build_git import apply_patch
from corpus.sample.story import sample_files, sample_story

GENERATED = re.compile(r"^// Code generated .* DO NOT EDIT\.$", re.MULTILINE)


@pytest.fixture(scope="module")
def story():
    return sample_story()


def all_pulls(story):
    return [pull for _, pulls in story for pull in pulls]


def test_three_licensed_repositories_with_about_35_pull_requests(story):
    assert {repo.full_name: repo.license_spdx for repo, _ in story} == {
        "hrgc-samples/kvstore": "MIT",
        "hrgc-samples/httprouter-lite": "Apache-2.0",
        "hrgc-samples/csvtool": "BSD-3-Clause",
    }
    assert all(10 <= len(pulls) <= 14 for _, pulls in story)
    assert 30 <= len(all_pulls(story)) <= 40


def test_numbers_increase_with_gaps_like_closed_pull_requests(story):
    for _, pulls in story:
        numbers = [pull.number for pull in pulls]
        assert numbers == sorted(set(numbers))
        assert numbers != list(range(numbers[0], numbers[0] + len(numbers)))


def test_before_text_is_the_previous_after_text(story):
    for repo, pulls in story:
        go_files = {path: text for path, text in sample_files(repo.full_name).items() if path.endswith(".go")}
        for pull in pulls:
            for changed in pull.files:
                if not changed.path.endswith(".go"):
                    assert changed.before is None and changed.after is None
                    continue
                assert changed.before == go_files.get(changed.previous_path or changed.path), (
                    pull.number,
                    changed.path,
                )
                go_files.pop(changed.previous_path, None)
                if changed.after is None:
                    go_files.pop(changed.path)
                else:
                    go_files[changed.path] = changed.after


def test_every_go_version_parses(story):
    texts = [text for repo, _ in story for path, text in sample_files(repo.full_name).items() if path.endswith(".go")]
    texts += [f.after for pull in all_pulls(story) for f in pull.files if f.after is not None]
    assert texts and all(syntax_ok(text) for text in texts)
    assert all("\n    " not in text for text in texts)  # indented with tabs, as gofmt does


def test_patches_turn_before_into_after_and_count_lines(story):
    for pull in all_pulls(story):
        for changed in pull.files:
            lines = changed.patch.split("\n") if changed.patch else []
            assert changed.additions == sum(line.startswith("+") for line in lines)
            assert changed.deletions == sum(line.startswith("-") for line in lines)
            if changed.path.endswith(".go"):
                assert apply_patch(changed.before or "", changed.patch) == (changed.after or "")


def test_story_covers_the_cases_the_pipeline_must_handle(story):
    pulls = all_pulls(story)
    readme_only = [p for p in pulls if [f.path for f in p.files] == ["README.md"]]
    generated = [f for p in pulls for f in p.files if f.after and GENERATED.search(f.after)]
    mixed = [
        p
        for p in pulls
        if any(f.path.endswith(".go") for f in p.files)
        and any(not f.path.endswith(".go") and f.path != "README.md" for f in p.files)
    ]
    assert readme_only and generated and mixed
    assert any(f.path.endswith("_test.go") for p in pulls for f in p.files)
    assert {f.status for p in pulls for f in p.files} >= {"added", "modified", "renamed"}
    assert {label for p in pulls for label in p.labels} == {"bug", "enhancement", "performance", "refactor"}
    assert any(not p.labels for p in pulls) and any(not p.body for p in pulls)
    assert any("```" in p.body for p in pulls)
    assert len({p.author for p in pulls}) >= 10


def test_review_comments_point_at_a_changed_line(story):
    review_comments = [(p, c) for p in all_pulls(story) for c in p.comments if c.kind == "review_comment"]
    assert len(review_comments) >= 10
    for pull, comment in review_comments:
        changed = next(f for f in pull.files if f.path == comment.path)
        line_text = changed.after.split("\n")[comment.line - 1]
        assert comment.diff_hunk.startswith("@@")
        assert comment.diff_hunk.split("\n")[-1][1:] == line_text
    ids = [c.external_id for p in all_pulls(story) for c in p.comments]
    assert len(ids) == len(set(ids))


def test_dates_are_fixed_utc_and_ordered(story):
    for pull in all_pulls(story):
        assert pull.created_at.utcoffset().total_seconds() == 0
        assert pull.created_at < pull.merged_at
        assert all(pull.created_at <= c.created_at for c in pull.comments)
    for _, pulls in story:
        merged = [p.merged_at for p in pulls]
        assert merged == sorted(merged)


def test_story_is_deterministic(story):
    assert sample_story() == story


def test_license_files_match_the_declared_licence(story):
    for repo, _ in story:
        files = sample_files(repo.full_name)
        assert {"LICENSE", "README.md", "go.mod"} <= files.keys()
        assert detect_spdx(files["LICENSE"]) == repo.license_spdx
        assert files["go.mod"].startswith(f"module github.com/{repo.full_name}\n")
    assert "Copyright (c) 2023 HRGC authors" in sample_files("hrgc-samples/kvstore")["LICENSE"]
