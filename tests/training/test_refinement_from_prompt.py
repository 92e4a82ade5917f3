"""The refinement loop from an evaluation prompt (a record up to `<CODE>`), and empty attempts, which
never end a loop as done."""

import random

import pytest

from corpus import golang, tags
from corpus.records import FileRecord, PRRecord, SerializedRecord
from corpus.serialize import serialize
from tests.training.test_generate import BROKEN, PLAN, VALID, ScriptedSource, attempt, run
from training.augment import controller_examples
from training.hrm.generate import generate_from_prompt, section_feedback

ONE = "package p\n\nfunc a() int {\n\treturn 1\n}\n"
TWO = "package p\n\nfunc b() int {\n\treturn 2\n}\n"


@pytest.mark.parametrize("blank", ["", "  \n\t\n"])
def test_an_empty_or_blank_attempt_does_not_end_the_loop_as_done(blank):
    source = ScriptedSource(PLAN + attempt(blank, tags.CODE_END) + attempt(VALID, tags.CODE_END))
    events = run(source, max_iterations=3)
    iterations = [e for e in events if e["type"] == "iteration"]
    assert [(e["syntax_ok"], e["errors"], e["decision"]) for e in iterations] == [
        (False, [golang.EMPTY_ATTEMPT], "</CODE>"),
        (True, [], "</CODE>"),
    ]
    assert events[-1]["stopped"] == "done" and events[-1]["code"] == VALID and events[-1]["iterations"] == 2


def record(*files: FileRecord) -> SerializedRecord:
    return serialize(PRRecord(repo="o/r", number=1, title="Return numbers", body="Adds a and b.", files=list(files)))


def split(text: str) -> tuple[str, str]:
    """(prompt, the CODE section after `<CODE>` without `</CODE>`), as an evaluation suite cuts a record."""
    cut = text.index(tags.CODE) + len(tags.CODE)
    return text[:cut], text[cut : text.index(tags.CODE_END, cut)]


def refinement_example(rec: SerializedRecord) -> SerializedRecord:
    for seed in range(50):
        for example in controller_examples(rec, rng=random.Random(seed), syntax_ok=golang.syntax_ok):
            if f"{tags.REFINE}\n{tags.CODE}" in example.text:
                return example
    raise AssertionError("augment made no refinement example")


def test_the_loop_continues_a_failed_attempt_exactly_as_augment_writes_refinement_records():
    # The refinement record augment trains on: a broken attempt, `</CODE>`, the failed verdict, `<REFINE>`,
    # then the record's own CODE section. Replaying the model's side of it through the loop must show the
    # model, for its second attempt, exactly that record's text.
    example = refinement_example(record(FileRecord("x.go", before=ONE, after=TWO)))
    prompt, broken_section = split(example.text)
    second_start = example.text.index(f"{tags.REFINE}\n{tags.CODE}") + len(f"{tags.REFINE}\n{tags.CODE}")
    _, good_section = split(example.text[second_start - len(tags.CODE) :])
    source = ScriptedSource(broken_section + tags.CODE_END + good_section + tags.CODE_END)

    events = list(generate_from_prompt(source, prompt, max_iterations=3, max_code_tokens=500))

    iterations = [e for e in events if e["type"] == "iteration"]
    assert [(e["syntax_ok"], e["decision"]) for e in iterations] == [(False, "</CODE>"), (True, "</CODE>")]
    assert iterations[1]["code"] == golang_code(good_section) and "func b()" in iterations[1]["code"]
    second_context = source.contexts[-len(source.tokenizer.encode(good_section)) - 1]
    assert second_context == "<s>" + example.text[:second_start]
    assert events[-1] == {
        "type": "done",
        "code": iterations[1]["code"],
        "syntax_ok": True,
        "iterations": 2,
        "stopped": "done",
    }


def golang_code(section: str) -> str:
    return section.split(f"{tags.AFTER}\n", 1)[1].split(tags.AFTER_END, 1)[0]


def test_several_files_are_validated_apart_and_a_cut_attempt_is_closed_before_the_feedback():
    rec = record(FileRecord("a.go", before=None, after=ONE), FileRecord("b.go", before=None, after=TWO))
    prompt, reference = split(rec.text)
    assert reference.count('<FILE path="') == 2
    broken = reference.replace("return 2\n}", "return 2\n", 1)  # b.go loses its closing brace
    # 1: b.go broken, the model says done. 2: cut by the token limit inside a.go's block. 3: the reference.
    tokenizer = ScriptedSource("").tokenizer
    limit = len(tokenizer.encode(broken)) + 1
    cut = '\n<FILE path="a.go">\n<AFTER>\npackage p\n'
    cut += "x" * (limit - len(tokenizer.encode(cut)))
    source = ScriptedSource(broken + tags.CODE_END + cut + reference + tags.CODE_END)

    events = list(generate_from_prompt(source, prompt, max_iterations=3, max_code_tokens=limit))

    first, second, third = (e for e in events if e["type"] == "iteration")
    assert first["decision"] == "</CODE>" and not first["syntax_ok"]
    assert first["errors"] and all(error.startswith("b.go: ") for error in first["errors"])
    assert "func a()" in first["code"] and "func b()" in first["code"]
    assert second["decision"] is None and second["code"].startswith("//hrgc:file a.go\npackage p\nxx")
    assert second["errors"] and all(error.startswith("a.go: ") for error in second["errors"])
    assert third["syntax_ok"] and third["code"] == f"//hrgc:file a.go\n{ONE}\n//hrgc:file b.go\n{TWO}"
    # The third attempt was written after the cut one, closed as the format closes blocks, and the verdict.
    third_context = source.contexts[2 * limit]
    assert third_context == (
        "<s>"
        + prompt
        + broken
        + tags.CODE_END
        + section_feedback(False)
        + cut
        + "\n</AFTER>\n</FILE>\n</CODE>"
        + section_feedback(False)
    )


def test_a_prompt_must_end_at_code():
    with pytest.raises(ValueError, match="<CODE>"):
        list(generate_from_prompt(ScriptedSource(""), "<PR_TITLE> x\n", max_iterations=1, max_code_tokens=5))


def test_broken_code_keeps_a_parsing_attempt_found_before():
    prompt, _ = split(record(FileRecord("x.go", before=ONE, after=TWO)).text)
    script = f"\n<AFTER>\n{VALID}</AFTER>\n{tags.REFINE}" + f"\n<AFTER>\n{BROKEN}</AFTER>\n{tags.CODE_END}"
    events = list(generate_from_prompt(ScriptedSource(script), prompt, max_iterations=2, max_code_tokens=200))
    assert [(e["syntax_ok"], e["decision"]) for e in events if e["type"] == "iteration"] == [
        (True, "<REFINE>"),
        (False, "</CODE>"),
    ]
    assert events[-1]["code"] == VALID and events[-1]["syntax_ok"] is True
