"""django-q2 entry points for tokenizer training and dataset builds: claim the row, run the service."""

from __future__ import annotations

from hrgc_site.jobs import Progress, run_job
from training import services_data
from training.models import DatasetBuild, TokenizerVersion


def train_tokenizer_task(tokenizer_id: int) -> str:
    return run_job(
        TokenizerVersion,
        tokenizer_id,
        lambda tokenizer: services_data.run_tokenizer_training(tokenizer, Progress(tokenizer)),
    )


def build_dataset_task(dataset_id: int) -> str:
    return run_job(
        DatasetBuild, dataset_id, lambda dataset: services_data.run_dataset_build(dataset, Progress(dataset))
    )
