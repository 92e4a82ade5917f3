"""django-q2 entry point for dataset builds: claim the row, run the service."""

from __future__ import annotations

from hrgc_site.jobs import Progress, run_job
from training.models import DatasetBuild
from training.services.datasets import run_dataset_build


def build_dataset_task(dataset_id: int) -> str:
    return run_job(DatasetBuild, dataset_id, lambda dataset: run_dataset_build(dataset, Progress(dataset)))
