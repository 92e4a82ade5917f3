"""Tokenizer version pages."""

from __future__ import annotations

from django.urls import path
from django.views.generic import DetailView, ListView

from training.models import TokenizerVersion


class TokenizerList(ListView):
    model = TokenizerVersion
    template_name = "training/tokenizer_list.html"
    paginate_by = 50


class TokenizerDetail(DetailView):
    model = TokenizerVersion
    template_name = "training/tokenizer_detail.html"


urlpatterns = [
    path("tokenizers/", TokenizerList.as_view(), name="tokenizers"),
    path("tokenizers/<int:pk>/", TokenizerDetail.as_view(), name="tokenizer"),
]
