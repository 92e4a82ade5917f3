"""Bradley–Terry scores and their Fisher-information intervals on hand-made judgements with known answers."""

from __future__ import annotations

import math

import pytest

from evaluation.ratings import ELO, Z95, bradley_terry, outcome_value


def by_model(scores):
    return {s.model: s for s in scores}


def games(a, b, wins_a, wins_b, ties=0):
    return [(a, b, 1.0)] * wins_a + [(a, b, 0.0)] * wins_b + [(a, b, 0.5)] * ties


def test_two_models_score_apart_by_the_log_odds_of_their_record():
    scores = by_model(bradley_terry(games("x", "y", 3, 1), prior_ties=0))
    assert scores["x"].score - scores["y"].score == pytest.approx(ELO * math.log(3), abs=1e-6)
    assert scores["x"].score + scores["y"].score == pytest.approx(2000, abs=1e-6)  # scores average 1000


def test_the_interval_is_the_wald_interval_of_the_log_odds():
    """With 4 games at q = 3/4 the information is 4·q·(1−q) = 0.75, so var(θx − θy) = 1/0.75, and under the
    sum-zero constraint each θ has a quarter of that: SE = sqrt(1/3)."""
    x = by_model(bradley_terry(games("x", "y", 3, 1), prior_ties=0))["x"]
    assert x.se == pytest.approx(ELO * math.sqrt(1 / 3), rel=1e-6)
    assert x.high - x.score == pytest.approx(Z95 * x.se) and x.score - x.low == pytest.approx(Z95 * x.se)


def test_ties_count_half_a_win_each():
    scores = by_model(bradley_terry(games("x", "y", 1, 1, ties=2), prior_ties=0))
    assert scores["x"].score == pytest.approx(1000) and scores["y"].score == pytest.approx(1000)
    assert scores["x"].wins == 2.0 and scores["x"].ratings == 4
    # One win and two ties: 2 of 3 → odds 2:1.
    scores = by_model(bradley_terry(games("x", "y", 1, 0, ties=2), prior_ties=0))
    assert scores["x"].score - scores["y"].score == pytest.approx(ELO * math.log(2), abs=1e-6)


def test_three_models_recover_the_strengths_that_made_the_record():
    """Records equal to their expectation under strengths 4 : 2 : 1 give exactly those strengths back."""
    record = games("a", "b", 20, 10) + games("a", "c", 24, 6) + games("b", "c", 20, 10)
    scores = by_model(bradley_terry(record, prior_ties=0))
    assert scores["a"].score - scores["b"].score == pytest.approx(ELO * math.log(2), abs=1e-5)
    assert scores["a"].score - scores["c"].score == pytest.approx(ELO * math.log(4), abs=1e-5)
    assert [s.model for s in bradley_terry(record)] == ["a", "b", "c"]  # best first


def test_order_of_a_pair_does_not_matter():
    one = bradley_terry([("x", "y", 1.0), ("x", "y", 0.5), ("y", "x", 0.0)])
    other = bradley_terry([("y", "x", 0.0), ("y", "x", 0.5), ("x", "y", 1.0)])
    assert [(s.model, round(s.score, 9), round(s.se, 9)) for s in one] == [
        (s.model, round(s.score, 9), round(s.se, 9)) for s in other
    ]


def test_a_perfect_record_stays_finite_with_the_prior_and_the_prior_is_one_virtual_tie():
    scores = by_model(bradley_terry(games("x", "y", 3, 0)))
    # One virtual tie: 3.5 wins against 0.5.
    assert scores["x"].score - scores["y"].score == pytest.approx(ELO * math.log(7), abs=1e-6)
    assert math.isfinite(scores["x"].high)


def test_more_judgements_narrow_the_interval():
    few = by_model(bradley_terry(games("x", "y", 3, 1)))["x"]
    many = by_model(bradley_terry(games("x", "y", 30, 10)))["x"]
    assert many.high - many.low < few.high - few.low


def test_bad_games_are_refused_and_no_games_give_no_scores():
    assert bradley_terry([]) == []
    with pytest.raises(ValueError, match="itself"):
        bradley_terry([("x", "x", 1.0)])
    with pytest.raises(ValueError, match="tie"):
        bradley_terry([("x", "y", 2.0)])
    assert [outcome_value(o) for o in ("a", "b", "tie")] == [1.0, 0.0, 0.5]
