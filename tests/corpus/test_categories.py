from corpus.categories import CODE, MIX, NAT, categorize, is_documentation
from corpus.records import CommentRecord, FileRecord, PRRecord

GO_CHANGE = FileRecord(path="internal/server.go", before="package server\n", after="package server\n\nfunc A() {}\n")


def pr(body="", files=(GO_CHANGE,), comments=()) -> PRRecord:
    return PRRecord(repo="a/b", number=1, title="Change things", body=body, files=list(files), comments=list(comments))


def test_docs_only_pr_is_natural_language():
    docs = [
        FileRecord(path="README.md"),
        FileRecord(path="docs/guide/install.rst"),
        FileRecord(path="LICENSE"),
        FileRecord(path="docs/img/arch.png", is_binary=True),
    ]
    assert categorize(pr("Some `code` here", files=docs)) == NAT


def test_code_with_code_blocks_or_inline_code_is_mixed():
    assert categorize(pr("Use `sync.Once` here.")) == MIX
    assert categorize(pr("Repro:\n```go\nhandle(nil)\n```")) == MIX
    assert categorize(pr("", comments=[CommentRecord(kind="issue", author="x", body="try `go vet`")])) == MIX


def test_review_comment_on_code_is_mixed():
    review = CommentRecord(kind="review_comment", author="rev", body="Consider checking nil", path="a.go", line=3)
    assert categorize(pr("", comments=[review])) == MIX


def test_long_prose_discussion_is_mixed():
    body = (
        "The handler crashed when the load balancer sent a health probe without a body, because the "
        "decoder returned a nil request and we dereferenced it before checking."
    )
    assert categorize(pr(body)) == MIX


def test_code_with_trivial_text_is_code():
    assert categorize(pr("")) == CODE
    assert categorize(pr("Fixes #12.\n<!-- Describe your change here, at least a few sentences please. -->")) == CODE
    approval = CommentRecord(kind="review", author="lead", body="LGTM")
    assert categorize(pr("", comments=[approval])) == CODE


def test_configuration_changes_count_as_code():
    assert categorize(pr("", files=[FileRecord(path=".github/workflows/ci.yml")])) == CODE


def test_documentation_paths():
    assert is_documentation("CHANGELOG.md") and is_documentation("docs/conf.yaml")
    assert not is_documentation("docs/examples/main.go")
    assert not is_documentation("go.mod")
