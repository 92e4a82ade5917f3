"""The seed's data categories (NAT / MIX / CODE) of a pull request."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from corpus.records import FileRecord, PRRecord

NAT, MIX, CODE = "NAT", "MIX", "CODE"
CATEGORIES = (NAT, MIX, CODE)

# Prose shorter than this (in words, code and templates removed) is "trivial" text.
TRIVIAL_WORDS = 20

_DOC_SUFFIXES = {".md", ".markdown", ".rst", ".txt", ".adoc", ".asciidoc", ".org", ".html", ".htm"}
_DOC_NAMES = {
    "readme",
    "license",
    "licence",
    "copying",
    "notice",
    "authors",
    "contributors",
    "changelog",
    "changes",
    "history",
    "codeowners",
    "maintainers",
    "security",
    "code_of_conduct",
}
_DOC_DIRS = {"doc", "docs", "documentation", "site", "website"}
_CODE_FENCE = re.compile(r"```")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_WORD = re.compile(r"\w+")


def is_documentation(path: str) -> bool:
    """README/LICENSE/CHANGELOG-like files, prose formats, and anything under a docs directory."""
    pure = PurePosixPath(path.replace("\\", "/").lower())
    if pure.suffix == ".go":
        return False  # Go examples under docs/ are still code
    if any(part in _DOC_DIRS for part in pure.parts[:-1]):
        return True
    return pure.suffix in _DOC_SUFFIXES or pure.stem in _DOC_NAMES


def _is_code_change(file: FileRecord) -> bool:
    return not file.is_binary and not is_documentation(file.path)


def has_code_markup(text: str) -> bool:
    """True when the text has a fenced code block or inline `code`."""
    return bool(_CODE_FENCE.search(text) or _INLINE_CODE.search(text))


def _prose_words(text: str) -> int:
    return len(_WORD.findall(_HTML_COMMENT.sub(" ", text)))


def categorize(pr: PRRecord) -> str:
    """NAT, MIX or CODE, by the seed's "Data Categories".

    - NAT (natural language): the PR changes no code — only documentation (README, LICENSE,
      *.md/*.rst/*.txt, files under docs/) or binary files such as images.
    - MIX (mixed content): the PR changes code (Go, configuration, scripts: any non-doc,
      non-binary file) AND its text is technical discussion: the body or a comment has a code
      block or inline `code`, or there is a review comment on a diff line, or the body holds at
      least TRIVIAL_WORDS words of prose (HTML template comments removed).
    - CODE (code only): the PR changes code and its text is empty or trivial (a short body
      without code, no review comments on code)."""
    if not any(_is_code_change(f) for f in pr.files):
        return NAT
    body = pr.body or ""
    texts = [body, *(c.body or "" for c in pr.comments)]
    technical = (
        any(has_code_markup(text) for text in texts)
        or any(c.kind == "review_comment" and (c.body or "").strip() for c in pr.comments)
        or _prose_words(body) >= TRIVIAL_WORDS
    )
    return MIX if technical else CODE
