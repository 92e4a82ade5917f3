"""The model registry: exported files, their lineage, downloads and the playground."""

from __future__ import annotations

from django.views.generic import DetailView, ListView

from models_registry.models import ExportedModel


class ModelList(ListView):
    model = ExportedModel
    template_name = "models_registry/model_list.html"
    paginate_by = 50

    def get_queryset(self):
        return ExportedModel.objects.select_related("run")


class ModelDetail(DetailView):
    model = ExportedModel
    template_name = "models_registry/model_detail.html"
