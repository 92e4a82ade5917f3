"""Old dotted path of the training task: runs queued before the move to training/tasks/ name it."""

from training.tasks.runs import train_run

__all__ = ["train_run"]
