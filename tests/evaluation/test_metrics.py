"""Each metric on hand-made cases whose answers are known, refinement lift included."""

import math

import pytest

from evaluation.metrics import aggregate, code_of, edit_similarity, exact_match


def test_exact_match_ignores_line_end_whitespace_only():
    assert exact_match("func a() {\n\treturn  \n}\r\n\n\n", "\nfunc a() {\n\treturn\n}")
    assert not exact_match("func a() {\n  return\n}\n", "func a() {\n\treturn\n}\n")  # indentation counts
    assert not exact_match("func a() {}\n", "func b() {}\n")


def test_edit_similarity_is_normalized_levenshtein():
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)  # 3 edits, longer text 7
    assert edit_similarity("abc", "abc\n") == 1.0 and edit_similarity("", "") == 1.0
    assert edit_similarity("", "abcd") == 0.0 and edit_similarity("abcd", "wxyz") == 0.0
    assert edit_similarity("abcd", "abXd") == pytest.approx(0.75)


def test_code_of_removes_the_format_tags():
    assert code_of("\n<AFTER>\nfunc a() {}\n</AFTER>\n</CODE>") == "func a() {}\n"


ROWS = [
    # loss 1.0 x 10 tokens; refined into parsing code on the second attempt
    {
        "code_loss": 1.0,
        "code_tokens": 10,
        "correct_tokens": 5,
        "attempts": [{"parses": False}, {"parses": True}],
        "exact_match": True,
        "edit_similarity": 1.0,
        "parses_first": False,
        "parses_final": True,
        "gofmt_ok": True,
        "vet_ok": None,
    },
    # loss 2.0 x 30 tokens; never parses
    {
        "code_loss": 2.0,
        "code_tokens": 30,
        "correct_tokens": 15,
        "attempts": [{"parses": False}],
        "exact_match": False,
        "edit_similarity": 0.5,
        "parses_first": False,
        "parses_final": False,
        "gofmt_ok": False,
        "vet_ok": True,
    },
    # loss 0.5 x 20 tokens; parses at once, three attempts anyway
    {
        "code_loss": 0.5,
        "code_tokens": 20,
        "correct_tokens": 20,
        "attempts": [{"parses": True}] * 3,
        "exact_match": False,
        "edit_similarity": 0.0,
        "parses_first": True,
        "parses_final": True,
        "gofmt_ok": None,
        "vet_ok": None,
    },
]


def test_aggregate_weighs_loss_by_tokens_and_shares_by_the_tasks_that_measured_them():
    metrics = aggregate(ROWS)
    assert metrics["code_loss"] == pytest.approx((10 * 1.0 + 30 * 2.0 + 20 * 0.5) / 60)  # 4/3
    assert metrics["perplexity"] == pytest.approx(math.exp(4 / 3))
    assert metrics["token_accuracy"] == pytest.approx(40 / 60)
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["edit_similarity"] == pytest.approx(0.5)
    assert metrics["parse_first"] == pytest.approx(1 / 3)
    assert metrics["parse_final"] == pytest.approx(2 / 3)
    assert metrics["refinement_lift_points"] == pytest.approx(100 / 3)  # one task in three fixed by refining
    assert metrics["mean_attempts"] == pytest.approx(2.0)
    assert metrics["gofmt_ok"] == pytest.approx(0.5)  # the third task did not measure it
    assert metrics["vet_ok"] == 1.0 and metrics["vet_tasks"] == 1
    assert metrics["n_tasks"] == 3


def test_refinement_that_breaks_code_gives_a_negative_lift():
    rows = [{"parses_first": True, "parses_final": False}, {"parses_first": True, "parses_final": True}]
    assert aggregate(rows)["refinement_lift_points"] == pytest.approx(-50.0)


def test_an_unmeasured_metric_is_absent_never_zero():
    metrics = aggregate([{**row, "vet_ok": None, "gofmt_ok": None} for row in ROWS])
    assert metrics["vet_ok"] is None and metrics["gofmt_ok"] is None and metrics["vet_tasks"] == 0
    empty = aggregate([])
    assert empty["n_tasks"] == 0
    assert all(value is None for key, value in empty.items() if key not in ("n_tasks", "vet_tasks"))
    # A task without reference tokens adds nothing to the loss (not a zero loss).
    assert aggregate([*ROWS, {"code_loss": None, "code_tokens": 0}])["code_loss"] == pytest.approx(4 / 3)
