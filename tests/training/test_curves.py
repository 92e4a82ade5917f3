"""The overfitting rule and the smoothed loss the runs list shows."""

from __future__ import annotations

from training.curves import moving_average, overfitting

TRAIN_FALLING = [(step, 8.0 - step / 100) for step in range(10, 601, 10)]


def test_validation_rising_three_times_while_training_falls_is_overfitting():
    # The run: best 6.92 at step 250, then up to 7.62 while training goes on falling.
    evals = [(50, 7.9), (150, 7.2), (250, 6.92), (350, 7.1), (450, 7.3), (550, 7.62)]
    notice = overfitting(evals, TRAIN_FALLING)
    assert notice is not None
    assert (notice["since_step"], notice["step"]) == (250, 550)
    assert (notice["val_from"], notice["val_to"]) == (6.92, 7.62)
    assert notice["train_to"] < notice["train_from"]
    assert (notice["best_step"], notice["best_val_loss"]) == (250, 6.92)


def test_two_rises_are_not_yet_a_trend():
    evals = [(100, 7.0), (200, 6.9), (300, 7.0), (400, 7.1)]
    assert overfitting(evals, TRAIN_FALLING) is None
    assert overfitting(evals, TRAIN_FALLING, rises=2) is not None


def test_a_dip_in_between_resets_the_count():
    evals = [(100, 7.0), (200, 7.1), (300, 7.0), (400, 7.2), (500, 7.3)]
    assert overfitting(evals, TRAIN_FALLING) is None


def test_both_losses_rising_is_divergence_not_overfitting():
    train_rising = [(step, 2.0 + step / 100) for step in range(10, 601, 10)]
    evals = [(100, 7.0), (200, 7.1), (300, 7.2), (400, 7.3)]
    assert overfitting(evals, train_rising) is None


def test_no_training_points_no_notice():
    assert overfitting([(100, 7.0), (200, 7.1), (300, 7.2), (400, 7.3)], []) is None
    assert overfitting([], TRAIN_FALLING) is None


def test_moving_average_of_the_last_values():
    # A spike at the end moves the mean a little, not to the spike.
    values = [4.0] * 19 + [6.72]
    assert moving_average(values) == (4.0 * 19 + 6.72) / 20
    assert moving_average([5.0, 3.0], window=20) == 4.0
    assert moving_average([]) is None
