"""Tokenizer versions, dataset builds, training runs with their metrics, checkpoints and logs."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from corpus.models import Snapshot
from hrgc_site.models import BackgroundJob

name_validator = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "Letters, digits, dot, dash and underscore.")


class TokenizerVersion(BackgroundJob):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="tokenizers")
    vocab_size = models.PositiveIntegerField(
        default=50_000, validators=[MinValueValidator(300), MaxValueValidator(1_000_000)]
    )
    model_path = models.CharField(max_length=500, blank=True)
    vocab_path = models.CharField(max_length=500, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    chars_per_token_code = models.FloatField(null=True, blank=True)
    chars_per_token_prose = models.FloatField(null=True, blank=True)
    # Set when training failed because the corpus could not support vocab_size: the size that works.
    suggested_vocab_size = models.PositiveIntegerField(null=True, blank=True)
    input_chars = models.PositiveBigIntegerField(default=0, help_text="Characters offered for training")
    trained_chars = models.PositiveBigIntegerField(default=0, help_text="Characters SentencePiece saw after sampling")

    status_url_name = "training:tokenizer_status"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("training:tokenizer", args=[self.pk])

    @property
    def directory(self) -> Path:
        return settings.DATA_DIR / "tokenizers" / f"{self.pk}-{self.name}"


class DatasetBuild(BackgroundJob):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="datasets")
    tokenizer = models.ForeignKey(TokenizerVersion, on_delete=models.PROTECT, related_name="datasets")
    processes = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1), MaxValueValidator(64)])
    seq_len = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(16), MaxValueValidator(65_536)])
    augment = models.BooleanField(default=True, help_text="Add the controller (validate/refine) examples")
    records = models.PositiveIntegerField(default=0)
    path = models.CharField(max_length=500, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    train_tokens = models.PositiveBigIntegerField(default=0)
    val_tokens = models.PositiveBigIntegerField(default=0)

    status_url_name = "training:dataset_status"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("training:dataset", args=[self.pk])

    @property
    def directory(self) -> Path:
        return settings.DATA_DIR / "datasets" / f"{self.pk}-{self.name}"


class TrainingRun(BackgroundJob):
    class Family(models.TextChoices):
        HRM = "hrm", "hrm (hierarchical recursive)"
        GPT = "gpt", "gpt (baseline decoder)"

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    dataset = models.ForeignKey(DatasetBuild, on_delete=models.PROTECT, related_name="runs")
    family = models.CharField(max_length=8, choices=Family.choices, default=Family.HRM)
    preset = models.CharField(max_length=16, default="tiny")
    config = models.JSONField(default=dict, help_text="The full RunConfig the run trains with")
    overrides = models.JSONField(default=dict, blank=True, help_text="Settings changed from the preset")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones")
    step = models.PositiveIntegerField(default=0)
    max_steps = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)
    last_loss = models.FloatField(null=True, blank=True)
    best_val_loss = models.FloatField(null=True, blank=True)
    last_val_loss = models.FloatField(null=True, blank=True)
    tokens_per_sec = models.FloatField(null=True, blank=True)
    parameter_count = models.PositiveBigIntegerField(null=True, blank=True)
    device = models.CharField(max_length=200, blank=True)
    memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    last_samples = models.JSONField(default=dict, blank=True)
    elapsed_seconds = models.FloatField(default=0.0, help_text="Training time so far, across resumes")
    tokens_per_step = models.PositiveBigIntegerField(default=0)
    parse_share = models.FloatField(null=True, blank=True, help_text="Share of the last samples whose code parses")
    resumes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("training:run", args=[self.pk])

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the recent training speed; None until there is one."""
        if not self.tokens_per_sec or not self.tokens_per_step or self.step >= self.max_steps:
            return None
        return (self.max_steps - self.step) * self.tokens_per_step / self.tokens_per_sec

    @property
    def directory(self) -> Path:
        return settings.DATA_DIR / "runs" / f"{self.pk}-{self.name}"

    def disk_usage(self) -> dict[str, int]:
        """Bytes the run's directory holds on disk: in all, and in checkpoint files (the bulk: a seed-preset
        checkpoint with optimizer state is about 360 MB; keep_last_checkpoints bounds how many stay)."""
        total = checkpoints = 0
        if self.directory.is_dir():
            for path in self.directory.rglob("*"):
                try:
                    size = path.stat().st_size if path.is_file() else 0
                except OSError:  # removed by the training process meanwhile
                    continue
                total += size
                if path.parent.name == "checkpoints":
                    checkpoints += size
        return {"total": total, "checkpoints": checkpoints}


class MetricPoint(models.Model):
    """One logged step of a run; unique per (run, kind, step) so a resumed run never doubles points."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metrics")
    kind = models.CharField(max_length=8)  # "train" | "eval" | "samples"
    step = models.PositiveIntegerField()
    tokens = models.PositiveBigIntegerField(default=0)
    elapsed = models.FloatField(default=0.0)
    values = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "kind", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "kind", "step"], name="unique_metric_point")]
        indexes = [models.Index(fields=["run", "kind", "id"], name="metric_run_kind_id")]


class Checkpoint(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    size = models.PositiveBigIntegerField(default=0)
    val_loss = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "-step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="unique_checkpoint_step")]


class RunLogLine(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="log_lines")
    created_at = models.DateTimeField(auto_now_add=True)
    message = models.TextField()

    class Meta:
        ordering = ["-id"]
