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


def files_of(section: str) -> list[tuple[str, str]]:
    """(path, code) per `<AFTER>` block of the section, in order; path "" when no `<FILE>` tag precedes
    the block (a single-file record). A text without `<AFTER>` is plain code: one ("", code) with any
    stray tags removed. `<CONTINUE>` marks (unfinished code that went on) are removed from the code."""
    blocks = list(_AFTER.finditer(section))
    if not blocks:
        return [("", _ANY_TAG.sub("", section))]
    files = []
    for block in blocks:
        opened = list(_FILE_OPEN.finditer(section, 0, block.start()))
        path = _unquote_path(opened[-1].group(1)) if opened else ""
        files.append((path, block.group(1).replace(tags.CONTINUE, "")))
    return files


def code_of(section: str) -> str:
    """The Go text of a CODE section or of an attempt: the `<AFTER>` blocks' code joined by a blank
    line, tags removed. Plain code (no tags) comes back unchanged, so applying it twice is harmless."""
    pieces = [code for _, code in files_of(section)]
    if len(pieces) == 1:
        return pieces[0]
    return "\n".join(piece if piece.endswith("\n") else piece + "\n" for piece in pieces if piece.strip())
