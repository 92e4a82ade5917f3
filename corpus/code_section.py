"""The Go text of a record's CODE section (or of a generated attempt at one), format tags removed.

A CODE section, as `corpus.serialize.render` writes it, holds one `<AFTER>` block for a single
changed file, or one `<FILE path="...">` block holding an `<AFTER>` block per file when several files
change. Generated text may stop anywhere (a token limit), so an unterminated block counts up to the
end of the text. Domain code: no Django here."""

from __future__ import annotations

import re

from corpus import tags

_AFTER = re.compile(f"{re.escape(tags.AFTER)}\n?(.*?)(?:{re.escape(tags.AFTER_END)}|\\Z)", re.DOTALL)
_FILE_OPEN = re.compile(f'{re.escape(tags.FILE)} path="([^"]*)"[^>\n]*>')
# Every tag of the format, a FILE tag with its attributes included; longest first so `</CODE>` wins over `<CODE>`.
_ANY_TAG = re.compile(
    f"{_FILE_OPEN.pattern}|" + "|".join(re.escape(tag) for tag in sorted(tags.FORMAT_TAGS, key=len, reverse=True))
)


def _unquote_path(value: str) -> str:
    # The inverse of serialize._path_attribute; %25 last, so "%2522" stays "%22".
    return value.replace("%22", '"').replace("%0A", "\n").replace("%25", "%")


def _quote_path(path: str) -> str:
    return path.replace("%", "%25").replace('"', "%22").replace("\n", "%0A")


# Where the code of several files is one text (`code_of`), each file's code follows a line
# `//hrgc:file PATH`: a Go comment in the form of a tool directive, so the text stays Go to read and
# diff, and the files can be told apart again (gofmt and go vet judge files, not a concatenation).
FILE_MARK = "//hrgc:file "
_MARK_LINE = re.compile(f"^{re.escape(FILE_MARK)}(.*)\n?", re.MULTILINE)


def _split_marked(text: str) -> list[tuple[str, str]]:
    marks = list(_MARK_LINE.finditer(text))
    files = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        code = text[mark.end() : end]
        files.append((_unquote_path(mark.group(1)), code.rstrip("\n") + "\n" if code.strip() else ""))
    return files


def files_of(section: str) -> list[tuple[str, str]]:
    """(path, code) per `<AFTER>` block of the section, in order; path "" when no `<FILE>` tag precedes
    the block (a single-file record). A text without `<AFTER>` is code: split at its `//hrgc:file`
    lines when it has them (what `code_of` wrote for several files), else one ("", code), any stray tags
    removed. `<CONTINUE>` marks (unfinished code that went on) are removed from the code."""
    blocks = list(_AFTER.finditer(section))
    if not blocks:
        code = _ANY_TAG.sub("", section)
        if _MARK_LINE.match(code):
            return _split_marked(code)
        return [("", code)]
    files = []
    for block in blocks:
        opened = list(_FILE_OPEN.finditer(section, 0, block.start()))
        path = _unquote_path(opened[-1].group(1)) if opened else ""
        files.append((path, block.group(1).replace(tags.CONTINUE, "")))
    return files


def code_of(section: str) -> str:
    """The Go text of a CODE section or of an attempt, tags removed: a single file's code as it is; the
    code of several files (or of one under a `<FILE>` tag) each after its `//hrgc:file PATH` line, a
    blank line between files. Code without tags comes back unchanged, so applying it twice is harmless."""
    files = files_of(section)
    if len(files) == 1 and not files[0][0]:
        return files[0][1]
    pieces = [
        f"{FILE_MARK}{_quote_path(path)}\n" + (code.rstrip("\n") + "\n" if code.strip() else "") for path, code in files
    ]
    return "\n".join(pieces)
