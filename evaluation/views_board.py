"""The board's pages: the leaderboard, family comparisons and blind ratings. Thin: reads in
evaluation.leaderboard, writes in evaluation.comparisons and evaluation.judgements."""

from __future__ import annotations

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from evaluation import comparisons, families, judgements
from evaluation import leaderboard as board
from evaluation.forms_board import CompareForm
from evaluation.models import Comparison, EvalSuite, Rating
from evaluation.ratings import INTERVAL_METHOD
from hrgc_site.errors import ActionRefused
from hrgc_site.models import JobStatus
from hrgc_site.roles import operator_required
from training.models import DatasetBuild
from training.services.runs import dataset_vocab_size


def leaderboard(request):
    suites = list(board.suites_with_evaluations())
    suite = None
    wanted = request.GET.get("suite", "")
    if wanted.isdigit():
        suite = next((s for s in suites if s.pk == int(wanted)), None)
        if suite is None:
            suite = EvalSuite.objects.filter(pk=int(wanted)).first()
    if suite is None and suites:
        suite = suites[0]
    sort = request.GET.get("sort", board.DEFAULT_SORT)
    key = sort.lstrip("-")
    if key not in board.BY_KEY:
        sort = key = board.DEFAULT_SORT
    best_first = not board.BY_KEY[key].lower_is_better
    rows = board.leaderboard(suite, key, best_first != sort.startswith("-")) if suite else []
    query = QueryDict(mutable=True)
    if suite:
        query["suite"] = suite.pk
    return render(
        request,
        "evaluation/leaderboard.html",
        {
            "suites": suites,
            "suite": suite,
            "rows": rows,
            "metrics": board.METRICS,
            "sort": sort,
            "query_without_sort": query.urlencode(),
            "series": board.token_series(suite) if suite else [],
            "metric_labels": {m.key: m.label for m in board.METRICS},
        },
    )


def _chosen_suite(request, candidates: list[EvalSuite]) -> EvalSuite | None:
    wanted = request.GET.get("suite") or request.POST.get("suite") or ""
    if wanted.isdigit():
        return (
            next((s for s in candidates if s.pk == int(wanted)), None)
            or EvalSuite.objects.filter(pk=int(wanted)).first()
        )
    return candidates[0] if candidates else None


def rate(request):
    """Blind A/B judgement. Viewers may rate: the one write a viewer may do (hrgc_site.roles.VIEWER_WRITES)."""
    suites = judgements.suites_to_rate()
    suite = _chosen_suite(request, suites)
    if request.method == "POST":
        try:
            judgements.record_rating(
                user=request.user, token=request.POST.get("token", ""), choice=request.POST.get("choice", "")
            )
            messages.success(request, "Thanks: rating saved. Here is the next pair.")
        except ActionRefused as refusal:
            messages.error(request, str(refusal))
        return redirect(f"{reverse('evaluation:rate')}?suite={suite.pk}" if suite else reverse("evaluation:rate"))
    shown = judgements.next_pair(request.user, suite) if suite else None
    return render(
        request,
        "evaluation/rate.html",
        {
            "suites": suites,
            "suite": suite,
            "shown": shown,
            "remaining": judgements.remaining(request.user, suite) if suite else 0,
            "rated": Rating.objects.filter(user=request.user, task__suite=suite).count() if suite else 0,
        },
    )


def ratings_page(request):
    suites = [s for s in judgements.suites_to_rate() if Rating.objects.filter(task__suite=s).exists()]
    suite = _chosen_suite(request, suites)
    return render(
        request,
        "evaluation/ratings.html",
        {
            "suites": suites,
            "suite": suite,
            "rows": judgements.scores(suite) if suite else [],
            "method": INTERVAL_METHOD,
            "total": Rating.objects.filter(task__suite=suite).count() if suite else 0,
        },
    )


@operator_required
def compare(request, dataset_pk: int):
    """Compare families on a dataset: the form (GET) and starting the runs (POST)."""
    dataset = get_object_or_404(DatasetBuild, pk=dataset_pk)
    vocab = dataset_vocab_size(dataset) if dataset.status == JobStatus.FINISHED else 50_000
    form = CompareForm(
        request.POST or None, dataset=dataset, initial={"tokens": families.default_tokens("tiny", vocab)}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            comparison = comparisons.start_comparison(
                dataset=dataset,
                preset_name=data["preset"],
                seeds=data["seeds"],
                tokens=data["tokens"],
                suite=data["suite"],
                task_count=data["task_count"],
                eval_settings={"max_attempts": data["max_attempts"], "max_tokens": data["max_tokens"]},
                user=request.user,
            )
        except ActionRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(
                request, f"Queued {2 * len(data['seeds'])} runs; each is evaluated once all have finished."
            )
            return redirect(comparison)
    return render(
        request,
        "evaluation/compare_form.html",
        {"dataset": dataset, "form": form, "comparisons": comparisons.comparisons_of(dataset)[:20]},
        status=400 if request.method == "POST" else 200,
    )


def _comparison_context(pk: int) -> dict:
    comparison = comparisons.advance(get_object_or_404(Comparison.objects.select_related("dataset", "suite"), pk=pk))
    return {
        "comparison": comparison,
        "rows": comparisons.comparison_runs(comparison),
        "verdict": comparisons.verdict_rows(comparison),
    }


def comparison(request, pk: int):
    return render(request, "evaluation/comparison.html", _comparison_context(pk))


def comparison_status(request, pk: int):
    return render(request, "evaluation/_comparison_live.html", _comparison_context(pk))
