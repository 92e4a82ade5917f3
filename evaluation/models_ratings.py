"""Blind human judgements: a person saw two evaluations' outputs for one task and picked one, or a tie.

"Pair" means the two evaluations (two models on one suite) and the task: one person rates a pair once.
The pair is stored ordered (first has the lower id), so showing (x, y) and (y, x) is the same pair; the
outcome is stored in those terms, whatever order the page showed them in."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from evaluation.models import EvalTask, Evaluation


class Rating(models.Model):
    class Outcome(models.TextChoices):
        FIRST = "first", "first better"
        SECOND = "second", "second better"
        TIE = "tie", "tie"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings")
    first = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(EvalTask, on_delete=models.CASCADE, related_name="ratings")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "first", "second", "task"], name="one_rating_per_pair_and_task"),
            models.CheckConstraint(condition=models.Q(first__lt=models.F("second")), name="rating_pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on task {self.task_id}: {self.first_id} vs {self.second_id} → {self.outcome}"
