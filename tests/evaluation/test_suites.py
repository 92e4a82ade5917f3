"""evaluation.suites on a real dataset directory: which records become tasks, where prompt and reference
are cut, the deterministic choice and the hash. No database."""

from __future__ import annotations

import shutil

import pytest

from evaluation.suites import SuiteError, SuiteTask, read_tasks, split_record, suite_hash
from training.dataset import decode_sample

RECORD = (
    "<REPO> a/b\n<PR_TITLE> Fix it\n<PR_BODY> body\n\n<PLAN>\n</PLAN>\n\n<CONTEXT>\n</CONTEXT>\n"
    "<CODE>\n<AFTER>\nfunc f() {}\n</AFTER>\n</CODE>\n<VALIDATE>\n<SYNTAX_OK> true\n</VALIDATE>\n"
)


def test_prompt_ends_at_code_and_reference_runs_to_the_end_of_the_code_section():
    prompt, reference = split_record(RECORD)
    assert prompt.endswith("<CODE>") and prompt.startswith("<REPO> a/b")
    assert reference == "\n<AFTER>\nfunc f() {}\n</AFTER>\n</CODE>"
    assert RECORD.startswith(prompt + reference)


@pytest.mark.parametrize(
    "text",
    [
        RECORD.replace("<PR_TITLE> Fix it\n", ""),  # no title: a fragment
        RECORD.split("<CODE>")[0],  # no CODE section
        RECORD.replace("func f() {}\n", "func f() {\n<CONTINUE>}\n"),  # controller example: continue
        RECORD.replace("<CODE>\n", "<CODE>\n<AFTER>\nfunc f( {}\n</AFTER>\n</CODE>\n<REFINE>\n<CODE>\n"),
        RECORD.replace("func f() {}\n", ""),  # a CODE section with no code
    ],
)
def test_records_that_are_not_tasks_are_skipped(text):
    assert split_record(text) is None


def test_tasks_are_evenly_spaced_deterministic_and_cut_from_the_validation_records(dataset_files):
    tasks = read_tasks(dataset_files, 3)
    again = read_tasks(dataset_files, 3)
    assert tasks == again and suite_hash(tasks) == suite_hash(again)
    assert [task.index for task in tasks] == [0, 1, 2]
    assert len({task.record_index for task in tasks}) == 3
    for task in tasks:
        record = "".join(text for text, _ in decode_sample(dataset_files, "val", task.record_index))
        assert record.startswith("<s>" + task.prompt + task.reference)
        assert task.prompt.endswith("<CODE>") and task.reference.endswith("</CODE>")
        assert task.title and task.repo and task.path.startswith("pkg/")
        assert task.prompt_tokens > 0 and task.reference_tokens > 0
    # Asking for more than the split holds gives every distinct task once (controller examples left out).
    every = read_tasks(dataset_files, 1000)
    assert 3 < len(every) < 1000
    assert len({(t.prompt, t.reference) for t in every}) == len(every)
    assert all("<REFINE>" not in t.reference and "<CONTINUE>" not in t.reference for t in every)


def test_the_hash_covers_every_prompt_and_reference_in_order():
    a = SuiteTask(index=0, record_index=0, prompt="p<CODE>", reference="\nx</CODE>")
    b = SuiteTask(index=1, record_index=4, prompt="q<CODE>", reference="\ny</CODE>")
    assert suite_hash([a, b]) != suite_hash([b, a])
    assert suite_hash([a]) != suite_hash([SuiteTask(index=0, record_index=0, prompt="p<CODE>\n", reference="x</CODE>")])
    assert len(suite_hash([a])) == 64


def test_an_empty_validation_split_is_a_clear_error(dataset_files, tmp_path):
    empty = tmp_path / "empty"
    shutil.copytree(dataset_files, empty)
    (empty / "val.bin").write_bytes(b"")
    (empty / "val.starts.u64").unlink(missing_ok=True)
    with pytest.raises(SuiteError, match="val split holds no records"):
        read_tasks(empty, 5)
    with pytest.raises(SuiteError, match="at least one task"):
        read_tasks(dataset_files, 0)
