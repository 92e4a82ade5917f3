"""Training run pages: list, new (and clone), live run page with its JSON feed, stop/resume/delete, compare."""

from __future__ import annotations

import shlex
from typing import ClassVar

from django.contrib import messages
from django.db.models import F
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import DetailView, ListView

from hrgc_site.errors import ActionRefused
from hrgc_site.listing import SortableListMixin
from hrgc_site.models import split_message
from hrgc_site.roles import is_operator, operator_required
from training import launch
from training.curves import SMOOTHING_WINDOW
from training.forms.runs import RunForm, field_name, setting_fields
from training.hrm.config import FAMILIES, PRESETS, RunConfig
from training.models import DatasetBuild, MetricPoint, TrainingRun
from training.ranks import read_ranks
from training.selectors import run_health
from training.services.runs import (
    RESUMABLE,
    base_config,
    clone_initial,
    config_diff,
    create_run,
    dataset_problem,
    delete_run,
    differing_hyperparameters,
    flatten_config,
    mark_dead,
    mark_dead_runs,
    metric_series,
    parameter_count,
    preset_of,
    request_stop,
    resume_run,
    size_problem,
)

LOG_LINES_SHOWN = 30
MAX_COMPARED = 8
RUN_CHARTS = [
    ("chart-loss", "Loss"),
    ("chart-sections", "Loss per section"),
    ("chart-lr", "Learning rate"),
    ("chart-tps", "Tokens/s"),
    ("chart-grad", "Gradient norm"),
    ("chart-parse", "Parse share"),
]


class RunList(SortableListMixin, ListView):
    model = TrainingRun
    template_name = "training/run_list.html"
    paginate_by = 50
    sort_fields: ClassVar[dict[str, str]] = {
        "name": "name",
        "status": "status",
        "step": "step",
        "loss": "last_loss",
        "val": "best_val_loss",
        "created": "created_at",
    }
    default_sort = "-created"

    def get_queryset(self):
        mark_dead_runs()
        return self.sort_queryset(TrainingRun.objects.select_related("dataset"))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        health = run_health(context["object_list"])
        for run in context["object_list"]:
            run.smoothed_loss = health[run.pk]["smoothed_loss"]
            run.overfitting = health[run.pk]["overfitting"]
        context["smoothing_window"] = SMOOTHING_WINDOW
        return context

    def sort_queryset(self, queryset):
        """Runs without the sorted value (no loss yet) come last in both directions."""
        sort = self.current_sort()
        field = F(self.sort_fields[sort.lstrip("-")])
        if sort.startswith("-"):
            return queryset.order_by(field.desc(nulls_last=True), "-pk")
        return queryset.order_by(field.asc(nulls_last=True), "pk")


class RunDetail(DetailView):
    model = TrainingRun
    template_name = "training/run_detail.html"

    def get_object(self, queryset=None):
        run = super().get_object(queryset)
        if run.looks_dead and mark_dead(run):
            run.refresh_from_db()
        return run

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = self.object
        diff = config_diff(run.config, preset_of(run))
        context.update(
            config_rows=[
                (key, value, key in diff, diff.get(key, (None, None))[1])
                for key, value in flatten_config(run.config).items()
            ],
            changed_count=len(diff),
            log_lines=list(reversed(run.log_lines.all()[:LOG_LINES_SHOWN])),
            checkpoints=checkpoint_rows(run),
            can_resume=run.status in RESUMABLE,
            can_stop=run.status in ("queued", "running", "waiting"),
            can_delete=not run.is_active,
            exports=run.exports.select_related("run"),
            charts=RUN_CHARTS,
            chart_runs=[
                {
                    "id": run.pk,
                    "name": run.name,
                    "active": run.is_active,
                    "url": reverse("training:run_metrics", args=[run.pk]),
                }
            ],
            has_samples=MetricPoint.objects.filter(run=run, kind="samples").exists(),
            warmup_warning=warmup_warning(run.config.get("train", {})),
            memory_now=current_memory(run),
            memory_label=memory_label(run),
            overfitting=run_health([run])[run.pk]["overfitting"],
            best_checkpoint_step=best_checkpoint_step(run),
            disk=run.disk_usage(),
            **process_context(run),
        )
        context["message_head"], context["message_detail"] = split_message(run.message)
        return context


def process_context(run: TrainingRun) -> dict:
    """A torchrun run's ranks (heartbeat, state, newest log lines) and, across nodes, the command the other
    nodes run to join it; nothing for a one-process run."""
    config = RunConfig.from_dict(run.config)
    if not launch.is_distributed(config):
        return {}
    context: dict = {"ranks": rank_rows(run), "world_size": launch.world_size(config)}
    if config.train.nnodes > 1:
        command = launch.torchrun_command(config, run.dataset.directory, run.directory, rdzv_id=f"hrgc-run-{run.pk}")
        context["join_command"] = shlex.join(["python", *command[1:]])
    return context


def rank_rows(run: TrainingRun) -> list[dict]:
    """Each rank's heartbeat and newest log lines (training/ranks.py); none for a one-process run."""
    if not launch.is_distributed(RunConfig.from_dict(run.config)):
        return []
    return read_ranks(run.directory)


def warmup_warning(train: dict) -> str:
    """Not an error, but worth saying: warm-up as long as the run means the learning rate never reaches its peak."""
    warmup, max_steps = train.get("warmup_steps", 0), train.get("max_steps", 0)
    if max_steps and warmup >= max_steps:
        return (
            f"warmup_steps ({warmup:,}) is not below max_steps ({max_steps:,}): the learning rate is still "
            "warming up when the run ends and never reaches its peak nor decays."
        )
    return ""


def memory_label(run: TrainingRun) -> str:
    """What the memory figures measure, which depends on where the run trains."""
    kind = (run.device or "").split(" ", 1)[0]
    if kind == "cuda":
        return "GPU memory (allocated by tensors) now / peak during this run"
    if kind == "mps":
        return "MPS memory (driver) now / peak during this run"
    return "Process memory (RSS) now / peak during this run"


def current_memory(run: TrainingRun) -> int | None:
    """The memory the run's process held at its latest logged step (older runs logged only their peak)."""
    point = MetricPoint.objects.filter(run=run, kind="train").order_by("-step").values_list("values", flat=True).first()
    value = (point or {}).get("memory_now")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def checkpoint_rows(run: TrainingRun) -> list[dict]:
    return [
        {"step": c.step, "size": c.size, "val_loss": c.val_loss, "path": c.path, "created_at": c.created_at.isoformat()}
        for c in run.checkpoints.all()
    ]


def best_checkpoint_step(run: TrainingRun) -> int | None:
    """The checkpoint with the lowest validation loss (the export form's default); the latest when none has one."""
    best = run.checkpoints.filter(val_loss__isnull=False).order_by("val_loss", "-step").first()
    if best is None:
        best = run.checkpoints.order_by("-step").first()
    return best.step if best else None


def run_summary(run: TrainingRun) -> dict:
    """Everything the run page refreshes besides the charts."""
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "message": split_message(run.message)[0],
        "step": run.step,
        "max_steps": run.max_steps,
        "tokens": run.tokens,
        "last_loss": run.last_loss,
        "best_val_loss": run.best_val_loss,
        "last_val_loss": run.last_val_loss,
        "tokens_per_sec": run.tokens_per_sec,
        "eta_seconds": run.eta_seconds,
        "device": run.device,
        "memory_bytes": run.memory_bytes,
        "memory_now": current_memory(run),
        "parse_share": run.parse_share,
        "active": run.is_active,
        "looks_dead": run.looks_dead,
        "elapsed_seconds": run.elapsed_seconds,
        "log": [line.message for line in reversed(run.log_lines.all()[:LOG_LINES_SHOWN])],
        "checkpoints": checkpoint_rows(run),
        "best_checkpoint_step": best_checkpoint_step(run),
        "samples": run.last_samples.get("samples", []),
        "samples_step": run.last_samples.get("step"),
        "ranks": rank_rows(run),  # the run page keeps each rank's liveness current
        "now": timezone.now().isoformat(),
    }


@require_GET
def run_metrics(request, pk: int):
    """New chart points since `after_id` (everything, downsampled, without it) and the run's counters."""
    run = get_object_or_404(TrainingRun, pk=pk)
    if run.looks_dead and mark_dead(run):
        run.refresh_from_db()
    try:
        after_id = int(request.GET.get("after_id") or 0)
    except ValueError:
        return HttpResponseBadRequest("after_id must be an integer")
    data = metric_series(run, after_id)
    data["run"] = run_summary(run)
    return JsonResponse(data)


@operator_required
def run_new(request):
    if request.method == "POST":
        form = RunForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            run = create_run(
                dataset=data["dataset"],
                family=data["family"],
                preset_name=data["preset"],
                name=data["name"],
                overrides=form.overrides,
                user=request.user,
                parent=data["parent"],
            )
            messages.success(request, f"Run {run.name} is queued until a worker of the training cluster takes it.")
            return redirect(run)
    else:
        initial = {"name": f"run-{timezone.now():%Y%m%d-%H%M%S}"}
        latest = DatasetBuild.objects.filter(status="finished").order_by("-created_at").first()
        if latest:
            initial["dataset"] = latest.pk
        if request.GET.get("clone"):
            if not request.GET["clone"].isdigit():
                raise Http404("clone needs a run id")
            parent = get_object_or_404(TrainingRun, pk=request.GET["clone"])
            initial = clone_initial(parent)
        for key in ("family", "preset"):
            if request.GET.get(key) and key not in initial:
                initial[key] = request.GET[key]
        form = RunForm(initial=initial)
    parent = str(form["parent"].value() or "")
    return render(
        request,
        "training/run_form.html",
        {
            "form": form,
            "parent": TrainingRun.objects.filter(pk=parent).first() if parent.isdigit() else None,
            "has_datasets": form.fields["dataset"].queryset.exists(),
        },
    )


@require_GET
def run_preview(request):
    """Preset defaults for family/preset, and the parameter count with the given changed settings."""
    family, preset_name = request.GET.get("family", "hrm"), request.GET.get("preset", "tiny")
    if family not in FAMILIES or preset_name not in PRESETS:
        return JsonResponse({"error": "unknown family or preset"}, status=400)
    dataset_id = request.GET.get("dataset", "")
    dataset = DatasetBuild.objects.filter(pk=int(dataset_id) if dataset_id.isdigit() else 0, status="finished").first()
    try:
        base = base_config(family, preset_name, dataset)
    except (OSError, ValueError) as exc:
        return JsonResponse({"error": f"dataset: {exc}"}, status=400)
    defaults = {
        field_name(section, name): getattr(getattr(base, section), name) for section, name, _ in setting_fields()
    }
    overrides = {key.replace("__", "."): request.GET[key] for key in defaults if key in request.GET}
    answer = {"defaults": defaults, "vocab_size": base.model.vocab_size}
    try:
        config = base.with_overrides(overrides)
    except ValueError as exc:
        answer.update(error=str(exc), parameter_count=None)
    else:
        answer.update(
            parameter_count=parameter_count(config),
            preset_parameter_count=parameter_count(base),
            # Every rank takes its own batches: a step trains on world-size times as many tokens, as the run records.
            tokens_per_step=config.train.batch_size
            * config.model.block_size
            * config.train.gradient_accumulation_steps
            * launch.world_size(config),
        )
        problem = (dataset_problem(config, dataset) if dataset is not None else None) or size_problem(config)
        if problem:
            answer["error"] = problem
    return JsonResponse(answer)


@operator_required
def run_clone(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    return redirect(reverse("training:run_new") + f"?clone={run.pk}")


@require_POST
@operator_required
def run_stop(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        outcome = request_stop(run)
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            "Stopped."
            if outcome == "stopped"
            else "Stop requested: the run saves a checkpoint after its current step.",
        )
    return redirect(run)


@require_POST
@operator_required
def run_resume(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        resume_run(run)
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Queued again: it continues from its last checkpoint once a worker takes it.")
    return redirect(run)


@require_POST
@operator_required
def run_delete(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        delete_run(run)
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect(run)
    messages.success(request, f"Run {run.name} and its files are deleted.")
    return redirect("training:runs")


@require_GET
def run_compare(request):
    ids = [int(value) for value in request.GET.getlist("ids") if value.isdigit()][:MAX_COMPARED]
    runs = list(TrainingRun.objects.filter(pk__in=ids).select_related("dataset").order_by("created_at"))
    if not runs:
        messages.error(request, f"Tick the runs to compare first (up to {MAX_COMPARED}), then press Compare selected.")
        return redirect("training:runs")
    return render(
        request,
        "training/run_compare.html",
        {
            "runs": runs,
            "differences": differing_hyperparameters(runs),
            "chart_runs": [
                {
                    "id": run.pk,
                    "name": run.name,
                    "active": run.is_active,
                    "url": reverse("training:run_metrics", args=[run.pk]),
                }
                for run in runs
            ],
            "is_operator": is_operator(request.user),
        },
    )


urlpatterns = [
    path("runs/", RunList.as_view(), name="runs"),
    path("runs/new/", run_new, name="run_new"),
    path("runs/new/preview.json", run_preview, name="run_preview"),
    path("runs/compare/", run_compare, name="run_compare"),
    path("runs/<int:pk>/", RunDetail.as_view(), name="run"),
    path("runs/<int:pk>/metrics.json", run_metrics, name="run_metrics"),
    path("runs/<int:pk>/stop/", run_stop, name="run_stop"),
    path("runs/<int:pk>/resume/", run_resume, name="run_resume"),
    path("runs/<int:pk>/clone/", run_clone, name="run_clone"),
    path("runs/<int:pk>/delete/", run_delete, name="run_delete"),
]
