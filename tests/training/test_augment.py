"""Controller examples: cut short -> <CONTINUE>, broken -> <REFINE>, parsing -> </CODE>, with exact spans."""

from __future__ import annotations

import random
from pathlib import Path

from corpus.golang import syntax_ok
from corpus.records import SerializedRecord, Span
from training.augment import controller_examples, inject_syntax_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def record_with_code(*after: str) -> SerializedRecord:
    """A record in the serializer's layout: other, plan, other (context), code, other, validate."""
    code = (
        "<CODE>\n"
        + "".join(
            (
                f'<FILE path="f{i}.go">\n<AFTER>\n{body}</AFTER>\n</FILE>\n'
                if len(after) > 1
                else f"<AFTER>\n{body}</AFTER>\n"
            )
            for i, body in enumerate(after)
        )
        + "</CODE>\n"
    )
    pieces = [
        ("other", "<REPO> owner/name\n<PR_TITLE> Fix nil handler\n<PR_BODY> Guard r.\n\n"),
        ("plan", "<PLAN>\n<STEP> <INTENT:FIX> Check r\n</PLAN>\n"),
        ("other", '\n<CONTEXT>\n<FILE path="f.go">\n<BEFORE>\npackage x\n</BEFORE>\n</FILE>\n\n'),
        ("code", code),
        ("other", "\n"),
        ("validate", "<VALIDATE>\n<SYNTAX_OK> true\n<TEST_PASS> unknown\n</VALIDATE>\n"),
    ]
    spans, start = [], 0
    for section, text in pieces:
        spans.append(Span(section, start, start + len(text)))
        start += len(text)
    return SerializedRecord("".join(text for _, text in pieces), spans)


def assert_spans_tile(record: SerializedRecord) -> None:
    position = 0
    for span in record.spans:
        assert span.start == position and span.end > span.start
        position = span.end
    assert position == len(record.text)


def section_text(record: SerializedRecord, section: str) -> list[str]:
    return [record.text[span.start : span.end] for span in record.spans if span.section == section]


def examples_by_kind(record: SerializedRecord, seed: int = 0) -> dict[str, SerializedRecord]:
    examples = controller_examples(record, rng=random.Random(seed), syntax_ok=syntax_ok)
    kinds = {}
    for example in examples:
        if "<CONTINUE>" in example.text:
            kinds["continue"] = example
        elif "<REFINE>" in example.text:
            kinds["refine"] = example
        else:
            kinds["done"] = example
    assert len(kinds) == len(examples)
    return kinds


def test_parsing_code_gives_all_three_decisions_with_tiling_spans():
    record = record_with_code(fixture("fix_server_after.go"))
    kinds = examples_by_kind(record)
    assert set(kinds) == {"continue", "refine", "done"}
    for example in kinds.values():
        assert_spans_tile(example)


def test_continue_cuts_the_code_at_a_line_start_and_keeps_the_rest():
    source = fixture("add_cache_after.go")
    record = record_with_code(source)
    for seed in range(5):
        example = examples_by_kind(record, seed)["continue"]
        assert example.text.count("<CONTINUE>") == 1
        assert section_text(example, "refine") == ["<CONTINUE>"]
        assert example.text.replace("<CONTINUE>", "") == record.text
        before, after = example.text.split("<CONTINUE>")
        assert before.endswith("\n") and after.strip()
        attempt = before.split("<AFTER>\n", 1)[1]
        assert source.startswith(attempt) and 0 < len(attempt) < len(source)


def test_refine_shows_a_broken_attempt_then_the_original_code():
    source = fixture("refactor_store_after.go")
    record = record_with_code(source)
    example = examples_by_kind(record)["refine"]
    first, second = example.text.split("<REFINE>")
    broken = first.split("<AFTER>\n", 1)[1].split("</AFTER>", 1)[0]
    assert not syntax_ok(broken)
    assert broken != source
    assert first.endswith("</CODE>\n<VALIDATE>\n<SYNTAX_OK> false\n</VALIDATE>\n")
    code_start = record.text.index("<CODE>")
    assert second == "\n" + record.text[code_start:]
    assert section_text(example, "refine") == ["<REFINE>"]
    assert section_text(example, "validate")[0] == "\n<VALIDATE>\n<SYNTAX_OK> false\n</VALIDATE>\n"
    # The broken attempt is never trained as code; the second attempt keeps the record's labels.
    assert all(broken not in text for text in section_text(example, "code"))
    assert section_text(example, "code")[-1] == section_text(record, "code")[0]


def test_done_labels_the_closing_code_tag_as_the_decision():
    record = record_with_code(fixture("optimize_join_after.go"))
    example = examples_by_kind(record)["done"]
    assert example.text == record.text
    assert section_text(example, "refine") == ["</CODE>"]
    refine_span = next(span for span in example.spans if span.section == "refine")
    assert refine_span.start == record.text.index("</CODE>")


def test_code_that_does_not_parse_only_teaches_continue():
    record = record_with_code(fixture("broken_missing_paren.go") + "\nfunc more() {\n}\n")
    kinds = examples_by_kind(record)
    assert set(kinds) == {"continue"}


def test_several_files_must_all_parse_for_done():
    good = record_with_code(fixture("fix_server_after.go"), fixture("optimize_join_after.go"))
    assert set(examples_by_kind(good)) == {"continue", "refine", "done"}
    mixed = record_with_code(fixture("fix_server_after.go"), fixture("broken_missing_paren.go"))
    assert "done" not in examples_by_kind(mixed)


def test_records_without_code_give_no_examples():
    text = "<REPO> a/b\n<PR_TITLE> Docs\n"
    assert (
        controller_examples(
            SerializedRecord(text, [Span("other", 0, len(text))]), rng=random.Random(0), syntax_ok=syntax_ok
        )
        == []
    )
    empty = record_with_code("")
    assert controller_examples(empty, rng=random.Random(0), syntax_ok=syntax_ok) == []


def test_examples_are_deterministic_for_a_seed():
    record = record_with_code(fixture("add_cache_after.go"))
    first = controller_examples(record, rng=random.Random(3), syntax_ok=syntax_ok)
    again = controller_examples(record, rng=random.Random(3), syntax_ok=syntax_ok)
    assert [example.text for example in first] == [example.text for example in again]
    assert [example.spans for example in first] == [example.spans for example in again]


def test_injected_errors_are_rejected_by_the_go_parser():
    rng = random.Random(0)
    sources = [path.read_bytes().decode("utf-8") for path in sorted(FIXTURES.glob("*.go"))]
    sources = [source for source in sources if syntax_ok(source)]
    assert sources
    for source in sources:
        for _ in range(3):
            broken = inject_syntax_error(source, rng=rng, syntax_ok=syntax_ok)
            assert broken is not None and not syntax_ok(broken)
