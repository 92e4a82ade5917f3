"""A family comparison: an `hrm` and a `gpt` run per seed on one dataset, matched in size and tokens, then
evaluated on one suite; the verdict is stored once every evaluation has finished."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from evaluation.models import EvalSuite, Evaluation
from training.models import DatasetBuild, TrainingRun


class Comparison(models.Model):
    class State(models.TextChoices):
        TRAINING = "training", "training"
        EVALUATING = "evaluating", "evaluating"
        FINISHED = "finished", "finished"
        FAILED = "failed", "failed"

    dataset = models.ForeignKey(DatasetBuild, on_delete=models.PROTECT, related_name="comparisons")
    preset = models.CharField(max_length=16, default="tiny")
    seeds = models.JSONField(default=list, help_text="One hrm and one gpt run per seed")
    tokens = models.PositiveBigIntegerField(help_text="Training tokens of every run (max_steps × tokens per step)")
    parameters = models.JSONField(default=dict, blank=True, help_text="Parameter count per family")
    suite = models.ForeignKey(
        EvalSuite,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="comparisons",
        help_text="Where every run is evaluated; made from the dataset when the comparison gave a task count",
    )
    task_count = models.PositiveIntegerField(default=0, help_text="Tasks of the suite to make when none was named")
    eval_settings = models.JSONField(
        default=dict, blank=True, help_text="Generation settings of its evaluations (max_attempts, max_tokens)"
    )
    runs = models.ManyToManyField(TrainingRun, related_name="comparisons", blank=True)
    evaluations = models.ManyToManyField(Evaluation, related_name="comparisons", blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.TRAINING, db_index=True)
    message = models.TextField(blank=True)
    verdict = models.JSONField(default=dict, blank=True, help_text="Per metric: each family's mean, spread, winner")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"hrm vs gpt on {self.dataset.name} ({self.preset}, seeds {', '.join(map(str, self.seeds))})"

    def get_absolute_url(self) -> str:
        return reverse("evaluation:comparison", args=[self.pk])
