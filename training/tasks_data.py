"""Old dotted paths of the tokenizer and dataset tasks: rows queued before the move to training/tasks/ name them."""

from training.tasks.datasets import build_dataset_task
from training.tasks.tokenizers import train_tokenizer_task

__all__ = ["build_dataset_task", "train_tokenizer_task"]
