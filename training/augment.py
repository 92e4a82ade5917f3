"""Training examples for the refinement controller: continue, refine and done decisions (DESIGN.md §4)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from corpus.records import SerializedRecord, Span
from corpus.tags import (
    AFTER,
    AFTER_END,
    CODE,
    CODE_END,
    CONTINUE,
    REFINE,
    SYNTAX_OK,
    VALIDATE,
    VALIDATE_END,
)

# What the runtime appends when an attempt fails the parser, and what the model learns to follow.
FAILED_VALIDATION = f"\n{VALIDATE}\n{SYNTAX_OK} false\n{VALIDATE_END}\n{REFINE}"
MUTATION_TRIES = 12

_AFTER_BODY = re.compile(f"{re.escape(AFTER)}\n(.*?){re.escape(AFTER_END)}", re.DOTALL)


class _RecordBuilder:
    """Assembles a new record from slices of an old one (keeping their spans) and new text."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def copy(self, record: SerializedRecord, start: int, end: int) -> None:
        for span in record.spans:
            lo, hi = max(span.start, start), min(span.end, end)
            if lo < hi:
                self._span(span.section, self.length + lo - start, self.length + hi - start)
        self.parts.append(record.text[start:end])
        self.length += end - start

    def add(self, text: str, section: str) -> None:
        self._span(section, self.length, self.length + len(text))
        self.parts.append(text)
        self.length += len(text)

    def _span(self, section: str, start: int, end: int) -> None:
        if self.spans and self.spans[-1].section == section and self.spans[-1].end == start:
            start = self.spans.pop().start
        self.spans.append(Span(section, start, end))

    def build(self) -> SerializedRecord:
        return SerializedRecord(text="".join(self.parts), spans=self.spans)


def _delete_one(code: str, rng: random.Random, chars: str) -> str | None:
    positions = [i for i, char in enumerate(code) if char in chars]
    if not positions:
        return None
    at = rng.choice(positions)
    return code[:at] + code[at + 1 :]


def _insert_stray(code: str, rng: random.Random) -> str | None:
    line_ends = [i for i, char in enumerate(code) if char == "\n" and i > 0 and code[i - 1] not in "\n{(,"]
    if not line_ends:
        return None
    at = rng.choice(line_ends)
    return code[:at] + rng.choice((" :=", " )", " func", " else")) + code[at:]


def _delete_brace(code: str, rng: random.Random) -> str | None:
    return _delete_one(code, rng, "{}")


def _delete_parenthesis(code: str, rng: random.Random) -> str | None:
    return _delete_one(code, rng, "()")


def _delete_quote(code: str, rng: random.Random) -> str | None:
    return _delete_one(code, rng, '"')


MUTATIONS = (_delete_brace, _delete_parenthesis, _delete_quote, _insert_stray)


def inject_syntax_error(code: str, *, rng: random.Random, syntax_ok: Callable[[str], bool]) -> str | None:
    """The code with one small mistake of the kind a generator makes, or None when none was found.

    Mutations are tried at random until the parser rejects one: dropping a brace, parenthesis or
    quote, or appending a stray token to a line; as a last resort, an unmatched closing brace."""
    for _ in range(MUTATION_TRIES):
        broken = rng.choice(MUTATIONS)(code, rng)
        if broken is not None and not syntax_ok(broken):
            return broken
    broken = code + ("" if code.endswith("\n") else "\n") + "}\n"
    return None if syntax_ok(broken) else broken


def _cut_point(body: str, rng: random.Random) -> int | None:
    """A line start strictly inside the body: the attempt stops there, unfinished."""
    line_starts = [i + 1 for i, char in enumerate(body[:-1]) if char == "\n" and body[i + 1 :].strip()]
    return rng.choice(line_starts) if line_starts else None


def controller_examples(
    record: SerializedRecord, *, rng: random.Random, syntax_ok: Callable[[str], bool]
) -> list[SerializedRecord]:
    """Augmented copies of a record that teach the three controller decisions.

    - continue: the code stops at a line start with `<CONTINUE>` there (label "refine"), and
      the rest of the code follows, which is what continuing means;
    - refine (only when the code parses): a first attempt with an injected syntax error, then
      the failed VALIDATE block and `<REFINE>` (label "refine"), then the record's own CODE
      block as the second attempt; the broken attempt is labelled "other", never "code";
    - done (only when the code parses): the record with its `</CODE>` labelled "refine".
    Records without a `<CODE>` block holding `<AFTER>` code give no examples."""
    text = record.text
    code_start = text.find(f"{CODE}\n")
    code_end = text.find(CODE_END, code_start)
    if code_start < 0 or code_end < 0:
        return []
    bodies = [match.span(1) for match in _AFTER_BODY.finditer(text, code_start, code_end) if match.group(1).strip()]
    if not bodies:
        return []
    after_code_end = code_end + len(CODE_END)
    examples = []

    body_start, body_end = rng.choice(bodies)
    cut = _cut_point(text[body_start:body_end], rng)
    if cut is not None:
        continued = _RecordBuilder()
        continued.copy(record, 0, body_start + cut)
        continued.add(CONTINUE, "refine")
        continued.copy(record, body_start + cut, len(text))
        examples.append(continued.build())

    if not all(syntax_ok(text[start:end]) for start, end in bodies):
        return examples

    body_start, body_end = rng.choice(bodies)
    broken = inject_syntax_error(text[body_start:body_end], rng=rng, syntax_ok=syntax_ok)
    if broken is not None:
        refined = _RecordBuilder()
        refined.copy(record, 0, body_start)
        refined.add(broken, "other")
        refined.copy(record, body_end, code_end)
        refined.add(CODE_END, "other")  # the model wrongly said done; not a decision to learn
        refined.add(FAILED_VALIDATION[: -len(REFINE)], "validate")
        refined.add(REFINE, "refine")
        refined.add("\n", "other")
        refined.copy(record, code_start, len(text))
        examples.append(refined.build())

    done = _RecordBuilder()
    done.copy(record, 0, code_end)
    done.add(CODE_END, "refine")
    done.copy(record, after_code_end, len(text))
    examples.append(done.build())
    return examples
