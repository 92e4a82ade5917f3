"""Training records scoped to the change: declarations, the token budget, hostile files, near duplicates."""

from __future__ import annotations

import random

from corpus import golang, quality
from corpus.plans import extract_plan
from corpus.records import FileRecord, PRRecord
from corpus.serialize import (
    CONTEXT_DROPPED,
    CUT,
    FIT_WHOLE,
    SPLIT,
    RecordParts,
    build_parts,
    change_text,
    estimate_tokens,
    render,
    serialize,
    split_records,
)
from tests.go_fixtures import edit_function, large_file


def test_outline_delimits_declarations_with_their_doc_comments():
    source = (
        '// Package p does things.\npackage p\n\nimport (\n\t"fmt"\n)\n\n// free comment\n\n'
        "// Config holds settings.\ntype Config struct {\n\tName string\n}\n\n"
        "const (\n\tA = 1\n\tB = 2\n)\n\nvar x = 1 // trailing\n\n"
        "// Start starts.\nfunc (s *Server) Start() error {\n\treturn nil\n}\n\nfunc init() {}\n\nfunc init() {}\n"
    )
    outline = golang.outline(source)
    assert outline.parsed
    assert [(item.kind, item.key) for item in outline.items if item.kind != "other"] == [
        ("package", "package"),
        ("import", "import"),
        ("type", "type Config"),
        ("const", "const A"),
        ("var", "var x"),
        ("method", "method Server.Start"),
        ("func", "func init"),
        ("func", "func init#2"),
    ]
    by_key = {item.key: item for item in outline.items}
    assert by_key["type Config"].text.startswith("// Config holds settings.\ntype Config struct")
    assert by_key["method Server.Start"].signature == "func (s *Server) Start() error"
    assert by_key["method Server.Start"].display == "(*Server).Start()"
    assert by_key["var x"].text == "var x = 1 // trailing"
    assert [item.text for item in outline.items if item.kind == "other"] == ["// free comment"]


def test_a_file_the_parser_rejects_falls_back_to_hunks_and_is_flagged():
    before = "package p\n\nfunc a() {\n\treturn\n}\n\nfunc b() {}\n"
    after = "package p\n\nfunc a() {\n\treturn (\n}\n\nfunc b() {}\n"
    assert not golang.outline(after).parsed
    pr = PRRecord(repo="o/r", number=1, title="Break a", files=[FileRecord(path="p.go", before=before, after=after)])
    text = serialize(pr).text
    assert '<FILE path="p.go" parsed="false">' in text
    assert "\treturn (\n" in text and "func a() {\n" in text


def test_numbering_sixteen_thousand_inits_stays_correct():
    # Linear by construction (one counter per name); bench/records.py times it.
    source = "package p\n\n" + "func init() {}\n" * 16_000
    keys = [item.key for item in golang.outline(source).items]
    assert keys[1] == "func init" and keys[-1] == "func init#16000" and len(set(keys)) == len(keys)
    assert "init#16000" in golang.declarations(source)
    grown = source + "func init() { println(1) }\n"
    [change] = golang.changed_items(golang.outline(source), golang.outline(grown))
    assert (change.change, change.key) == ("added", "func init#16001")
    pr = PRRecord(repo="o/r", number=1, title="x", files=[FileRecord(path="p.go", before=source, after=grown)])
    parts = build_parts(pr)
    assert len(parts.files[0].signatures) <= 200 and len(parts.files[0].units) == 1


def many_edits() -> tuple[str, list[PRRecord]]:
    source, names = large_file()
    rng = random.Random(3)
    prs = []
    for number, name in enumerate(names[5:125:5], start=1):
        prs.append(
            PRRecord(
                repo="acme/ledger",
                number=number,
                title=f"Guard {name} against too many entries",
                body="Large inputs made it slow.",
                files=[FileRecord(path="ledger.go", before=source, after=edit_function(source, name, rng))],
            )
        )
    return source, prs


def test_each_record_holds_the_changed_function_and_not_the_rest_of_the_file():
    source, prs = many_edits()
    assert source.count("\n") > 3000 and len(prs) >= 20
    names = [pr.title.split()[1] for pr in prs]
    for pr, name in zip(prs, names, strict=True):
        fitted = split_records(build_parts(pr))
        assert len(fitted.records) == 1 and fitted.reasons == {FIT_WHOLE: 1}
        text = fitted.records[0].text
        assert estimate_tokens(text) + 2 <= 1024
        before = text.split("<BEFORE>\n", 1)[1].split("</BEFORE>", 1)[0]
        after = text.split("<AFTER>\n", 1)[1].split("</AFTER>", 1)[0]
        assert f"func {name}(" in before and f"func {name}(" in after
        assert before.startswith("package ledger\n\nimport (")
        assert f"<TARGET:func> {name}() in ledger.go" in text
        others = [n for n in names if n != name]
        # Other functions' bodies stay out; at most their one-line signatures are there.
        assert all(f"func {other}(" not in after for other in others)
        assert all(f"// {other} folds" not in text for other in others)
        assert len(text) < len(source) / 10


def test_different_functions_of_one_file_are_not_near_duplicates_but_a_cherry_pick_is():
    _, prs = many_edits()
    texts = {pr.number: change_text(build_parts(pr)) for pr in prs}
    assert quality.near_duplicates(texts) == {}
    assert quality.exact_duplicates(texts) == {}
    pick = prs[4]
    cherry = PRRecord(
        repo="acme/ledger",
        number=99,
        title=f"[release-1.2] {pick.title} (#5)",
        body="Cherry-pick of #5.",
        files=pick.files,
    )
    texts[99] = change_text(build_parts(cherry))
    assert quality.near_duplicates(texts) == {99: pick.number}


def test_a_pr_over_the_budget_becomes_records_that_repeat_header_and_their_steps():
    source, names = large_file()
    rng = random.Random(5)
    after = source
    for name in names[10:40]:
        after = edit_function(after, name, rng)
    pr = PRRecord(
        repo="acme/ledger",
        number=7,
        title="Guard every folder",
        files=[FileRecord(path="ledger.go", before=source, after=after)],
    )
    plan = extract_plan(pr)
    parts = build_parts(pr, plan)
    named = {line.split()[1][:-2] for line in plan.steps if line.startswith("<TARGET:")}
    assert len(named) == 16
    fitted = split_records(parts, budget=1024)
    assert fitted.reasons.get(SPLIT) == 1 and len(fitted.records) > 1
    seen = set()
    for record in fitted.records:
        assert estimate_tokens(record.text) + 2 <= 1024
        assert record.text.startswith("<REPO> acme/ledger\n<PR_TITLE> Guard every folder\n")
        held = {name for name in names[10:40] if f"func {name}(" in record.text.split("<CODE>", 1)[1]}
        assert held and not held & seen
        seen |= held
        targets = {line.split()[2][:-2] for line in record.text.splitlines() if line.startswith("<STEP> <TARGET:")}
        # Each record repeats only the plan steps of its own declarations (the plan names the first 16).
        assert targets == held & named
    assert seen == set(names[10:40])


def test_a_declaration_longer_than_the_budget_is_cut_at_line_boundaries():
    body = "".join(f'\tx{i} := strings.Repeat("abc", {i})\n' for i in range(400))
    before = "package p\n\nfunc big() {\n" + body + "}\n"
    after = "package p\n\nfunc big() {\n\tprintln(0)\n" + body + "}\n"
    pr = PRRecord(repo="o/r", number=1, title="Print", files=[FileRecord(path="p.go", before=before, after=after)])
    fitted = split_records(build_parts(pr), budget=512)
    assert fitted.reasons[CUT] == 1 and fitted.reasons[SPLIT] == 1
    joined = "".join(r.text.split("<AFTER>\n", 1)[1].split("</AFTER>", 1)[0] for r in fitted.records)
    assert joined == after.split("\n\n", 1)[1]
    assert all(estimate_tokens(r.text) + 2 <= 512 for r in fitted.records)
    small_context = split_records(build_parts(pr), budget=2 * estimate_tokens(after) + 40)
    assert CONTEXT_DROPPED in small_context.reasons or FIT_WHOLE in small_context.reasons


def test_deleted_declarations_are_marked_and_outside_changes_appear_as_lines():
    before = 'package p\n\nimport "fmt"\n\nfunc keep() {}\n\n// Old is gone.\nfunc old(x int) int {\n\treturn x\n}\n'
    after = 'package p\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc keep() {}\n'
    pr = PRRecord(repo="o/r", number=1, title="Drop old", files=[FileRecord(path="p.go", before=before, after=after)])
    text = serialize(pr).text
    code = text.split("<CODE>", 1)[1]
    assert "// deleted: func old(x int) int" in code
    assert 'import (\n\t"fmt"\n\t"os"\n)' in code and "func keep" not in code


def test_parts_round_trip_through_json():
    _, prs = many_edits()
    parts = build_parts(prs[0])
    again = RecordParts.from_json(parts.to_json())
    assert render(again) == render(parts)
