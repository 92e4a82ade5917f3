"""Reads of training runs for the pages: smoothed losses and overfitting notices, a few queries per page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from training.curves import OVERFIT_EVALS, SMOOTHING_WINDOW, moving_average, overfitting, validation_rising
from training.models import MetricPoint, TrainingRun


def run_health(runs: Iterable[TrainingRun]) -> dict[int, dict]:
    """Per run id: `smoothed_loss` (mean of the last SMOOTHING_WINDOW logged losses) and `overfitting` (or None).

    Two queries for any number of runs: the last train points of each (a window function), and every eval."""
    ids = [run.pk for run in runs]
    if not ids:
        return {}
    recent = (
        MetricPoint.objects.filter(run_id__in=ids, kind="train")
        .annotate(newest=Window(RowNumber(), partition_by=[F("run_id")], order_by=F("step").desc()))
        .filter(newest__lte=SMOOTHING_WINDOW)
        .values_list("run_id", "step", "values")
    )
    train: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for run_id, step, values in recent:
        if isinstance(values.get("loss"), int | float):
            train[run_id].append((step, float(values["loss"])))
    evals: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for run_id, step, values in (
        MetricPoint.objects.filter(run_id__in=ids, kind="eval").order_by("step").values_list("run_id", "step", "values")
    ):
        if isinstance(values.get("val_loss"), int | float):
            evals[run_id].append((step, float(values["val_loss"])))
    health = {}
    for run_id in ids:
        points = sorted(train[run_id])
        run_evals = evals[run_id]
        notice = None
        if validation_rising(run_evals):  # only then are the training points over those evaluations read
            notice = overfitting(run_evals, _train_series(run_id, run_evals))
        health[run_id] = {"smoothed_loss": moving_average([loss for _, loss in points]), "overfitting": notice}
    return health


def _train_series(run_id: int, evals: list[tuple[int, float]]) -> list:
    """The training points the overfitting rule compares: those logged since the evaluation before the rise."""
    since = evals[-(OVERFIT_EVALS + 2)][0] if len(evals) >= OVERFIT_EVALS + 2 else -1
    return list(
        MetricPoint.objects.filter(run_id=run_id, kind="train", step__gt=since)
        .order_by("step")
        .values_list("step", "values__loss")
    )
