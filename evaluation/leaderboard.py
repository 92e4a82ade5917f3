"""The leaderboard's reads: one row per evaluated model on a suite (its latest finished evaluation), the metric
columns, sorting, and the metric-against-tokens series of runs evaluated at several checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Max

from evaluation.models import EvalSuite, Evaluation
from hrgc_site.models import JobStatus


@dataclass(frozen=True)
class Metric:
    key: str  # in Evaluation.metrics
    label: str
    lower_is_better: bool = False
    share: bool = False  # a 0..1 share, shown as a percentage


METRICS = (
    Metric("code_loss", "Code loss", lower_is_better=True),
    Metric("perplexity", "Perplexity", lower_is_better=True),
    Metric("token_accuracy", "Token accuracy", share=True),
    Metric("exact_match", "Exact match", share=True),
    Metric("edit_similarity", "Edit similarity", share=True),
    Metric("parse_first", "Parses first", share=True),
    Metric("parse_final", "Parses final", share=True),
    Metric("refinement_lift_points", "Refinement lift (points)"),
    Metric("mean_attempts", "Mean attempts", lower_is_better=True),
    Metric("gofmt_ok", "gofmt", share=True),
    Metric("vet_ok", "vet", share=True),
)
BY_KEY = {metric.key: metric for metric in METRICS}
DEFAULT_SORT = "code_loss"


def metric_value(metrics: dict, key: str) -> float | None:
    """A metric as a number, or None when absent (never measured, or not a finite number)."""
    value = (metrics or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def model_key(evaluation: Evaluation) -> tuple:
    """What one leaderboard row stands for: an exported model, or a run's checkpoint at a step."""
    if evaluation.exported_model_id:
        return ("gguf", evaluation.exported_model_id)
    return ("torch", evaluation.run_id, evaluation.step)


def model_label(evaluation: Evaluation) -> str:
    if evaluation.exported_model_id:
        export = evaluation.exported_model
        return f"{evaluation.run.name} @ {export.step:,} · {export.format} {export.quant}"
    return f"{evaluation.run.name} @ {evaluation.step:,}"


@dataclass
class Row:
    evaluation: Evaluation
    label: str
    cells: list[tuple[Metric, float | None]] = field(default_factory=list)


def suites_with_evaluations():
    """Suites that have at least one finished evaluation, the most recently evaluated first."""
    return (
        EvalSuite.objects.filter(evaluations__status=JobStatus.FINISHED)
        .annotate(last=Max("evaluations__finished_at"))
        .order_by("-last", "-pk")
    )


def latest_evaluations(suite: EvalSuite) -> list[Evaluation]:
    """The latest finished evaluation of each model on `suite`."""
    evaluations = (
        Evaluation.objects.filter(suite=suite, status=JobStatus.FINISHED)
        .select_related("run", "run__dataset", "run__parent", "exported_model", "exported_model__run")
        .prefetch_related("run__clones")
        .order_by("-finished_at", "-pk")
    )
    seen: set[tuple] = set()
    latest = []
    for evaluation in evaluations:
        key = model_key(evaluation)
        if key not in seen:
            seen.add(key)
            latest.append(evaluation)
    return latest


def leaderboard(suite: EvalSuite, sort: str = DEFAULT_SORT, descending: bool | None = None) -> list[Row]:
    """Rows sorted by `sort` (a metric key; best first unless `descending` says otherwise); absent values last."""
    metric = BY_KEY.get(sort, BY_KEY[DEFAULT_SORT])
    if descending is None:
        descending = not metric.lower_is_better
    rows = [
        Row(
            evaluation=evaluation,
            label=model_label(evaluation),
            cells=[(m, metric_value(evaluation.metrics, m.key)) for m in METRICS],
        )
        for evaluation in latest_evaluations(suite)
    ]
    present = [row for row in rows if metric_value(row.evaluation.metrics, metric.key) is not None]
    absent = [row for row in rows if metric_value(row.evaluation.metrics, metric.key) is None]
    present.sort(key=lambda row: metric_value(row.evaluation.metrics, metric.key), reverse=descending)
    return present + absent


def token_series(suite: EvalSuite) -> list[dict]:
    """Per run evaluated (PyTorch) at two or more steps on `suite`: its name, family and, per step in order,
    the training tokens and every metric (None where absent) of the latest finished evaluation at that step."""
    by_run: dict[int, dict[int, Evaluation]] = {}
    for evaluation in latest_evaluations(suite):
        if not evaluation.exported_model_id:
            by_run.setdefault(evaluation.run_id, {})[evaluation.step] = evaluation
    series = []
    for steps in by_run.values():
        if len(steps) < 2:
            continue
        ordered = [steps[step] for step in sorted(steps)]
        run = ordered[0].run
        series.append(
            {
                "run": run.name,
                "family": run.family,
                "tokens": [e.training_tokens for e in ordered],
                "steps": [e.step for e in ordered],
                "metrics": {m.key: [metric_value(e.metrics, m.key) for e in ordered] for m in METRICS},
            }
        )
    return sorted(series, key=lambda s: s["run"])
