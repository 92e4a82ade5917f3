"""The hierarchical serialization format: one PR as the training text the model sees, with section spans."""

from __future__ import annotations

from corpus import golang, quality, tags
from corpus.plans import Plan, extract_plan
from corpus.records import FileRecord, PRRecord, SerializedRecord, Span

MAX_BODY_CHARS = 4000
MAX_COMMENT_CHARS = 2000
MAX_COMMENTS = 50


def _tagged(tag: str, text: str) -> str:
    return f"{tag} {text}" if text else tag


def _prose(text: str | None, limit: int) -> str:
    """PR/comment text: newlines normalised, trimmed, capped (this is prose, not code)."""
    cleaned = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    return quality.cap_text(cleaned, limit)[0].rstrip()


def _path_attribute(path: str) -> str:
    return path.replace("%", "%25").replace('"', "%22").replace("\n", "%0A")


def _file_open(path: str) -> str:
    return f'{tags.FILE} path="{_path_attribute(path)}">\n'


def _block(open_tag: str, close_tag: str, text: str | None, max_chars: int | None) -> str:
    """`<TAG>\\n text </TAG>\\n` keeping the code byte for byte; a newline is added only when the
    text does not end with one, so the closing tag starts its own line."""
    code = text or ""
    if max_chars is not None:
        code = quality.cap_text(code, max_chars)[0]
    if code and not code.endswith("\n"):
        code += "\n"
    return f"{open_tag}\n{code}{close_tag}\n"


def code_files(pr: PRRecord) -> list[FileRecord]:
    """The Go files whose text goes into CONTEXT/CODE: not vendored, generated or binary."""
    files = []
    for file in pr.files:
        if not quality.is_go_path(file.path) or quality.is_vendored(file.path) or file.is_binary:
            continue
        if file.before is None and file.after is None:
            continue
        if any(quality.is_generated(text) or quality.looks_binary(text) for text in (file.before, file.after)):
            continue
        files.append(file)
    return files


def _comment_lines(pr: PRRecord) -> str:
    comments = [c for c in pr.comments if (c.body or "").strip() and not (c.author or "").endswith("[bot]")]
    # Stable sort: comments without a date keep their order, after the dated ones.
    comments.sort(key=lambda c: (c.created_at is None, c.created_at.timestamp() if c.created_at else 0))
    lines = [f"{c.author or 'ghost'}: {_prose(c.body, MAX_COMMENT_CHARS)}\n" for c in comments[:MAX_COMMENTS]]
    return "".join(lines)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def serialize(
    pr: PRRecord,
    plan: Plan | None = None,
    *,
    syntax_ok: bool | None = None,
    test_pass: bool | None = None,
    max_file_chars: int | None = None,
) -> SerializedRecord:
    """The seed's "Hierarchical Serialization Format" for one PR, and its section spans.

    `plan` defaults to `extract_plan(pr)`; `syntax_ok` to "every after-file parses";
    `test_pass` None is written `unknown` (Go tests are not run). Each Go file (see
    `code_files`) appears in CONTEXT with its before text and in CODE with its after text, in
    the PR's file order; with several files each AFTER is wrapped in its own FILE. Spans:
    header/body/context/comments "other", the PLAN block "plan", `<CODE>`..`</CODE>` "code",
    the VALIDATE block "validate"; each includes its closing line break."""
    if plan is None:
        plan = extract_plan(pr)
    files = code_files(pr)
    if syntax_ok is None:
        syntax_ok = all(golang.syntax_ok(f.after) for f in files if f.after is not None)

    header = (
        f"{_tagged(tags.REPO, pr.repo)}\n"
        f"{_tagged(tags.PR_TITLE, ' '.join((pr.title or '').split()))}\n"
        f"{_tagged(tags.PR_BODY, _prose(pr.body, MAX_BODY_CHARS))}\n\n"
    )
    context = [f"\n{tags.CONTEXT}\n"]
    for file in files:
        context.append(_file_open(file.path))
        context.append(_block(tags.BEFORE, tags.BEFORE_END, file.before, max_file_chars))
        context.append(f"{tags.FILE_END}\n")
    context.append("\n")
    code = [f"{tags.CODE}\n"]
    for file in files:
        after = _block(tags.AFTER, tags.AFTER_END, file.after, max_file_chars)
        code.append(f"{_file_open(file.path)}{after}{tags.FILE_END}\n" if len(files) > 1 else after)
    code.append(f"{tags.CODE_END}\n")
    test_result = "unknown" if test_pass is None else _bool(test_pass)
    validate = (
        f"{tags.VALIDATE}\n{tags.SYNTAX_OK} {_bool(syntax_ok)}\n{tags.TEST_PASS} {test_result}\n{tags.VALIDATE_END}\n"
    )
    comments = f"\n{tags.COMMENTS}\n{_comment_lines(pr)}{tags.COMMENTS_END}\n"

    pieces = [
        ("other", header),
        ("plan", plan.render() + "\n"),
        ("other", "".join(context)),
        ("code", "".join(code)),
        ("other", "\n"),
        ("validate", validate),
        ("other", comments),
    ]
    spans, start = [], 0
    for section, text in pieces:
        spans.append(Span(section, start, start + len(text)))
        start += len(text)
    return SerializedRecord(text="".join(text for _, text in pieces), spans=spans)
