"""Training run pages: list, new, live run page, compare."""

from __future__ import annotations

from django.urls import path
from django.views.generic import DetailView, ListView

from training.models import TrainingRun


class RunList(ListView):
    model = TrainingRun
    template_name = "training/run_list.html"
    paginate_by = 50


class RunDetail(DetailView):
    model = TrainingRun
    template_name = "training/run_detail.html"


urlpatterns = [
    path("runs/", RunList.as_view(), name="runs"),
    path("runs/<int:pk>/", RunDetail.as_view(), name="run"),
]
