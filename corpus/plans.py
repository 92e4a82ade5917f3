"""Plan extraction: the intent of a pull request and the Go declarations it touches, as <PLAN> steps."""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from dataclasses import dataclass, field

from corpus import golang, quality, tags
from corpus.records import FileRecord, PRRecord

MAX_TARGET_STEPS = 16
MAX_NAMES_PER_STEP = 3
MAX_SUMMARY_CHARS = 200

# Label words (lowercased substrings of a label) and the intent they state.
_LABEL_INTENTS = {
    "FIX": ("bug", "fix", "regression", "crash", "defect"),
    "ADD": ("enhancement", "feature", "feat"),
    "OPTIMIZE": ("performance", "perf", "optimi", "speed"),
    "REFACTOR": ("refactor", "cleanup", "clean-up", "tech debt", "tech-debt", "code quality"),
}
# Conventional-commit prefixes: "fix(server): ...", "perf: ...".
_PREFIX_INTENTS = {
    "fix": "FIX",
    "bugfix": "FIX",
    "hotfix": "FIX",
    "feat": "ADD",
    "feature": "ADD",
    "perf": "OPTIMIZE",
    "refactor": "REFACTOR",
}
# The verb a title starts with.
_VERB_INTENTS = {
    "FIX": (
        "fix",
        "fixes",
        "fixed",
        "fixing",
        "correct",
        "corrects",
        "repair",
        "resolve",
        "resolves",
        "prevent",
        "prevents",
    ),
    "ADD": (
        "add",
        "adds",
        "added",
        "adding",
        "implement",
        "implements",
        "introduce",
        "introduces",
        "support",
        "supports",
        "allow",
        "allows",
        "enable",
        "enables",
        "expose",
        "exposes",
        "create",
        "creates",
    ),
    "REFACTOR": (
        "refactor",
        "refactors",
        "rename",
        "renames",
        "move",
        "moves",
        "extract",
        "extracts",
        "simplify",
        "simplifies",
        "clean",
        "cleanup",
        "reorganize",
        "reorganise",
        "restructure",
        "split",
        "inline",
        "tidy",
        "deduplicate",
        "consolidate",
        "unexport",
    ),
    "OPTIMIZE": (
        "optimize",
        "optimise",
        "optimizes",
        "optimises",
        "speed",
        "speedup",
        "accelerate",
        "preallocate",
        "preallocates",
        "pre-allocate",
        "pre-allocates",
    ),
}
# Words and phrases anywhere in the title or body.
_TEXT_INTENTS = {
    "FIX": r"\b(fix(es|ed)?|bugs?|panic(s|s?ked)?|crash(es|ed)?|nil pointer|nil dereference|race conditions?|"
    r"data races?|race detector|deadlocks?|regression|incorrect(ly)?|broken|off-by-one)\b",
    "ADD": r"\b(new feature|adds? support|add(s|ed)? (a |an )?new|implement(s|ed)?|introduc(e|es|ed))\b",
    "REFACTOR": r"\b(refactor(s|ed|ing)?|renam(e|es|ed|ing)|no (functional|behaviou?r) change|clean(ed)? ?up|"
    r"simplif(y|ies|ied))\b",
    "OPTIMIZE": r"\b(optimi[sz](e|es|ed|ation)|faster|speed ?up|performance|allocations?|pre-?allocat\w*|"
    r"reallocations?|allocs/op|ns/op|B/op|latency|throughput|buffer reuse|reus(e|es|ed|ing) (\w+ ){0,2}"
    r"(buffers?|slices?|memory|objects?))\b",
}
# Phrases that state the intent as plainly as a leading verb does ("Skip the context allocation",
# "Reuse record buffers", "prevent data races"): +2 in the title, which with the +1 of _TEXT_INTENTS
# weighs what a leading verb weighs.
_TITLE_PHRASE_INTENTS = {
    "FIX": r"\b(data races?|race conditions?|nil pointer dereference)\b",
    "OPTIMIZE": r"\b((avoid|avoids|skip|skips|save|saves|reduce|reduces|eliminate|eliminates|remove|removes|fewer|"
    r"less|no|zero)[ -](\w+ ){0,3}(allocations?|allocs|reallocations?)|pre-?allocat\w*|buffer reuse|"
    r"reus(e|es|ed|ing) (\w+ ){0,2}(buffers?|slices?|memory|objects?)|faster|speed ?up)\b",
}
# Benchmark results ("96.1 ns/op -> 21.7 ns/op") anywhere in the body, code blocks included, measure a speed-up.
_BENCHMARK = re.compile(r"\d\s*(ns|µs|us|ms|s|B|kB|KB|MB|GB|allocs)/op\b")
# "fix(server): ...", "feat!: ..." and Go's "net/http, io: ..." scopes.
_TITLE_PREFIX = re.compile(r"^(?P<type>[\w./-]+(\s*,\s*[\w./-]+)*)(\([^)]*\))?!?:\s+")
_CONVENTIONAL_TYPES = {*_PREFIX_INTENTS, "chore", "docs", "test", "tests", "build", "ci", "style"}
# Builtins and conversions say little about what a change does.
_PLAIN_CALLS = {
    "len",
    "cap",
    "append",
    "make",
    "new",
    "copy",
    "delete",
    "min",
    "max",
    "clear",
    "string",
    "byte",
    "rune",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "bool",
    "any",
    "error",
    "uintptr",
}
_BRACKET_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")
_PR_NUMBER_SUFFIX = re.compile(r"\s*\(#\d+\)$")
_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


@dataclass(frozen=True)
class Target:
    """A declaration the PR touches: kind is a TARGET kind (func covers methods)."""

    kind: str  # "func" | "type" | "interface"
    name: str  # handle(), (*Server).Start(), Config
    path: str
    change: str  # "added" | "changed" | "removed" | "renamed" | "moved"
    previous: str = ""  # the old name of a renamed declaration, the old path of a moved one

    def step(self) -> str:
        text = f"{tags.target_tag(self.kind)} {self.name} in {self.path}"
        if self.change in ("added", "removed"):
            return f"{text} ({self.change})"
        if self.change == "renamed":
            return f"{text} (renamed from {self.previous})"
        if self.change == "moved":
            return f"{text} (moved from {self.previous})"
        return text


@dataclass
class Plan:
    """The plan of a PR: its intent (None when the PR does not tell it), steps and targets."""

    intent: str | None
    steps: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    # Per step, the index in `targets` of the declaration it is about (None: the whole PR), so a
    # record holding some of the declarations repeats only their steps. Empty: every step is general.
    step_targets: list[int | None] = field(default_factory=list)

    def render(self) -> str:
        lines = [tags.PLAN, *(f"{tags.STEP} {step}" for step in self.steps), tags.PLAN_END]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "intent": self.intent,
            "steps": list(self.steps),
            "targets": [dataclasses.asdict(target) for target in self.targets],
            "step_targets": list(self.step_targets),
        }

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        return cls(
            intent=data.get("intent"),
            steps=list(data.get("steps", [])),
            targets=[Target(**target) for target in data.get("targets", [])],
            step_targets=list(data.get("step_targets", [])),
        )


@dataclass
class _Change:
    path: str
    change: golang.DeclarationChange


def _one_line(text: str) -> str:
    return " ".join(text.split())


def summary(title: str) -> str:
    """The PR title without tracker noise: `[backport]`, `fix(scope):`, ` (#123)`."""
    text = _one_line(title)
    text = _BRACKET_PREFIX.sub("", text)
    text = _PR_NUMBER_SUFFIX.sub("", text)
    match = _TITLE_PREFIX.match(text)
    if match and match["type"].lower() in _CONVENTIONAL_TYPES:
        text = text[match.end() :]
    text = text.strip()
    if text and not _TITLE_PREFIX.match(text):  # a Go package scope ("net/http: ...") stays as written
        text = text[0].upper() + text[1:]
    return text[:MAX_SUMMARY_CHARS]


def _prose(body: str) -> str:
    """The body without code, templates and inline code, so identifiers do not read as intent words."""
    return _INLINE_CODE.sub(" ", _CODE_BLOCK.sub(" ", _HTML_COMMENT.sub(" ", body or "")))


def _is_target_file(file: FileRecord) -> bool:
    return (
        quality.is_go_path(file.path)
        and not quality.is_test_path(file.path)
        and not quality.is_vendored(file.path)
        and not file.is_binary
        and not quality.is_generated(file.after)
        and not quality.is_generated(file.before)
    )


def _declaration_changes(pr: PRRecord) -> list[_Change]:
    changes = []
    for file in pr.files:
        if not _is_target_file(file):
            continue
        before = file.before if file.status != "added" else None
        after = file.after if file.status != "removed" else None
        if before is None and after is None:
            continue
        path = file.path
        changes.extend(_Change(path, change) for change in golang.changed_declarations(before, after))
    return changes


def _target_kind(declaration: golang.Declaration) -> str:
    return "func" if declaration.kind in ("func", "method") else declaration.kind


def _targets(changes: list[_Change]) -> tuple[list[tuple[int, Target]], int]:
    """(index of the change, its target) in file order, renames and moves paired up; and how many
    changes the renames/moves account for.

    Removed declarations are indexed by what pairs them (same key and text: a move; same body: a
    rename), so pairing is linear in the number of changes, however many share a name."""
    by_move: dict[tuple[str, str, str], deque[int]] = {}
    by_body: dict[tuple[str, str], deque[int]] = {}
    for index, item in enumerate(changes):
        if item.change.change == "removed":
            old = item.change.declaration
            by_move.setdefault((old.kind, old.key, old.decl_hash), deque()).append(index)
            if old.end_line > old.start_line:  # one-line bodies are too common to tell a rename from unrelated code
                by_body.setdefault((old.kind, old.body_hash), deque()).append(index)
    paired: dict[int, Target] = {}  # index of the added change -> its rename/move target
    used_removed: set[int] = set()

    def take(candidates: deque[int], accept) -> int | None:
        # Drop used entries from the front; each entry is dropped at most once, so this stays linear.
        while candidates and candidates[0] in used_removed:
            candidates.popleft()
        for position, candidate in enumerate(candidates):
            if candidate not in used_removed and accept(changes[candidate]):
                del candidates[position]
                return candidate
            if position >= 8:
                break  # the same key and text in many files: give up rather than scan them all
        return None

    for index, item in enumerate(changes):
        if item.change.change != "added":
            continue
        new = item.change.declaration
        moved = take(
            by_move.get((new.kind, new.key, new.decl_hash), deque()), lambda old, path=item.path: old.path != path
        )
        if moved is not None:
            paired[index] = Target(_target_kind(new), new.display, item.path, "moved", changes[moved].path)
            used_removed.add(moved)
            continue
        renamed = take(
            by_body.get((new.kind, new.body_hash), deque()), lambda old, key=new.key: old.change.declaration.key != key
        )
        if renamed is not None:
            old = changes[renamed].change.declaration
            paired[index] = Target(_target_kind(new), new.display, item.path, "renamed", old.display)
            used_removed.add(renamed)
    targets = []
    for index, item in enumerate(changes):
        declaration = item.change.declaration
        if index in paired:
            targets.append((index, paired[index]))
        elif not (item.change.change == "removed" and index in used_removed):
            targets.append(
                (index, Target(_target_kind(declaration), declaration.display, item.path, item.change.change))
            )
    return targets, 2 * len(paired)


def _score_intents(pr: PRRecord, changes: list[_Change], refactor_changes: int) -> dict[str, float]:
    scores = dict.fromkeys(tags.INTENTS, 0.0)
    for label in pr.labels:
        lowered = label.lower()
        for intent, words in _LABEL_INTENTS.items():
            if any(word in lowered for word in words):
                scores[intent] += 3
    title = _one_line(_BRACKET_PREFIX.sub("", pr.title or ""))
    prefix = _TITLE_PREFIX.match(title)
    if prefix and prefix["type"].lower() in _PREFIX_INTENTS:
        scores[_PREFIX_INTENTS[prefix["type"].lower()]] += 3
    words = (title[prefix.end() :] if prefix else title).lower().split()
    if words:
        for intent, verbs in _VERB_INTENTS.items():
            if words[0] in verbs:
                scores[intent] += 3
    for intent, pattern in _TITLE_PHRASE_INTENTS.items():
        if re.search(pattern, title, re.IGNORECASE):
            scores[intent] += 2
    if _BENCHMARK.search(pr.body or ""):
        scores["OPTIMIZE"] += 1
    for intent, pattern in _TEXT_INTENTS.items():
        if re.search(pattern, title, re.IGNORECASE):
            scores[intent] += 1
        hits = {m.group(0).lower() for m in re.finditer(pattern, _prose(pr.body), re.IGNORECASE)}
        scores[intent] += min(len(hits), 2) * 0.5
    kinds = {c.change.change for c in changes}
    if changes and kinds == {"added"}:
        scores["ADD"] += 2
    if changes and refactor_changes == len(changes):
        scores["REFACTOR"] += 2
    elif kinds == {"changed"} and all(_added_nil_checks(c.change) for c in changes):
        # A guard added to existing code with nothing else new is the shape of a fix.
        scores["FIX"] += 1
    return scores


def _decide(scores: dict[str, float]) -> str | None:
    best = max(scores.values())
    winners = [intent for intent, score in scores.items() if score == best]
    return winners[0] if best >= 1 and len(winners) == 1 else None


def _added_nil_checks(change: golang.DeclarationChange) -> list[str]:
    if change.change != "changed" or change.previous is None:
        return []
    return sorted(change.declaration.nil_checks - change.previous.nil_checks)


def _names(items: list[str]) -> str:
    shown = items[:MAX_NAMES_PER_STEP]
    text = ", ".join(shown)
    return text if len(items) <= len(shown) else f"{text} and {len(items) - len(shown)} more"


def _body_steps(change: golang.DeclarationChange) -> list[str]:
    """What changed inside a function body: guards added, calls added/removed, calls kept."""
    declaration, previous = change.declaration, change.previous
    if change.change != "changed" or previous is None or declaration.kind not in ("func", "method"):
        return []
    where = declaration.display
    steps = []
    nil_checks = _added_nil_checks(change)
    if nil_checks:
        steps.append(f"{tags.intent_tag('ADD')} Add nil check on {_names(nil_checks)} in {where}")
    added_calls = sorted(declaration.calls - previous.calls - _PLAIN_CALLS)
    removed_calls = sorted(previous.calls - declaration.calls - _PLAIN_CALLS)
    if added_calls:
        steps.append(f"Call {_names([f'{c}()' for c in added_calls])} in {where}")
    if removed_calls:
        steps.append(f"Stop calling {_names([f'{c}()' for c in removed_calls])} in {where}")
    kept_calls = sorted((previous.calls & declaration.calls) - _PLAIN_CALLS)
    if nil_checks and kept_calls and not removed_calls:
        steps.append(f"Preserve existing {_names([f'{c}()' for c in kept_calls])} logic")
    return steps


def _test_paths(pr: PRRecord) -> list[str]:
    return [
        f.path
        for f in pr.files
        if quality.is_test_path(f.path) and not quality.is_vendored(f.path) and f.status != "removed"
    ]


def extract_plan(pr: PRRecord) -> Plan:
    """The plan of a PR, from its title, body and labels and the Go declarations its diff touches.

    Steps, in order: the intent with the PR's summary; per touched declaration (file order,
    then line) a `<TARGET:kind> name in path` step followed by what changed in its body; a
    step naming the test files. Only non-test, non-vendored, non-generated .go files give
    targets. `intent` is None when the text and the change disagree or say nothing."""
    changes = _declaration_changes(pr)
    targets, refactor_changes = _targets(changes)
    intent = _decide(_score_intents(pr, changes, refactor_changes))

    steps: list[str] = []
    step_targets: list[int | None] = []
    headline = summary(pr.title or "") or "Change the code"
    steps.append(f"{tags.intent_tag(intent)} {headline}" if intent else headline)
    step_targets.append(None)
    for shown, (index, target) in enumerate(targets):
        if shown == MAX_TARGET_STEPS:
            steps.append(f"... and {len(targets) - shown} more declarations")
            step_targets.append(None)
            break
        body = _body_steps(changes[index].change)
        steps.extend([target.step(), *body])
        step_targets.extend([shown] * (1 + len(body)))
    tests = _test_paths(pr)
    if tests:
        steps.append(f"Cover the change with tests in {_names(tests)}")
        step_targets.append(None)
    return Plan(
        intent=intent,
        steps=[_one_line(step) for step in steps],
        targets=[t for _, t in targets],
        step_targets=step_targets,
    )
