"""The model registry: exported files, their lineage, downloads, exports and the playground."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe
from django.views.generic import DetailView, ListView

from hrgc_site.errors import ActionRefused
from hrgc_site.job_card import job_status_view
from hrgc_site.listing import ForgivingPaginationMixin
from hrgc_site.roles import operator_required
from models_registry import services
from models_registry.downloads import ranged_file_response
from models_registry.forms import ExportForm, PlaygroundForm
from models_registry.models import ExportedModel
from training.models import TrainingRun


class ModelList(ForgivingPaginationMixin, ListView):
    model = ExportedModel
    template_name = "models_registry/model_list.html"
    paginate_by = 50

    def get_queryset(self):
        return ExportedModel.objects.select_related("run")


class ModelDetail(DetailView):
    model = ExportedModel
    template_name = "models_registry/model_detail.html"

    def get_queryset(self):
        return ExportedModel.objects.select_related("run__dataset__tokenizer__snapshot", "checkpoint")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["how_to_run"] = services.how_to_run(self.object)
        context["files"] = [
            {**entry, "download_name": services.download_name(self.object, entry["name"])}
            for entry in self.object.files
        ]
        if self.object.format == ExportedModel.Format.GGUF:
            context["runtime_support"] = services.runtime_support(self.object)
        context["final_metrics"] = services.final_metrics(self.object.run)
        return context


model_status = job_status_view(ExportedModel)


@require_safe
def download(request, pk: int, name: str):
    export = get_object_or_404(ExportedModel, pk=pk)
    path = export.registered_file(name)
    if path is None:
        raise Http404("No such file in this export.")
    entry = next(e for e in export.files if e["name"] == name)
    if name == "Modelfile":
        # A few hundred bytes: rewritten so that FROM names the GGUF as it downloads (after the model).
        text = services.modelfile_for_download(export, path.read_text(encoding="utf-8"))
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, name)
        return response
    return ranged_file_response(request, path, services.download_name(export, name), etag=entry.get("sha256", ""))


@require_POST
@operator_required
def export_run(request, run_pk: int):
    run = get_object_or_404(TrainingRun, pk=run_pk)
    form = ExportForm(request.POST, run=run)
    if not form.is_valid():
        messages.error(request, "Export not started: " + "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect(run.get_absolute_url())
    try:
        export = services.request_export(run=run, user=request.user, **form.cleaned_data)
    except ActionRefused as error:
        messages.error(request, str(error))
        return redirect(run.get_absolute_url())
    messages.success(request, f"Export queued: {export}")
    return redirect(export.get_absolute_url())


@require_POST
@operator_required
def delete_model(request, pk: int):
    export = get_object_or_404(ExportedModel, pk=pk)
    try:
        services.delete_export(export)
    except ActionRefused as error:
        messages.error(request, str(error))
        return redirect(export.get_absolute_url())
    messages.success(request, "Export deleted.")
    return redirect("models_registry:models")


@require_safe
def playground(request):
    form = PlaygroundForm(initial={"model": request.GET.get("model")})
    models = list(form.fields["model"].queryset.select_related("checkpoint"))
    hints = {str(export.pk): services.barely_trained_hint(export) for export in models}
    return render(
        request,
        "models_registry/playground.html",
        {"form": form, "has_models": bool(models), "hints": hints},
    )


class _EventLines:
    """The generation's events as NDJSON lines; closing the response gives the playground slot back even
    when the browser left before the first line."""

    def __init__(self, generation):
        self.generation = generation

    def __iter__(self):
        try:
            for event in self.generation:
                yield json.dumps(event) + "\n"
        except Exception as error:  # noqa: BLE001 - the browser must hear why it stopped
            yield json.dumps({"type": "error", "message": f"{type(error).__name__}: {error}"}) + "\n"

    def close(self) -> None:
        self.generation.close()


@require_POST
def playground_generate(request):
    """Stream the refinement loop's events as newline-delimited JSON while llama.cpp generates."""
    form = PlaygroundForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    try:
        generation = services.start_playground(**form.cleaned_data)
    except services.PlaygroundBusy as busy:
        return JsonResponse({"errors": {"playground": [str(busy)]}}, status=429)
    response = StreamingHttpResponse(_EventLines(generation), content_type="application/x-ndjson")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
