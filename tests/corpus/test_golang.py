from pathlib import Path

import pytest

from corpus.golang import changed_declarations, declarations, syntax_errors, syntax_ok

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"


def read(name: str) -> str:
    # Bytes, not read_text: universal newlines would turn the CRLF fixture into LF.
    return (FIXTURES / name).read_bytes().decode("utf-8", errors="surrogateescape")


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.go") if not p.name.startswith("broken")))
def test_every_valid_fixture_parses(name):
    assert syntax_errors(read(name), use_gofmt=False) == []
    assert syntax_ok(read(name))


def test_missing_paren_is_reported_with_its_line():
    errors = syntax_errors(read("broken_missing_paren.go"), use_gofmt=False)
    assert errors == ['6:30: missing ")"']
    assert not syntax_ok(read("broken_missing_paren.go"))


def test_error_node_is_reported_with_character_column():
    # "é" is two bytes in UTF-8; the column counts characters.
    errors = syntax_errors('package p\n\nfunc f() {\n\tx := "é" +\n}\n', use_gofmt=False)
    assert errors == ["4:11: syntax error near '+'"]


def test_invalid_utf8_text_is_an_error_not_an_exception():
    undecodable = b"package p\n\n// caf\xe9\nfunc f() {}\n".decode("utf-8", errors="surrogateescape")
    assert syntax_errors(undecodable, use_gofmt=False) == ["3:7: invalid UTF-8 encoding"]
    assert "f" in declarations(undecodable)


def test_huge_and_odd_input_never_raises():
    huge = "package p\n" + "// x\n" * 1_000_000
    assert syntax_errors(huge)[0].startswith("1:1: source too large")
    assert declarations(huge) == {}
    for text in ["", "\x00\x01\x02", "}}}{{{", "package", "\ud800"]:
        assert isinstance(syntax_errors(text), list)
        assert isinstance(declarations(text), dict)


def test_declarations_know_each_kind():
    found = declarations(read("refactor_store_before.go"))
    assert {key: d.kind for key, d in found.items()} == {
        "Store": "interface",
        "User": "type",
        "memStore": "type",
        "memStore.Get": "method",
        "memStore.Put": "method",
        "loadUsers": "func",
    }
    get = found["memStore.Get"]
    assert (get.name, get.receiver, get.display) == ("Get", "*memStore", "(*memStore).Get()")
    assert (get.start_line, get.end_line) == (27, 33)
    assert found["Store"].start_line == 12 and found["Store"].end_line == 15


def test_generic_receiver_drops_type_arguments():
    found = declarations(read("add_cache_after.go"))
    assert found["Cache.Delete"].receiver == "*Cache"
    assert found["Cache.Delete"].display == "(*Cache).Delete()"
    assert found["Keys"].kind == "func" and found["Cache"].kind == "type"


def test_value_receiver_and_grouped_types_and_repeated_init():
    source = (
        "package p\n\ntype (\n\tA int\n\tB interface{ M() }\n)\n\n"
        'func (a A) String() string { return "a" }\n\nfunc init() {}\n\nfunc init() {}\n'
    )
    found = declarations(source)
    assert found["A.String"].display == "A.String()"
    assert (found["A"].kind, found["B"].kind) == ("type", "interface")
    assert (found["A"].start_line, found["B"].start_line) == (4, 5)
    assert set(found) >= {"init", "init#2"}


def test_function_body_facts():
    handle = declarations(read("fix_server_after.go"))["handle"]
    assert handle.calls == {"process"}
    assert handle.nil_checks == {"r"}


def test_changed_declarations_added_changed_removed_in_line_order():
    before = "package p\n\nfunc a() {}\n\nfunc b() { x() }\n\ntype T struct{}\n"
    after = "package p\n\nfunc b() { y() }\n\ntype I interface{ Do() }\n\nfunc a() {}\n"
    changes = [(c.change, c.declaration.key) for c in changed_declarations(before, after)]
    assert changes == [("changed", "b"), ("added", "I"), ("removed", "T")]


def test_comment_and_layout_only_edits_are_not_changes():
    before = "package p\n\nfunc f(x int) int {\n\treturn x + 1\n}\n"
    after = "package p\n\n// f adds one.\nfunc f(x int) int {\n\t// why: off by one\n\treturn x +\n\t\t1\n}\n"
    assert changed_declarations(before, after) == []


def test_new_and_deleted_files():
    added = changed_declarations(None, read("optimize_join_after.go"))
    assert [(c.change, c.declaration.key) for c in added] == [("added", "Join")]
    removed = changed_declarations(read("optimize_join_before.go"), None)
    assert [(c.change, c.declaration.key) for c in removed] == [("removed", "Join")]


def test_changed_declaration_keeps_previous_version():
    [change] = changed_declarations(read("fix_server_before.go"), read("fix_server_after.go"))
    assert change.change == "changed" and change.declaration.key == "handle"
    assert change.previous.nil_checks == frozenset() and change.declaration.nil_checks == {"r"}
    assert change.previous.end_line == 34 and change.declaration.end_line == 38


def test_statements_outside_a_function_are_errors():
    # tree-sitter-go accepts statements at the top of a file; Go does not.
    assert syntax_errors("x := 1\n")
    assert syntax_errors("for {}\n")
    assert syntax_ok("var x = 1;\n")
    assert syntax_ok('package main;\nimport "fmt";\nfunc main() { fmt.Println(1) };\n')


def test_an_empty_or_blank_attempt_does_not_parse_although_go_accepts_an_empty_file():
    from corpus.golang import EMPTY_ATTEMPT, attempt_errors, attempt_parses

    # Why attempts need their own check: tree-sitter (all there is without Go) accepts an empty file, and
    # gofmt's verdict on one is three puzzling "expected ..." messages.
    assert syntax_errors("", use_gofmt=False) == [] and syntax_errors(" \n\t\n", use_gofmt=False) == []
    for blank in ("", " ", "\n\n", " \t\r\n "):
        assert attempt_errors(blank) == [EMPTY_ATTEMPT]
        assert not attempt_parses(blank)
    assert attempt_errors("package p\n\nfunc f() {}\n") == [] and attempt_parses("func f() {}\n")
    assert attempt_errors("func f( {\n") == syntax_errors("func f( {\n") != []
    assert not attempt_parses("func f( {\n")


def test_a_block_of_deletion_marks_parses_and_files_of_joined_code_are_judged_apart():
    from corpus.golang import EMPTY_ATTEMPT, attempt_errors

    deletions = "// deleted: func split(path string) []string\n\n// deleted: type Config struct\n"
    assert syntax_errors(deletions) == [] and attempt_errors(deletions) == []  # gofmt alone would refuse it
    assert syntax_errors("// x\nfunc f( {\n")
    joined = f"//hrgc:file a.go\npackage p\n\n{deletions}\n//hrgc:file b.go\npackage p\n\nfunc b() {{}}\n"
    assert syntax_errors(joined)  # two files are not one Go file...
    assert attempt_errors(joined) == []  # ...but each parses
    broken = joined.replace("func b() {}", "func b( {}")
    assert attempt_errors(broken) and all(error.startswith("b.go: ") for error in attempt_errors(broken))
    assert attempt_errors("//hrgc:file a.go\n\n//hrgc:file b.go\nfunc b() {}\n") == [f"a.go: {EMPTY_ATTEMPT}"]
