"""Tokenizer, dataset and training-run pages."""

from __future__ import annotations

from django.views.generic import DetailView, ListView

from training.models import DatasetBuild, TokenizerVersion, TrainingRun


class TokenizerList(ListView):
    model = TokenizerVersion
    template_name = "training/tokenizer_list.html"
    paginate_by = 50


class TokenizerDetail(DetailView):
    model = TokenizerVersion
    template_name = "training/tokenizer_detail.html"


class DatasetList(ListView):
    model = DatasetBuild
    template_name = "training/dataset_list.html"
    paginate_by = 50


class DatasetDetail(DetailView):
    model = DatasetBuild
    template_name = "training/dataset_detail.html"


class RunList(ListView):
    model = TrainingRun
    template_name = "training/run_list.html"
    paginate_by = 50


class RunDetail(DetailView):
    model = TrainingRun
    template_name = "training/run_detail.html"
