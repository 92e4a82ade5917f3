"""The best-checkpoint rule: save when an evaluation finds the best model so far, and never remove that one."""

from __future__ import annotations

import math

from training.checkpoint_policy import checkpoints_to_remove, is_new_best, should_save


def test_the_first_measured_validation_loss_is_the_best_so_far():
    assert is_new_best(7.1, None)


def test_only_a_strictly_lower_loss_is_a_new_best():
    assert is_new_best(6.9, 7.0)
    assert not is_new_best(7.0, 7.0)
    assert not is_new_best(7.6, 6.92)


def test_no_measurement_or_nan_is_never_a_best():
    assert not is_new_best(None, 7.0)
    assert not is_new_best(math.nan, None)


def test_saves_on_the_grid_at_the_end_and_at_a_new_best():
    assert should_save(100, save_steps=100, max_steps=2000, new_best=False)
    assert should_save(2000, save_steps=300, max_steps=2000, new_best=False)
    # The case: the best validation loss at step 250 with saves every 100.
    assert should_save(250, save_steps=100, max_steps=2000, new_best=True)
    assert not should_save(250, save_steps=100, max_steps=2000, new_best=False)


def test_a_superseded_best_off_the_grid_goes_but_the_best_and_the_latest_stay():
    saved = [100, 200, 250, 300, 350]
    assert checkpoints_to_remove(saved, best_step=350, save_steps=100) == [250]
    # A later, worse evaluation never removes the best: the step 250 stays to the end.
    saved = [100, 200, 250, 300, 400, 2000]
    assert checkpoints_to_remove(saved, best_step=250, save_steps=100) == []


def test_keep_last_keeps_the_newest_grid_checkpoints_and_always_the_best():
    saved = [100, 200, 250, 300, 400, 500]
    assert checkpoints_to_remove(saved, best_step=250, save_steps=100, keep_last=2) == [100, 200, 300]
    assert checkpoints_to_remove(saved, best_step=100, save_steps=100, keep_last=1) == [200, 250, 300, 400]
    # keep_last=0 still keeps the latest (resume reads it) and the best.
    assert checkpoints_to_remove(saved, best_step=250, save_steps=100, keep_last=0) == [100, 200, 300, 400]


def test_the_latest_checkpoint_stays_even_off_the_grid():
    # A stop at step 137 saves there; resume must find it.
    assert checkpoints_to_remove([100, 137], best_step=100, save_steps=100) == []
    assert checkpoints_to_remove([100, 137, 200], best_step=100, save_steps=100) == [137]


def test_nothing_saved_nothing_removed():
    assert checkpoints_to_remove([], best_step=None, save_steps=100) == []
