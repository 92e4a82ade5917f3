"""The job card: one server-rendered partial shows any background job, on its page and from its status endpoint."""

from __future__ import annotations

from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from hrgc_site.jobs import settle_if_dead

TEMPLATE = "_job_card.html"


def render_job_card(request: HttpRequest, job: Model, *, compact: bool = False) -> HttpResponse:
    """The card as an HTML fragment. A polling page (htmx) is told to reload once the job has ended,
    so that it shows the results and the actions that fit the new state."""
    response = render(request, TEMPLATE, {"job": job, "compact": compact})
    if request.headers.get("HX-Request") and not job.is_active:
        response["HX-Refresh"] = "true"
    return response


def job_status_view(model: type[Model]):
    """A status endpoint for one kind of job: `?compact=1` is the one-line form of a list row."""

    @require_safe
    def job_status(request: HttpRequest, pk: int) -> HttpResponse:
        job = settle_if_dead(get_object_or_404(model, pk=pk))
        return render_job_card(request, job, compact=request.GET.get("compact") == "1")

    job_status.__name__ = f"{model._meta.model_name}_status"
    job_status.__doc__ = f"The job card of one {model._meta.verbose_name}, as an HTML fragment."
    return job_status
