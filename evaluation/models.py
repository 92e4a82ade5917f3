"""Evaluation suites (frozen held-out tasks), evaluations of one model on one suite, and per-task results.

A suite is cut from a dataset's validation split and frozen with a hash, like a snapshot, so scores
on it stay comparable. An evaluation targets a training checkpoint (PyTorch) or an exported model
(llama.cpp); its results are stored per task, so a killed evaluation resumes without redoing any.
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from corpus.models import PullRequest
from hrgc_site.models import BackgroundJob
from models_registry.models import ExportedModel
from training.models import Checkpoint, DatasetBuild, TrainingRun, name_validator


class EvalSuite(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    dataset = models.ForeignKey(DatasetBuild, on_delete=models.PROTECT, related_name="eval_suites")
    task_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, help_text="sha256 over every task's prompt and reference, in order")
    format_version = models.PositiveSmallIntegerField(default=2)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("evaluation:suite", args=[self.pk])


class EvalTask(models.Model):
    """One held-out task: the record up to and including `<CODE>` (prompt) and its CODE section (reference)."""

    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="tasks")
    index = models.PositiveIntegerField(help_text="Position in the suite, from 0")
    record_index = models.PositiveIntegerField(help_text="The record's index in the dataset's validation split")
    prompt = models.TextField()
    reference = models.TextField()
    prompt_tokens = models.PositiveIntegerField(default=0)
    reference_tokens = models.PositiveIntegerField(default=0)
    repo = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=500, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="The first changed file")
    pull_request = models.ForeignKey(PullRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    meta = models.JSONField(default=dict, blank=True, help_text="What type-checking needs: base commit, files")

    class Meta:
        ordering = ["suite", "index"]
        constraints = [models.UniqueConstraint(fields=["suite", "index"], name="unique_eval_task_index")]

    def __str__(self) -> str:
        return f"{self.suite.name}#{self.index}"


class Evaluation(BackgroundJob):
    """One model on one suite: a run's checkpoint through PyTorch, or an exported model through llama.cpp."""

    class Backend(models.TextChoices):
        TORCH = "torch", "PyTorch checkpoint"
        GGUF = "gguf", "GGUF (llama.cpp)"

    suite = models.ForeignKey(EvalSuite, on_delete=models.PROTECT, related_name="evaluations")
    backend = models.CharField(max_length=8, choices=Backend.choices, default=Backend.TORCH)
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="evaluations")
    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    exported_model = models.ForeignKey(
        ExportedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations"
    )
    step = models.PositiveIntegerField(default=0)
    training_tokens = models.PositiveBigIntegerField(default=0, help_text="Tokens the model had trained on")
    settings = models.JSONField(default=dict, blank=True, help_text="Generation settings: attempts, token caps")
    tasks_total = models.PositiveIntegerField(default=0)
    tasks_done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="Aggregates over the finished tasks")
    seconds = models.FloatField(default=0.0)

    status_url_name = "evaluation:status"
    card_id = "evaluation"
    dead_hint = "worker silent — evaluate again to resume; finished tasks are kept"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        target = self.exported_model or f"{self.run.name}@{self.step}"
        return f"{target} on {self.suite.name}"

    def get_absolute_url(self) -> str:
        return reverse("evaluation:evaluation", args=[self.pk])


class TaskResult(models.Model):
    """What one model did on one task. A null metric is absent (could not be measured), never zero."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="results")
    task = models.ForeignKey(EvalTask, on_delete=models.CASCADE, related_name="results")
    # Teacher-forced on the reference.
    code_loss = models.FloatField(null=True, blank=True, help_text="Mean cross-entropy per reference token (nats)")
    code_tokens = models.PositiveIntegerField(default=0)
    correct_tokens = models.PositiveIntegerField(default=0, help_text="Reference tokens predicted by argmax")
    # Greedy generation through the refinement loop.
    attempts = models.JSONField(default=list, blank=True, help_text="[{code, parses, errors, decision}] in order")
    output = models.TextField(blank=True, help_text="The code kept: the last attempt that parsed, else the last")
    exact_match = models.BooleanField(null=True)
    edit_similarity = models.FloatField(null=True, blank=True)
    parses_first = models.BooleanField(null=True)
    parses_final = models.BooleanField(null=True)
    gofmt_ok = models.BooleanField(null=True)
    vet_ok = models.BooleanField(null=True)
    vet_output = models.TextField(blank=True)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["evaluation", "task__index"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "task"], name="unique_task_result")]


# The board's models (comparisons, ratings) live in their own modules; imported here so Django sees them.
from evaluation.models_compare import Comparison  # noqa: E402, F401
from evaluation.models_ratings import Rating  # noqa: E402, F401
