"""django-q2 entry point for tokenizer training: claim the row, run the service."""

from __future__ import annotations

from hrgc_site.jobs import Progress, run_job
from training.models import TokenizerVersion
from training.services.tokenizers import run_tokenizer_training


def train_tokenizer_task(tokenizer_id: int) -> str:
    return run_job(
        TokenizerVersion,
        tokenizer_id,
        lambda tokenizer: run_tokenizer_training(tokenizer, Progress(tokenizer)),
    )
