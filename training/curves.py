"""Reading loss curves: a smoothed loss for tables, and the overfitting rule (validation up while training goes down)."""

from __future__ import annotations

from collections.abc import Sequence

# Validation loss must have risen at this many evaluations in a row before a run is flagged.
OVERFIT_EVALS = 3
# The runs list shows the mean of this many last logged training losses instead of the raw last one.
SMOOTHING_WINDOW = 20

Point = tuple[int, float]  # (step, value)


def moving_average(values: Sequence[float], window: int = SMOOTHING_WINDOW) -> float | None:
    """Mean of the last `window` values (fewer when there are fewer); None for none."""
    tail = [v for v in values[-window:] if v is not None]
    return sum(tail) / len(tail) if tail else None


def validation_rising(evals: Sequence[Point], rises: int = OVERFIT_EVALS) -> bool:
    """The validation loss rose at each of the last `rises` evaluations."""
    if rises < 1 or len(evals) < rises + 1:
        return False
    tail = [loss for _, loss in evals[-(rises + 1) :]]
    return all(later > earlier for earlier, later in zip(tail, tail[1:], strict=False))


def _mean_between(train: Sequence[Point], after: int, upto: int) -> float | None:
    values = [loss for step, loss in train if after < step <= upto and loss is not None]
    return sum(values) / len(values) if values else None


def overfitting(evals: Sequence[Point], train: Sequence[Point], rises: int = OVERFIT_EVALS) -> dict | None:
    """The overfitting notice, or None: validation loss rose at each of the last `rises` evaluations while the
    training loss (the mean of its logged values between evaluations) fell over the same span.

    `evals` and `train` are (step, loss) in step order."""
    if not validation_rising(evals, rises):
        return None
    tail = list(evals[-(rises + 1) :])
    before_start = evals[-(rises + 2)][0] if len(evals) >= rises + 2 else -1
    start_step, end_step = tail[0][0], tail[-1][0]
    train_then = _mean_between(train, before_start, start_step)
    train_now = _mean_between(train, tail[-2][0], end_step)
    if train_then is None or train_now is None or not train_now < train_then:
        return None
    best_step, best_loss = min(evals, key=lambda point: point[1])
    return {
        "evaluations": rises,
        "since_step": start_step,
        "step": end_step,
        "val_from": tail[0][1],
        "val_to": tail[-1][1],
        "train_from": train_then,
        "train_to": train_now,
        "best_step": best_step,
        "best_val_loss": best_loss,
    }
