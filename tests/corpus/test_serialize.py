from datetime import UTC, datetime
from pathlib import Path

from corpus.plans import Plan, extract_plan
from corpus.records import SECTION_LABELS, CommentRecord, FileRecord, PRRecord
from corpus.serialize import serialize

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"

SEED_EXAMPLE = """<REPO> owner/project
<PR_TITLE> Fix nil pointer in handler
<PR_BODY> This fixes a panic when r == nil

<PLAN>
<STEP> <INTENT:FIX> Identify nil pointer vulnerability in handler function
<STEP> <TARGET:func> handle() in internal/server.go
<STEP> <INTENT:ADD> Add defensive nil check at function entry point
<STEP> Preserve existing process() logic
</PLAN>

<CONTEXT>
<FILE path="internal/server.go">
<BEFORE>
func handle(r *Request) {
    process(r)
}
</BEFORE>
</FILE>

<CODE>
<AFTER>
func handle(r *Request) {
    if r == nil {
        return
    }
    process(r)
}
</AFTER>
</CODE>

<VALIDATE>
<SYNTAX_OK> true
<TEST_PASS> true
</VALIDATE>

<COMMENTS>
reviewer: Consider checking nil
author: Thanks, updated
</COMMENTS>
"""


def read(name: str) -> str:
    # Bytes, not read_text: universal newlines would turn the CRLF fixture into LF.
    return (FIXTURES / name).read_bytes().decode("utf-8", errors="surrogateescape")


def seed_pr() -> PRRecord:
    return PRRecord(
        repo="owner/project",
        number=1,
        title="Fix nil pointer in handler",
        body="This fixes a panic when r == nil\r\n",
        files=[
            FileRecord(
                path="internal/server.go",
                before="func handle(r *Request) {\n    process(r)\n}\n",
                after="func handle(r *Request) {\n    if r == nil {\n        return\n    }\n    process(r)\n}\n",
            )
        ],
        comments=[
            CommentRecord(
                kind="issue", author="author", body="Thanks, updated", created_at=datetime(2024, 5, 2, tzinfo=UTC)
            ),
            CommentRecord(
                kind="review_comment",
                author="reviewer",
                body="Consider checking nil",
                created_at=datetime(2024, 5, 1, tzinfo=UTC),
                path="internal/server.go",
                line=2,
            ),
            CommentRecord(kind="issue", author="codecov[bot]", body="Coverage 81%"),
            CommentRecord(kind="review", author="lead", body=""),
        ],
    )


def seed_plan() -> Plan:
    return Plan(
        intent="FIX",
        steps=[
            "<INTENT:FIX> Identify nil pointer vulnerability in handler function",
            "<TARGET:func> handle() in internal/server.go",
            "<INTENT:ADD> Add defensive nil check at function entry point",
            "Preserve existing process() logic",
        ],
    )


def section_text(record, section):
    return "".join(record.text[s.start : s.end] for s in record.spans if s.section == section)


def assert_spans_tile(record):
    assert record.spans[0].start == 0 and record.spans[-1].end == len(record.text)
    for left, right in zip(record.spans, record.spans[1:], strict=False):
        assert left.end == right.start and left.start < left.end
    assert {s.section for s in record.spans} <= set(SECTION_LABELS)


def test_seed_example_is_reproduced_exactly():
    record = serialize(seed_pr(), seed_plan(), test_pass=True)
    assert record.text == SEED_EXAMPLE


def test_spans_cover_the_text_and_map_to_sections():
    record = serialize(seed_pr(), seed_plan(), test_pass=True)
    assert_spans_tile(record)
    assert section_text(record, "plan") == seed_plan().render() + "\n"
    code = section_text(record, "code")
    assert code.startswith("<CODE>\n<AFTER>\nfunc handle") and code.endswith("</AFTER>\n</CODE>\n")
    assert section_text(record, "validate") == "<VALIDATE>\n<SYNTAX_OK> true\n<TEST_PASS> true\n</VALIDATE>\n"
    other = section_text(record, "other")
    assert other.startswith("<REPO> owner/project\n") and "<BEFORE>\nfunc handle" in other
    assert other.endswith("author: Thanks, updated\n</COMMENTS>\n")


def test_defaults_extract_the_plan_check_syntax_and_leave_tests_unknown():
    pr = seed_pr()
    record = serialize(pr)
    assert extract_plan(pr).render() in record.text
    assert "<SYNTAX_OK> true\n<TEST_PASS> unknown\n" in record.text
    pr.files[0].after = read("broken_missing_paren.go")
    assert "<SYNTAX_OK> false\n" in serialize(pr).text


def multi_file_pr() -> PRRecord:
    return PRRecord(
        repo="acme/greet",
        number=9,
        title="Add greetings",
        body="Adds `Width`.",
        files=[
            FileRecord(path="greet/greet.go", status="added", after=read("unicode_literals.go")),
            FileRecord(
                path="crlf/sum.go",
                before=read("crlf_line_endings.go"),
                after=read("crlf_line_endings.go").replace("total := 0", "total := 0 // 合計"),
            ),
            FileRecord(path="vendor/x/y.go", status="added", after="package y\n"),
            FileRecord(path="paint/color_string.go", status="added", after=read("generated_color_string.go")),
            FileRecord(path="logo.png", is_binary=True),
            FileRecord(path="README.md", before="# a\n", after="# b\n"),
        ],
    )


def test_several_files_are_wrapped_and_code_bytes_are_kept():
    pr = multi_file_pr()
    record = serialize(pr)
    assert_spans_tile(record)
    code = section_text(record, "code")
    assert code.startswith('<CODE>\n<FILE path="greet/greet.go">\n<AFTER>\n//go:build !windows\n')
    assert '</AFTER>\n</FILE>\n<FILE path="crlf/sum.go">\n<AFTER>\n// Sum adds the numbers.\r\nfunc Sum' in code
    assert "total := 0 // 合計\r\n" in code and code.endswith("</AFTER>\n</FILE>\n</CODE>\n")
    assert '\t"emoji": "👋🌍' in code
    # A new file has nothing before; a changed one shows its package clause and the old declaration.
    assert '<FILE path="greet/greet.go">\n<BEFORE>\n</BEFORE>\n</FILE>\n' in record.text
    assert '<FILE path="crlf/sum.go">\n<BEFORE>\npackage crlf\n\n// Sum adds the numbers.' in record.text
    for skipped in ("vendor/x/y.go", "paint/color_string.go", "logo.png", "README.md"):
        assert skipped not in record.text


def test_serialization_is_deterministic():
    assert serialize(multi_file_pr()) == serialize(multi_file_pr())


def test_max_file_chars_caps_each_declaration():
    pr = multi_file_pr()
    record = serialize(pr, max_file_chars=40)
    assert "// Greetings maps a BCP 47 tag" in record.text
    assert '"ru":' not in record.text and "utf8.RuneCountInString" not in record.text


def test_pr_without_go_code_still_has_every_section():
    pr = PRRecord(
        repo="a/b",
        number=3,
        title="Docs: typo",
        body="",
        files=[FileRecord(path="README.md", before="teh\n", after="the\n")],
    )
    record = serialize(pr, syntax_ok=False, test_pass=False)
    assert record.text.startswith("<REPO> a/b\n<PR_TITLE> Docs: typo\n<PR_BODY>\n\n<PLAN>\n")
    assert "\n<CONTEXT>\n\n<CODE>\n</CODE>\n\n<VALIDATE>\n<SYNTAX_OK> false\n<TEST_PASS> false\n" in record.text
    assert record.text.endswith("<COMMENTS>\n</COMMENTS>\n")
    assert_spans_tile(record)


def test_odd_paths_cannot_break_the_file_tag():
    pr = PRRecord(
        repo="a/b", number=4, title="x", files=[FileRecord(path='we"ird\n.go', status="added", after="package p\n")]
    )
    assert '<FILE path="we%22ird%0A.go">' in serialize(pr).text
