"""When the train loop saves a checkpoint and which saved ones it keeps: the best by validation loss always stays."""

from __future__ import annotations


def is_new_best(val_loss: float | None, best_val_loss: float | None) -> bool:
    """A measured validation loss below every earlier one (the first one measured is the best so far)."""
    if val_loss is None or val_loss != val_loss:  # None or NaN never wins
        return False
    return best_val_loss is None or val_loss < best_val_loss


def should_save(step: int, *, save_steps: int, max_steps: int, new_best: bool) -> bool:
    """Every `save_steps`, at the last step, and whenever an evaluation just found the best model so far."""
    return new_best or step % save_steps == 0 or step == max_steps


def checkpoints_to_remove(
    saved_steps: list[int], *, best_step: int | None, save_steps: int, keep_last: int | None = None
) -> list[int]:
    """Steps whose checkpoint files can go, never the best one nor the latest (resume reads it).

    A checkpoint saved only because it was the best (off the `save_steps` grid) goes once a better one
    exists. With `keep_last`, only the newest `keep_last` checkpoints on the grid stay besides the best."""
    if not saved_steps:
        return []
    keep = {max(saved_steps)}
    if best_step is not None:
        keep.add(best_step)
    on_grid = sorted(step for step in saved_steps if step % save_steps == 0)
    keep.update(on_grid if keep_last is None else on_grid[len(on_grid) - keep_last :] if keep_last > 0 else [])
    return sorted(step for step in saved_steps if step not in keep)
