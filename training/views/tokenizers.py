"""Tokenizer version pages: list and train, live status, the try-it box, downloads, retry, delete."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import (
    require_http_methods,
    require_POST,
    require_safe,
)
from django.views.generic import DetailView, ListView

from hrgc_site.errors import ActionRefused
from hrgc_site.job_card import job_status_view
from hrgc_site.listing import ForgivingPaginationMixin
from hrgc_site.roles import is_operator, operator_required
from training.forms.tokenizers import RetryTokenizerForm, TokenizerForm
from training.models import TokenizerVersion
from training.services import tokenizers


class TokenizerList(ForgivingPaginationMixin, ListView):
    model = TokenizerVersion
    template_name = "training/tokenizer_list.html"
    paginate_by = 50

    def get_queryset(self):
        return TokenizerVersion.objects.select_related("snapshot")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if is_operator(self.request.user):
            context.setdefault("form", TokenizerForm())
        return context

    def post(self, request, *args, **kwargs):
        """Train a new version: validated here, trained on a worker."""
        if not is_operator(request.user):
            raise PermissionDenied("Operators only: ask an administrator to add you to the operators group.")
        form = TokenizerForm(request.POST)
        if form.is_valid():
            tokenizer = tokenizers.create_tokenizer(
                snapshot=form.cleaned_data["snapshot"],
                name=form.cleaned_data["name"],
                vocab_size=form.cleaned_data["vocab_size"],
                user=request.user,
            )
            messages.success(request, f"Tokenizer {tokenizer.name} is queued; a worker will train it.")
            return redirect(tokenizer)
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=400)


class TokenizerDetail(DetailView):
    model = TokenizerVersion
    template_name = "training/tokenizer_detail.html"

    def get_queryset(self):
        return TokenizerVersion.objects.select_related("snapshot", "created_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        tokenizer = self.object
        context["datasets"] = tokenizer.datasets.all()[:20]
        context["can_retry"] = tokenizers.can_retry(tokenizer)
        context["retry_size"] = tokenizer.suggested_vocab_size or tokenizer.vocab_size
        return context


tokenizer_status = job_status_view(TokenizerVersion)


@require_http_methods(["GET", "POST"])
def tokenizer_encode(request, pk: int):
    """Encode text (GET ?text=, or POST as JSON {"text": …} or a form field) into ids and pieces.

    Read-only, so viewers may use it too."""
    tokenizer = get_object_or_404(TokenizerVersion, pk=pk)
    try:
        if request.method == "GET":
            text = request.GET.get("text", "")
        elif request.content_type == "application/json":
            try:
                text = json.loads(request.body or b"{}").get("text", "")
            except (ValueError, AttributeError):
                return JsonResponse({"error": 'send a JSON object with a "text" string'}, status=400)
        else:
            text = request.POST.get("text", "")
    except RequestDataTooBig:
        # Django refuses bodies above DATA_UPLOAD_MAX_MEMORY_SIZE; the page shows this sentence, not an HTML 400.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        sent = int(request.META.get("CONTENT_LENGTH") or 0)
        return JsonResponse(
            {
                "error": f"This text is {sent / 1e6:.1f} MB; the try-it box takes at most {limit / 1e6:.1f} MB. "
                "Paste a shorter piece: a few files say as much about the tokenizer as a whole repository."
            },
            status=413,
        )
    if not isinstance(text, str):
        return JsonResponse({"error": "text must be a string"}, status=400)
    try:
        return JsonResponse(tokenizers.encode_text(tokenizer, text))
    except FileNotFoundError as error:
        return JsonResponse({"error": str(error)}, status=409)
    except ActionRefused as error:
        return JsonResponse({"error": str(error)}, status=400)


@require_safe
def tokenizer_download(request, pk: int, kind: str):
    """The version's .model or .vocab file, nothing else; readable by viewers."""
    tokenizer = get_object_or_404(TokenizerVersion, pk=pk)
    try:
        file_path, filename = tokenizers.tokenizer_file(tokenizer, kind)
    except FileNotFoundError as error:
        raise Http404(str(error)) from error
    return FileResponse(
        open(file_path, "rb"),
        as_attachment=True,
        filename=filename,
        content_type="application/octet-stream" if kind == "model" else "text/plain; charset=utf-8",
    )


@require_POST
@operator_required
def tokenizer_retry(request, pk: int):
    tokenizer = get_object_or_404(TokenizerVersion, pk=pk)
    form = RetryTokenizerForm(request.POST)
    if not form.is_valid():
        # The tokenizer page again, with the size as typed and the error beside it.
        view = TokenizerDetail()
        view.setup(request, pk=pk)
        view.object = tokenizer
        context = view.get_context_data(object=tokenizer)
        context.update(retry_size=request.POST.get("vocab_size", ""), retry_errors=form.errors.get("vocab_size", []))
        return render(request, TokenizerDetail.template_name, context, status=400)
    try:
        tokenizers.retry_tokenizer(tokenizer=tokenizer, vocab_size=form.cleaned_data["vocab_size"])
    except ActionRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Tokenizer {tokenizer.name} is queued again with {form.cleaned_data['vocab_size']:,} pieces."
        )
    return redirect(tokenizer)


@require_POST
@operator_required
def tokenizer_delete(request, pk: int):
    tokenizer = get_object_or_404(TokenizerVersion, pk=pk)
    try:
        tokenizers.delete_tokenizer(tokenizer)
    except ActionRefused as error:
        messages.error(request, str(error))
        return redirect(tokenizer)
    messages.success(request, f"Deleted tokenizer {tokenizer.name} and its files.")
    return redirect("training:tokenizers")


urlpatterns = [
    path("tokenizers/", TokenizerList.as_view(), name="tokenizers"),
    path("tokenizers/<int:pk>/", TokenizerDetail.as_view(), name="tokenizer"),
    path("tokenizers/<int:pk>/status/", tokenizer_status, name="tokenizer_status"),
    path("tokenizers/<int:pk>/encode/", tokenizer_encode, name="tokenizer_encode"),
    path("tokenizers/<int:pk>/download/<str:kind>/", tokenizer_download, name="tokenizer_download"),
    path("tokenizers/<int:pk>/retry/", tokenizer_retry, name="tokenizer_retry"),
    path("tokenizers/<int:pk>/delete/", tokenizer_delete, name="tokenizer_delete"),
]
