"""The board's pages: the leaderboard, family comparisons and blind ratings. Thin: reads in
evaluation.leaderboard, writes in evaluation.comparisons and evaluation.judgements."""

from __future__ import annotations

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from evaluation import judgements
from evaluation import leaderboard as board
from evaluation.models import EvalSuite, Rating
from evaluation.ratings import INTERVAL_METHOD
from hrgc_site.errors import ActionRefused


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
