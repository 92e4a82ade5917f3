"""The Go text of CODE sections and attempts: single file, several files, cut short, plain code."""

from corpus.code_section import code_of, files_of
from corpus.records import FileRecord, PRRecord
from corpus.serialize import serialize

ONE = "package p\n\nfunc a() int {\n\treturn 1\n}\n"
TWO = "package p\n\nfunc b() int {\n\treturn 2\n}\n"


def code_section(text: str) -> str:
    start = text.index("<CODE>") + len("<CODE>")
    return text[start : text.index("</CODE>", start) + len("</CODE>")]


def test_a_single_file_section_gives_its_after_block():
    record = serialize(PRRecord(repo="o/r", number=1, title="t", files=[FileRecord("x.go", before=ONE, after=TWO)]))
    section = code_section(record.text)
    assert section.startswith("\n<AFTER>\n") and section.endswith("</AFTER>\n</CODE>")
    assert files_of(section) == [("", code_of(section))]
    assert "func b() int {\n\treturn 2\n}\n" in code_of(section)
    assert "<" not in code_of(section)


def test_several_files_keep_their_paths_and_are_joined_by_a_blank_line():
    record = serialize(
        PRRecord(
            repo="o/r",
            number=1,
            title="t",
            files=[FileRecord('a "odd".go', before=None, after=ONE), FileRecord("b.go", before=None, after=TWO)],
        )
    )
    section = code_section(record.text)
    files = files_of(section)
    assert [path for path, _ in files] == ['a "odd".go', "b.go"]
    assert "func a()" in files[0][1] and "func b()" in files[1][1]
    # One text for reading and comparing; each file after a `//hrgc:file` line, so they can be told apart.
    joined = code_of(section)
    assert joined == f"//hrgc:file a %22odd%22.go\n{files[0][1]}\n//hrgc:file b.go\n{files[1][1]}"
    assert files_of(joined) == files and code_of(joined) == joined


def test_plain_code_is_unchanged_and_stray_tags_and_continue_marks_are_removed():
    assert code_of(ONE) == ONE and code_of(code_of(ONE)) == ONE
    assert code_of("func a() {}\n</AFTER>\n</CODE>") == "func a() {}\n\n"
    assert code_of("\n<AFTER>\nfunc a() {\n<CONTINUE>\treturn\n}\n</AFTER>\n</CODE>") == "func a() {\n\treturn\n}\n"


def test_an_attempt_cut_short_counts_up_to_the_end_of_the_text():
    assert code_of("\n<AFTER>\nfunc a() {\n\treturn\n") == "func a() {\n\treturn\n"
    assert files_of('\n<FILE path="x.go">\n<AFTER>\nfunc a(') == [("x.go", "func a(")]
    assert code_of("") == ""
