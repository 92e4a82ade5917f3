"""The pipeline at a glance for the home page: counts, latest item of each stage, the next step."""

from __future__ import annotations

from django.urls import reverse

from hrgc_site.models import ACTIVE_STATUSES


def overview() -> dict:
    from corpus.models import FetchJob, PullRequest, Repository, Snapshot
    from evaluation.models import Evaluation
    from models_registry.models import ExportedModel
    from training.models import DatasetBuild, TokenizerVersion, TrainingRun

    counts = {
        "repositories": Repository.objects.count(),
        "pull_requests": PullRequest.objects.count(),
        "included": PullRequest.objects.filter(included=True).count(),
        "snapshots": Snapshot.objects.filter(status="finished").count(),
        "tokenizers": TokenizerVersion.objects.filter(status="finished").count(),
        "datasets": DatasetBuild.objects.filter(status="finished").count(),
        "runs": TrainingRun.objects.count(),
        "models": ExportedModel.objects.filter(status="finished").count(),
    }
    latest = {
        "fetch": FetchJob.objects.first(),
        "snapshot": Snapshot.objects.first(),
        "tokenizer": TokenizerVersion.objects.first(),
        "dataset": DatasetBuild.objects.first(),
        "run": TrainingRun.objects.first(),
        "model": ExportedModel.objects.first(),
    }
    active = []
    for model in (FetchJob, Snapshot, TokenizerVersion, DatasetBuild, TrainingRun, ExportedModel, Evaluation):
        for job in model.objects.filter(status__in=ACTIVE_STATUSES)[:5]:
            active.append(job)
    return {"counts": counts, "latest": latest, "active": active, "next_step": next_step(counts)}


def next_step(counts: dict) -> dict:
    """What a new user should do next, following the pipeline from the left."""
    if not counts["pull_requests"]:
        return {
            "text": "Import the sample corpus (one click, no network) or fetch repositories from GitHub.",
            "url": reverse("corpus:add"),
            "label": "Add repositories",
        }
    if not counts["snapshots"]:
        return {
            "text": "Read and curate pull requests, then freeze the included ones as a snapshot.",
            "url": reverse("corpus:snapshots"),
            "label": "Create a snapshot",
        }
    if not counts["tokenizers"]:
        return {
            "text": "Train a SentencePiece tokenizer on your snapshot.",
            "url": reverse("training:tokenizers"),
            "label": "Train a tokenizer",
        }
    if not counts["datasets"]:
        return {
            "text": "Tokenize the snapshot into train/val token files.",
            "url": reverse("training:datasets"),
            "label": "Build a dataset",
        }
    if not counts["runs"]:
        return {
            "text": "Start a tiny hrm run and watch its loss fall.",
            "url": reverse("training:runs"),
            "label": "Start a run",
        }
    if not counts["models"]:
        return {
            "text": "Export a checkpoint of a finished run to GGUF and download it.",
            "url": reverse("training:runs"),
            "label": "Export a model",
        }
    return {
        "text": "Try your model in the playground, or compare runs.",
        "url": reverse("models_registry:models"),
        "label": "Open the models",
    }
