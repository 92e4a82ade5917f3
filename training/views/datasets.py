"""Dataset build pages."""

from __future__ import annotations

from django.urls import path
from django.views.generic import DetailView, ListView

from training.models import DatasetBuild


class DatasetList(ListView):
    model = DatasetBuild
    template_name = "training/dataset_list.html"
    paginate_by = 50


class DatasetDetail(DetailView):
    model = DatasetBuild
    template_name = "training/dataset_detail.html"


urlpatterns = [
    path("datasets/", DatasetList.as_view(), name="datasets"),
    path("datasets/<int:pk>/", DatasetDetail.as_view(), name="dataset"),
]
