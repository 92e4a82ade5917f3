"""Pages of the evaluation app: suites, evaluations with their job card, metrics and per-task results."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe
from django.views.generic import DetailView, ListView

from evaluation.forms import EvaluateForm, SuiteForm
from evaluation.models import EvalSuite, Evaluation, TaskResult
from evaluation.presentation import METRIC_ROWS, diff_lines, metric_text, vet_absent_note
from evaluation.services import evaluations as services
from evaluation.services.suites import create_suite, delete_suite
from hrgc_site.errors import ActionRefused
from hrgc_site.job_card import job_status_view
from hrgc_site.jobs import settle_if_dead
from hrgc_site.listing import ForgivingPaginationMixin
from hrgc_site.roles import operator_required
from models_registry.models import ExportedModel
from training.models import TrainingRun

TASKS_PER_PAGE = 50


def _page(request, rows, *, sort: str = "") -> dict:
    """One page of a long task table, with what pagination.html and sort_link need: a suite or an
    evaluation of hundreds of tasks (each with its prompt) would otherwise be one huge page."""
    page = Paginator(rows, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    without_page = query.urlencode()
    query.pop("sort", None)
    return {
        "page_obj": page,
        "paginator": page.paginator,
        "is_paginated": page.has_other_pages(),
        "query_without_page": without_page,
        "query_without_sort": query.urlencode(),
        "sort": sort,
    }


def _form_errors(form) -> str:
    return "; ".join(error for errors in form.errors.values() for error in errors)


class EvaluationList(ForgivingPaginationMixin, ListView):
    template_name = "evaluation/evaluation_list.html"
    paginate_by = 50

    def get_queryset(self):
        return Evaluation.objects.select_related("suite", "run", "exported_model")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["suites"] = EvalSuite.objects.select_related("dataset")[:10]
        return context


@require_safe
def evaluation_detail(request, pk: int):
    evaluation = settle_if_dead(
        get_object_or_404(Evaluation.objects.select_related("suite", "run", "exported_model"), pk=pk)
    )
    results, sort = services.sorted_results(evaluation, request.GET.get("sort", "task"))
    page = _page(request, results, sort=sort)
    metrics = [(label, metric_text(key, evaluation.metrics.get(key))) for key, label in METRIC_ROWS]
    vet_note = vet_absent_note(services.vet_absent_reasons(evaluation), evaluation.tasks_done)
    return render(
        request,
        "evaluation/evaluation_detail.html",
        {
            "evaluation": evaluation,
            "job": evaluation,
            "results": page["page_obj"],
            "metrics": metrics,
            "vet_note": vet_note,
            **page,
        },
    )


evaluation_status = job_status_view(Evaluation)


@require_safe
def task_result(request, pk: int, index: int):
    result = get_object_or_404(
        TaskResult.objects.select_related("evaluation__suite", "task"), evaluation_id=pk, task__index=index
    )
    from evaluation.metrics import code_of

    reference = code_of(result.task.reference)
    return render(
        request,
        "evaluation/task_result.html",
        {
            "result": result,
            "evaluation": result.evaluation,
            "task": result.task,
            "reference_code": reference,
            "diff": diff_lines(reference, result.output),
        },
    )


def _refused_or(request, action, fallback):
    try:
        return action()
    except ActionRefused as error:
        messages.error(request, str(error))
        return redirect(fallback)


@require_POST
@operator_required
def cancel(request, pk: int):
    evaluation = get_object_or_404(Evaluation, pk=pk)
    services.cancel_evaluation(evaluation)
    messages.success(request, "Cancel requested: the evaluation stops after its current task.")
    return redirect(evaluation.get_absolute_url())


@require_POST
@operator_required
def resume(request, pk: int):
    evaluation = get_object_or_404(Evaluation, pk=pk)

    def act():
        services.resume_evaluation(evaluation)
        messages.success(request, "Evaluation queued again; finished tasks are kept.")
        return redirect(evaluation.get_absolute_url())

    return _refused_or(request, act, evaluation.get_absolute_url())


@require_POST
@operator_required
def delete(request, pk: int):
    evaluation = get_object_or_404(Evaluation, pk=pk)

    def act():
        services.delete_evaluation(evaluation)
        messages.success(request, "Evaluation deleted.")
        return redirect("evaluation:evaluations")

    return _refused_or(request, act, evaluation.get_absolute_url())


def _evaluate(request, *, fallback: str, run: TrainingRun, exported_model: ExportedModel | None = None):
    form = EvaluateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Evaluation not started: " + _form_errors(form))
        return redirect(fallback)

    def act():
        evaluation = services.request_evaluation(
            suite=form.cleaned_data["suite"],
            run=run,
            step=None if exported_model else form.cleaned_data["step"],
            exported_model=exported_model,
            settings=form.settings(),
            user=request.user,
        )
        messages.success(request, f"Evaluation queued: {evaluation}")
        return redirect(evaluation.get_absolute_url())

    return _refused_or(request, act, fallback)


@require_POST
@operator_required
def evaluate_run(request, run_pk: int):
    run = get_object_or_404(TrainingRun, pk=run_pk)
    return _evaluate(request, fallback=run.get_absolute_url(), run=run)


@require_POST
@operator_required
def evaluate_model(request, model_pk: int):
    model = get_object_or_404(ExportedModel, pk=model_pk)
    return _evaluate(request, fallback=model.get_absolute_url(), run=model.run, exported_model=model)


class SuiteList(ForgivingPaginationMixin, ListView):
    template_name = "evaluation/suite_list.html"
    paginate_by = 50

    def get_queryset(self):
        return EvalSuite.objects.select_related("dataset")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", SuiteForm(initial={"dataset": self.request.GET.get("dataset")}))
        return context


class SuiteDetail(DetailView):
    template_name = "evaluation/suite_detail.html"
    context_object_name = "suite"

    def get_queryset(self):
        return EvalSuite.objects.select_related("dataset__tokenizer")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tasks = self.object.tasks.select_related("pull_request__repository").order_by("index")
        page = _page(self.request, tasks)
        context.update(page, tasks=page["page_obj"])
        context["evaluations"] = self.object.evaluations.select_related("run", "exported_model")
        return context


@require_POST
@operator_required
def suite_create(request):
    form = SuiteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Suite not made: " + _form_errors(form))
        return redirect("evaluation:suites")

    def act():
        suite = create_suite(user=request.user, **form.cleaned_data)
        messages.success(request, f"Suite {suite.name}: {suite.task_count} tasks, sha256 {suite.sha256[:12]}…")
        return redirect(suite.get_absolute_url())

    return _refused_or(request, act, "evaluation:suites")


@require_POST
@operator_required
def suite_delete(request, pk: int):
    suite = get_object_or_404(EvalSuite, pk=pk)

    def act():
        delete_suite(suite)
        messages.success(request, f"Suite {suite.name} deleted.")
        return redirect("evaluation:suites")

    return _refused_or(request, act, suite.get_absolute_url())
