"""The hierarchical serialization format: one PR as the training text the model sees, with section spans.

A record holds the change, not the files: for each changed Go file, CONTEXT has the package clause,
the imports, the signatures of other declarations (as the token budget allows) and the BEFORE text
of each changed top-level declaration; CODE has the AFTER text of the same declarations (new ones
included, deleted ones marked). `build_parts` cuts a PR into those pieces once (they are stored at
ingest and written to snapshots); `render` makes the text of a chosen set of pieces, and
`split_records` makes the records that fit a token budget (the dataset's sequence length).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from corpus import golang, quality, tags
from corpus.plans import Plan, extract_plan
from corpus.records import FileRecord, PRRecord, SerializedRecord, Span

# 1: whole changed files in CONTEXT and CODE (snapshots made before declaration scoping).
# 2: changed top-level declarations, signatures, token budget.
FORMAT_VERSION = 2
DEFAULT_BUDGET = 1024  # tokens, <s> and </s> included: the dataset's default sequence length
# Without the dataset's tokenizer (at ingest, on the PR page) tokens are estimated from characters;
# Go code under a 50K BPE runs at about 3.5 characters per token, so 3.0 errs on the short side.
ESTIMATED_CHARS_PER_TOKEN = 3.0
MAX_BODY_CHARS = 4000
MAX_COMMENT_CHARS = 2000
MAX_COMMENTS = 50
MAX_SIGNATURES = 200  # per file, the nearest to the change; a file of 16,000 funcs keeps 200
MAX_DIFF_CHARS = 400_000  # a file the parser rejects is diffed by difflib only below this size
HUNK_CONTEXT_LINES = 3

Count = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """Tokens of `text` as estimated from its length (no tokenizer at hand)."""
    return math.ceil(len(text) / ESTIMATED_CHARS_PER_TOKEN)


@dataclass
class Unit:
    """One changed piece of a file: a declaration (before/after), lines outside declarations, or a hunk.

    `before` goes to CONTEXT, `after` to CODE ("" for nothing); `target` is the name the plan's
    TARGET step uses for it (`handle()`, `(*Server).Start()`), "" when no step names it."""

    key: str
    change: str  # "changed" | "added" | "removed" | "hunk" | "context"
    before: str = ""
    after: str = ""
    target: str = ""


@dataclass
class FilePart:
    path: str
    preamble: str = ""  # package clause and unchanged imports (before side)
    signatures: list[str] = field(default_factory=list)  # file order; `near` says which to show first
    near: list[int] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    parsed: bool = True  # False: the parser rejected a side, units are diff hunks


@dataclass
class RecordParts:
    """Everything a PR's records are rendered from; JSON-able (`to_json`/`from_json`)."""

    repo: str
    title: str
    body: str
    steps: list[str]
    step_targets: list[list[str] | None]  # per step: [path, target name] it concerns, None: every record
    files: list[FilePart]
    syntax_ok: bool
    test_pass: bool | None
    comments: list[str]  # "author: text" lines
    version: int = FORMAT_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RecordParts:
        fields = dict(data)
        fields["files"] = [
            FilePart(**{**f, "units": [Unit(**u) for u in f.get("units", [])]}) for f in data.get("files", [])
        ]
        return cls(**fields)

    def unit_ids(self) -> list[tuple[int, int]]:
        return [(fi, ui) for fi, file in enumerate(self.files) for ui in range(len(file.units))]


@dataclass
class Selection:
    """Which pieces one record holds: units, signatures shown per file, comment lines, and cuts."""

    units: list[tuple[int, int]]
    signatures: dict[int, int] = field(default_factory=dict)  # file index -> how many of `near`
    comments: int = 0
    drop_before: set[tuple[int, int]] = field(default_factory=set)  # units shown without their BEFORE
    after_override: dict[tuple[int, int], str] = field(default_factory=dict)  # a cut unit's piece of AFTER
    bare: bool = False  # no package clause and imports (a declaration too large for them)


# --- helpers ------------------------------------------------------------------------------------


def _tagged(tag: str, text: str) -> str:
    return f"{tag} {text}" if text else tag


def _prose(text: str | None, limit: int) -> str:
    """PR/comment text: newlines normalised, trimmed, capped (this is prose, not code)."""
    cleaned = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    return quality.cap_text(cleaned, limit)[0].rstrip()


def _path_attribute(path: str) -> str:
    return path.replace("%", "%25").replace('"', "%22").replace("\n", "%0A")


def _file_open(file: FilePart) -> str:
    flag = "" if file.parsed else ' parsed="false"'
    return f'{tags.FILE} path="{_path_attribute(file.path)}"{flag}>\n'


def _block(open_tag: str, close_tag: str, pieces: list[str]) -> str:
    """`<TAG>\\n pieces, a blank line between </TAG>\\n`, the code kept byte for byte."""
    code = "\n\n".join(piece.rstrip("\n") for piece in pieces if piece)
    if code:
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


def _comment_lines(pr: PRRecord) -> list[str]:
    comments = [c for c in pr.comments if (c.body or "").strip() and not (c.author or "").endswith("[bot]")]
    # Stable sort: comments without a date keep their order, after the dated ones.
    comments.sort(key=lambda c: (c.created_at is None, c.created_at.timestamp() if c.created_at else 0))
    return [f"{c.author or 'ghost'}: {_prose(c.body, MAX_COMMENT_CHARS)}\n" for c in comments[:MAX_COMMENTS]]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _cap(text: str, max_chars: int | None) -> str:
    return text if max_chars is None else quality.cap_text(text, max_chars)[0]


# --- cutting a file into units ----------------------------------------------------------------------


def _deleted_mark(item: golang.TopLevel) -> str:
    what = item.signature or item.text.split("\n", 1)[0]
    return f"// deleted: {what}"


def _nearest_first(count: int, changed_positions: list[int]) -> list[int]:
    """Positions 0..count-1 not in changed_positions, nearest to a changed one first (two linear passes)."""
    changed = set(changed_positions)
    distance = [math.inf] * count
    last = -math.inf
    for position in range(count):
        if position in changed:
            last = position
        distance[position] = position - last
    last = math.inf
    for position in range(count - 1, -1, -1):
        if position in changed:
            last = position
        distance[position] = min(distance[position], last - position)
    return sorted((p for p in range(count) if p not in changed), key=lambda p: (distance[p], p))


def _hunks_from_patch(patch: str) -> list[Unit]:
    units, before, after = [], [], []

    def close() -> None:
        if before or after:
            units.append(
                Unit(key=f"hunk {len(units) + 1}", change="hunk", before="".join(before), after="".join(after))
            )
        before.clear()
        after.clear()

    for line in patch.splitlines(keepends=True):
        if line.startswith("@@"):
            close()
        elif line.startswith("+"):
            after.append(line[1:])
        elif line.startswith("-"):
            before.append(line[1:])
        elif line.startswith(" "):
            before.append(line[1:])
            after.append(line[1:])
        elif not line.startswith("\\"):
            before.append(line)
            after.append(line)
    close()
    return units


def _hunks(file: FileRecord) -> list[Unit]:
    """The changed hunks of a file the parser rejects, with HUNK_CONTEXT_LINES around each."""
    if file.patch:
        return _hunks_from_patch(file.patch)
    before, after = file.before or "", file.after or ""
    if len(before) + len(after) > MAX_DIFF_CHARS:
        return []
    diff = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), n=HUNK_CONTEXT_LINES, lineterm=""
    )
    return _hunks_from_patch("".join(line if line.endswith("\n") else line + "\n" for line in list(diff)[2:]))


def file_part(file: FileRecord, max_chars: int | None = None) -> FilePart:
    """The changed pieces of one Go file, in the after file's order (removed ones last)."""
    before = file.before if file.status != "added" else None
    after = file.after if file.status != "removed" else None
    if after is None and before is not None and file.status != "removed":
        # Only the old text is known (a prompt's code): all of it is context.
        return FilePart(file.path, units=[Unit(key="file", change="context", before=_cap(before, max_chars))])
    old, new = golang.outline(before or ""), golang.outline(after or "")
    if (before is not None and not old.parsed) or (after is not None and not new.parsed):
        units = _hunks(file)
        for unit in units:
            unit.before, unit.after = _cap(unit.before, max_chars), _cap(unit.after, max_chars)
        return FilePart(file.path, units=units, parsed=False)
    changes = golang.changed_items(old, new)
    changed_keys = {c.key for c in changes}
    preamble = [item.text for item in old.items if item.kind in ("package", "import") and item.key not in changed_keys]
    units = []
    for change in changes:
        item = change.item
        target = item.display if item.kind in ("func", "method", "type", "interface") else ""
        units.append(
            Unit(
                key=change.key,
                change=change.change,
                before=_cap(change.before.text, max_chars) if change.before is not None else "",
                after=_cap(change.after.text, max_chars) if change.after is not None else _deleted_mark(item),
                target=target,
            )
        )
    declared = [item for item in new.items if item.kind not in ("package", "import", "other")]
    positions = [i for i, item in enumerate(declared) if item.key in changed_keys]
    near = _nearest_first(len(declared), positions)[:MAX_SIGNATURES]
    kept = sorted(near)
    signatures = [declared[i].signature for i in kept]
    rank = {position: index for index, position in enumerate(kept)}
    return FilePart(
        path=file.path,
        preamble="\n\n".join(preamble),
        signatures=signatures,
        near=[rank[p] for p in near],
        units=units,
    )


def build_parts(
    pr: PRRecord,
    plan: Plan | None = None,
    *,
    syntax_ok: bool | None = None,
    test_pass: bool | None = None,
    max_file_chars: int | None = None,
) -> RecordParts:
    """Cut a PR into the pieces its records are made of (the expensive part: parsing and diffing)."""
    if plan is None:
        plan = extract_plan(pr)
    files = code_files(pr)
    if syntax_ok is None:
        syntax_ok = all(golang.syntax_ok(f.after) for f in files if f.after is not None)
    step_targets: list[list[str] | None] = []
    for index in range(len(plan.steps)):
        target = plan.step_targets[index] if index < len(plan.step_targets) else None
        if target is None or target >= len(plan.targets):
            step_targets.append(None)
        else:
            step_targets.append([plan.targets[target].path, plan.targets[target].name])
    return RecordParts(
        repo=pr.repo,
        title=" ".join((pr.title or "").split()),
        body=_prose(pr.body, MAX_BODY_CHARS),
        steps=list(plan.steps),
        step_targets=step_targets,
        files=[file_part(f, max_file_chars) for f in files],
        syntax_ok=syntax_ok,
        test_pass=test_pass,
        comments=_comment_lines(pr),
    )


# --- rendering -----------------------------------------------------------------------------------


def _steps(parts: RecordParts, selection: Selection, whole: bool) -> list[str]:
    if whole:
        return parts.steps
    held = {
        (parts.files[fi].path, parts.files[fi].units[ui].target)
        for fi, ui in selection.units
        if parts.files[fi].units[ui].target
    }
    return [
        step
        for step, target in zip(parts.steps, parts.step_targets, strict=False)
        if target is None or tuple(target) in held
    ]


def render(parts: RecordParts, selection: Selection | None = None) -> SerializedRecord:
    """The text of one record and its section spans (the seed's "Hierarchical Serialization Format").

    `selection` None: every unit, no signatures, every comment (the whole PR). Spans:
    header/body/context/comments "other", the PLAN block "plan", `<CODE>`..`</CODE>` "code",
    the VALIDATE block "validate"; each includes its closing line break."""
    whole = selection is None
    if selection is None:
        selection = Selection(units=parts.unit_ids(), comments=len(parts.comments))
    by_file: dict[int, list[int]] = {}
    for fi, ui in selection.units:
        by_file.setdefault(fi, []).append(ui)
    header = (
        f"{_tagged(tags.REPO, parts.repo)}\n"
        f"{_tagged(tags.PR_TITLE, parts.title)}\n"
        f"{_tagged(tags.PR_BODY, parts.body)}\n\n"
    )
    plan = "\n".join([tags.PLAN, *(f"{tags.STEP} {step}" for step in _steps(parts, selection, whole)), tags.PLAN_END])
    context = [f"\n{tags.CONTEXT}\n"]
    code = [f"{tags.CODE}\n"]
    for fi, unit_indexes in by_file.items():
        file = parts.files[fi]
        shown = sorted(file.near[: selection.signatures.get(fi, 0)])
        before = ["" if selection.bare else file.preamble, "\n".join(file.signatures[i] for i in shown)]
        after = []
        for ui in unit_indexes:
            unit = file.units[ui]
            if (fi, ui) not in selection.drop_before:
                before.append(unit.before)
            after.append(selection.after_override.get((fi, ui), unit.after))
        context.append(_file_open(file))
        context.append(_block(tags.BEFORE, tags.BEFORE_END, before))
        context.append(f"{tags.FILE_END}\n")
        after_block = _block(tags.AFTER, tags.AFTER_END, after)
        code.append(f"{_file_open(file)}{after_block}{tags.FILE_END}\n" if len(by_file) > 1 else after_block)
    context.append("\n")
    code.append(f"{tags.CODE_END}\n")
    test_result = "unknown" if parts.test_pass is None else _bool(parts.test_pass)
    validate = (
        f"{tags.VALIDATE}\n{tags.SYNTAX_OK} {_bool(parts.syntax_ok)}\n"
        f"{tags.TEST_PASS} {test_result}\n{tags.VALIDATE_END}\n"
    )
    comments = f"\n{tags.COMMENTS}\n{''.join(parts.comments[: selection.comments])}{tags.COMMENTS_END}\n"
    pieces = [
        ("other", header),
        ("plan", plan + "\n"),
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


def serialize(
    pr: PRRecord,
    plan: Plan | None = None,
    *,
    syntax_ok: bool | None = None,
    test_pass: bool | None = None,
    max_file_chars: int | None = None,
) -> SerializedRecord:
    """The whole PR as one record: every changed declaration, every comment, no signatures.

    `plan` defaults to `extract_plan(pr)`; `syntax_ok` to "every after-file parses";
    `test_pass` None is written `unknown` (Go tests are not run)."""
    return render(build_parts(pr, plan, syntax_ok=syntax_ok, test_pass=test_pass, max_file_chars=max_file_chars))


# --- the token budget ----------------------------------------------------------------------------

# Why records were shaped as they were, as the dataset page counts them.
FIT_WHOLE = "fit whole"  # the PR is one record with every changed declaration
SPLIT = "split"  # the PR became several records
CONTEXT_DROPPED = "context dropped"  # a declaration's BEFORE text left out to fit
CUT = "declaration cut"  # a declaration's AFTER text cut at line boundaries over several records
SKIPPED = "declaration skipped"  # not even one line of it fits beside the header
BODY_SHORTENED = "body shortened"  # the PR body cut to a quarter of the budget
OVER_BUDGET = "header over budget"  # title and plan alone do not fit: one record, longer than the budget


@dataclass
class Fitted:
    records: list[SerializedRecord]
    reasons: dict[str, int]


def _lines_within(text: str, budget: int, count: Count) -> Iterable[str]:
    """Consecutive pieces of text, cut at line boundaries, each estimated at most `budget` tokens."""
    piece, used = [], 0
    for line in text.splitlines(keepends=True):
        cost = count(line)
        if piece and used + cost > budget:
            yield "".join(piece)
            piece, used = [], 0
        piece.append(line)
        used += cost
    if piece:
        yield "".join(piece)


def _fill(parts: RecordParts, selection: Selection, room: int, count: Count, with_comments: bool) -> None:
    """Spend the room left on comment lines (first record only), then on signatures, nearest first."""
    if with_comments:
        for line in parts.comments:
            cost = count(line)
            if cost > room:
                break
            selection.comments += 1
            room -= cost
    for fi in dict.fromkeys(fi for fi, _ in selection.units):
        file = parts.files[fi]
        for index in file.near:
            cost = count(file.signatures[index]) + 1
            if cost > room:
                break
            selection.signatures[fi] = selection.signatures.get(fi, 0) + 1
            room -= cost


def split_records(parts: RecordParts, budget: int = DEFAULT_BUDGET, count: Count = estimate_tokens) -> Fitted:
    """The records of one PR that each fit `budget` tokens (`<s>` and `</s>` included).

    The whole PR when it fits; otherwise groups of declarations in file order, each record
    repeating the header, the plan steps that concern its declarations and the general ones. A
    declaration too large alone loses its BEFORE text; still too large, its AFTER text is cut at
    line boundaries over several records; when not one line fits beside the header it is
    skipped. Comments go in the first record and signatures in each, as the room left allows.
    `count` measures text in tokens (the dataset's tokenizer, or `estimate_tokens`)."""
    reasons: dict[str, int] = {}

    def note(reason: str, amount: int = 1) -> None:
        reasons[reason] = reasons.get(reason, 0) + amount

    limit = budget - 2
    if count(parts.body) > limit // 4:
        # A long description would crowd out the code in every record of the PR.
        shortened = next(iter(_lines_within(parts.body, limit // 4, count)), "")
        if count(shortened) > limit // 4:  # one long line
            shortened = shortened[: int(len(shortened) * (limit // 4) / count(shortened))]
        parts = dataclasses.replace(parts, body=shortened.rstrip())
        note(BODY_SHORTENED)
    everything = Selection(units=parts.unit_ids())
    whole = render(parts, everything)
    used = count(whole.text)
    if used <= limit:
        _fill(parts, everything, limit - used, count, with_comments=True)
        note(FIT_WHOLE)
        filled = everything.comments or any(everything.signatures.values())
        return Fitted([render(parts, everything) if filled else whole], reasons)

    base = count(render(parts, Selection(units=[])).text)  # header, general steps, empty blocks, validate
    if base + 64 > limit:
        note(OVER_BUDGET)
        return Fitted([render(parts, everything)], reasons)
    step_cost: dict[tuple[str, str], int] = {}
    for step, target in zip(parts.steps, parts.step_targets, strict=False):
        if target is not None:
            step_cost[tuple(target)] = step_cost.get(tuple(target), 0) + count(step) + 1
    file_cost = {
        fi: count(file.preamble)
        + count(f"{_file_open(file)}{tags.BEFORE}\n{tags.BEFORE_END}\n{tags.FILE_END}\n")
        + count(f"{_file_open(file)}{tags.AFTER}\n{tags.AFTER_END}\n{tags.FILE_END}\n")
        + 2
        for fi, file in enumerate(parts.files)
    }

    selections: list[Selection] = []
    current, current_files, spent = Selection(units=[]), set(), base

    def close() -> None:
        nonlocal current, current_files, spent
        if current.units:
            selections.append(current)
        current, current_files, spent = Selection(units=[]), set(), base

    for fi, ui in parts.unit_ids():
        unit = parts.files[fi].units[ui]
        own = count(unit.before) + count(unit.after) + 2
        extra = file_cost[fi] + step_cost.get((parts.files[fi].path, unit.target), 0)
        if base + extra + own > limit:
            close()
            # Too large beside the package clause and imports: shown bare, without its BEFORE text.
            room = limit - base - extra + count(parts.files[fi].preamble)
            if count(unit.after) + 1 <= room:
                note(CONTEXT_DROPPED)
                selections.append(Selection(units=[(fi, ui)], drop_before={(fi, ui)}, bare=True))
                continue
            if room < 32:
                note(SKIPPED)
                continue
            note(CUT)
            for piece in _lines_within(unit.after, room - 1, count):
                selections.append(
                    Selection(units=[(fi, ui)], drop_before={(fi, ui)}, after_override={(fi, ui): piece}, bare=True)
                )
            continue
        cost = own + (0 if fi in current_files else file_cost[fi])
        cost += step_cost.get((parts.files[fi].path, unit.target), 0)
        if spent + cost > limit:
            close()
            cost = own + file_cost[fi] + step_cost.get((parts.files[fi].path, unit.target), 0)
        current.units.append((fi, ui))
        current_files.add(fi)
        spent += cost
    close()
    records = []
    while selections:
        selection = selections.pop(0)
        used = count(render(parts, selection).text)
        if used > limit and len(selection.units) > 1:
            # The sum of the pieces' counts was short of the whole: halve the group and try again.
            half = len(selection.units) // 2
            selections[:0] = [Selection(units=selection.units[:half]), Selection(units=selection.units[half:])]
            continue
        _fill(parts, selection, max(0, limit - used), count, with_comments=not records)
        records.append(render(parts, selection))
    if not records:
        note(OVER_BUDGET)
        records.append(render(parts, everything))
    if len(records) > 1:
        note(SPLIT)
    elif len(records) == 1 and not reasons:
        note(FIT_WHOLE)
    return Fitted(records, reasons)


# --- snapshot lines ---------------------------------------------------------------------------------


def change_text(parts: RecordParts, *, with_title: bool = True) -> str:
    """What duplicate detection compares: the title and each changed declaration before and after
    ("" for a PR that changes no Go declaration: nothing to judge).

    Unchanged code, signatures, paths and comments stay out, so two PRs that edit different
    functions of one large file share little, and the same change merged twice shares all. Without
    the title it is the exact-duplicate text: the same change under another title is still one."""
    pieces = [
        unit.before + "\n" + unit.after for file in parts.files for unit in file.units if unit.change != "context"
    ]
    if not pieces:
        return ""
    return "\n".join([parts.title, *pieces] if with_title else pieces)


def near_duplicate_text(parts: RecordParts) -> str:
    """What near-duplicate detection compares: per changed declaration, its key and the lines the change adds
    or removes ("" for a PR that changes no Go declaration).

    Not the whole declaration before and after: two different fixes to one long function (gin's tree.go
    `getValue`) share nearly all of it and read as near duplicates although they change different lines;
    the same change merged twice still shares every changed line, whatever its title ("... (backport)") and
    whatever else differs in the function on its branch. Titles stay out: in a text this short a word more
    moves the shingles past the threshold."""
    pieces = []
    for file in parts.files:
        for unit in file.units:
            if unit.change == "context":
                continue
            diff = difflib.unified_diff(unit.before.splitlines(), unit.after.splitlines(), lineterm="", n=0)
            changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
            pieces.append("\n".join([unit.key, *changed]))
    return "\n".join(pieces)


def snapshot_line(
    *,
    repo: str,
    number: int,
    title: str,
    parts: RecordParts,
    merged_at: str = "",
    duplicate_of: str = "",
    **extra,
) -> dict:
    """One JSONL line of a snapshot (format FORMAT_VERSION): the whole-PR record as text and spans, for
    the tokenizer and for readers, and the record parts, for the dataset's budgeted records."""
    record = render(parts)
    return {
        "format_version": FORMAT_VERSION,
        "repo": repo,
        "number": number,
        "title": title,
        "text": record.text,
        "spans": [[s.section, s.start, s.end] for s in record.spans],
        "parts": parts.to_json(),
        "merged_at": merged_at,
        "duplicate_of": duplicate_of,
        **extra,
    }


def derive(pr: PRRecord) -> tuple[Plan, RecordParts]:
    """The plan and record parts of a PR: computed once at ingest and stored with it."""
    plan = extract_plan(pr)
    return plan, build_parts(pr, plan)
