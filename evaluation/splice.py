"""Generated declarations put into the files they belong to: what `go vet` then judges (evaluation.gotools).

A CODE section holds changed top-level pieces, not files: each replaces the base file's piece of the
same key (kind and name, as `corpus.golang.outline` keys them), a new one is appended, imports replace
imports, and `// deleted: SIGNATURE` (how `corpus.serialize` writes a removed declaration) removes one.
Domain code: no Django here."""

from __future__ import annotations

import re

from corpus import golang

_DELETED = re.compile(r"^// deleted: (.*)$", re.MULTILINE)  # corpus.serialize._deleted_mark


def _span(text: str, item: golang.TopLevel) -> tuple[int, int]:
    """Character offsets of an outline item in its file's text (it starts on its start line)."""
    line_start = 0
    for _ in range(item.start_line - 1):
        line_start = text.index("\n", line_start) + 1
    start = text.index(item.text, line_start)
    return start, start + len(item.text)


_DECLARATION_KINDS = ("func", "method", "type", "interface", "const", "var")


def deleted(code: str) -> set[str]:
    """What the code says was deleted: the format writes a removed declaration as `// deleted: SIGNATURE`."""
    return {match[1].strip() for match in _DELETED.finditer(code)}


def _merge(
    base: str, items: list[golang.TopLevel], imports: list[str], *, append: bool, removed: frozenset[str] = frozenset()
) -> str:
    """`base` with `items` replacing its pieces of the same key (appended when it has none and `append`),
    its imports replaced by `imports` when there are any, and the declarations whose signature is in
    `removed` taken out."""
    old = golang.outline(base)
    by_key = {item.key: item for item in old.items}
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in the base text
    appended: list[str] = []
    replaced = {item.key for item in items}
    for item in old.items:
        if item.kind in _DECLARATION_KINDS and item.key not in replaced:
            if (item.signature or item.text.split("\n", 1)[0]) in removed:
                edits.append((*_span(base, item), ""))
    if imports:
        old_imports = [item for item in old.items if item.kind == "import"]
        for index, item in enumerate(old_imports):
            start, end = _span(base, item)
            edits.append((start, end, "\n\n".join(imports) if index == 0 else ""))
        if not old_imports:
            clause = next((item for item in old.items if item.kind == "package"), None)
            at = _span(base, clause)[1] if clause else 0
            edits.append((at, at, "\n\n" + "\n\n".join(imports)))
    for item in items:
        if item.key in by_key:
            start, end = _span(base, by_key[item.key])
            edits.append((start, end, item.text))
        elif append:
            appended.append(item.text)
    text = base
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    if appended:
        text = text.rstrip("\n") + "\n\n" + "\n\n".join(appended) + "\n"
    return text


def merge_declarations(base: str, generated: str) -> str:
    """The base file with the generated top-level pieces put in: a declaration (func, method, type, const,
    var) replaces the base's one of the same key and a new one is appended; generated imports replace
    the base's imports, and a `// deleted: SIGNATURE` line removes that declaration. The generated package
    clause and free comments are left out. Both must parse."""
    new = golang.outline(generated).items
    imports = [item.text for item in new if item.kind == "import"]
    items = [item for item in new if item.kind in _DECLARATION_KINDS]
    return _merge(base, items, imports, append=True, removed=frozenset(deleted(generated)))


def merge_into_package(sources: dict[str, str], target: str, generated: str) -> dict[str, str]:
    """The package's files (name -> text) with the generated declarations put in. A Go package is one
    namespace, so a declaration the package already has replaces it in the file that holds it (the
    target's own first), one it lacks is appended to `target`; imports and `// deleted:` marks apply to
    `target`. Returns the changed files."""
    owner: dict[str, str] = {}
    for name in [target, *sorted(n for n in sources if n != target)]:
        if name in sources:
            for item in golang.outline(sources[name]).items:
                owner.setdefault(item.key, name)
    new = golang.outline(generated).items
    groups: dict[str, list[golang.TopLevel]] = {}
    for item in new:
        if item.kind in _DECLARATION_KINDS:
            groups.setdefault(owner.get(item.key, target), []).append(item)
    imports = [item.text for item in new if item.kind == "import"]
    removed = frozenset(deleted(generated))
    changed = {}
    for name in {*groups, target}:
        is_target = name == target
        changed[name] = _merge(
            sources[name],
            groups.get(name, []),
            imports if is_target else [],
            append=is_target,
            removed=removed if is_target else frozenset(),
        )
    return changed
