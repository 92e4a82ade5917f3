"""Dataset build pages: list and build, live status, statistics, split, coloured sample, stop, delete."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView

from hrgc_site.errors import ActionRefused
from hrgc_site.job_card import job_status_view
from hrgc_site.listing import ForgivingPaginationMixin
from hrgc_site.models import JobStatus
from hrgc_site.roles import is_operator, operator_required
from training.dataset import SPLITS
from training.forms.datasets import DatasetForm
from training.models import DatasetBuild
from training.services import datasets, tokenizers


class DatasetList(ForgivingPaginationMixin, ListView):
    model = DatasetBuild
    template_name = "training/dataset_list.html"
    paginate_by = 50

    def get_queryset(self):
        return DatasetBuild.objects.select_related("snapshot", "tokenizer")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if is_operator(self.request.user):
            initial = {}
            tokenizer = tokenizers.finished_tokenizers().first()
            if tokenizer:  # the newest tokenizer and the snapshot it was trained on: the usual pair
                initial = {"tokenizer": tokenizer.pk, "snapshot": tokenizer.snapshot_id}
            context.setdefault("form", DatasetForm(initial=initial))
        return context

    def post(self, request, *args, **kwargs):
        """Start a build: validated here, tokenized on a worker."""
        if not is_operator(request.user):
            raise PermissionDenied("Operators only: ask an administrator to add you to the operators group.")
        form = DatasetForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            dataset = datasets.create_dataset(
                snapshot=data["snapshot"],
                tokenizer=data["tokenizer"],
                name=data["name"],
                processes=data["processes"],
                seq_len=data["seq_len"],
                user=request.user,
            )
            messages.success(request, f"Dataset {dataset.name} is queued; a worker will build it.")
            return redirect(dataset)
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=400)


class DatasetDetail(DetailView):
    model = DatasetBuild
    template_name = "training/dataset_detail.html"

    def get_queryset(self):
        return DatasetBuild.objects.select_related("snapshot", "tokenizer", "created_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        dataset = self.object
        context["runs"] = dataset.runs.all()[:20]
        if dataset.status != JobStatus.FINISHED:
            return context
        meta = datasets.dataset_meta(dataset)
        splits = datasets.split_summary(meta)
        context.update(
            meta=meta,
            splits=splits,
            split_share=datasets.split_share(splits),
            section_share=sorted((meta.get("section_share") or {}).items(), key=lambda item: -item[1]),
        )
        split = self.request.GET.get("split", "train")
        split = split if split in SPLITS else "train"
        try:
            index = max(0, int(self.request.GET.get("sample", "0")))
        except ValueError:
            index = 0
        records = splits.get(split, {}).get("records", 0)
        context.update(
            sample_split=split,
            sample_index=index,
            sample_records=records,
            sample_max=max(dataset.seq_len, datasets.SAMPLE_MAX_TOKENS),
        )
        if index < records:
            try:
                context["sample"] = datasets.dataset_sample(dataset, split=split, index=index)
            except (FileNotFoundError, IndexError) as error:
                context["sample_error"] = str(error)
        return context


dataset_status = job_status_view(DatasetBuild)


@require_POST
@operator_required
def dataset_stop(request, pk: int):
    dataset = get_object_or_404(DatasetBuild, pk=pk)
    datasets.stop_dataset(dataset)
    messages.info(request, f"Asked dataset {dataset.name} to stop.")
    return redirect(dataset)


@require_POST
@operator_required
def dataset_delete(request, pk: int):
    dataset = get_object_or_404(DatasetBuild, pk=pk)
    try:
        datasets.delete_dataset(dataset)
    except ActionRefused as error:
        messages.error(request, str(error))
        return redirect(dataset)
    messages.success(request, f"Deleted dataset {dataset.name} and its files.")
    return redirect("training:datasets")


urlpatterns = [
    path("datasets/", DatasetList.as_view(), name="datasets"),
    path("datasets/<int:pk>/", DatasetDetail.as_view(), name="dataset"),
    path("datasets/<int:pk>/status/", dataset_status, name="dataset_status"),
    path("datasets/<int:pk>/stop/", dataset_stop, name="dataset_stop"),
    path("datasets/<int:pk>/delete/", dataset_delete, name="dataset_delete"),
]
