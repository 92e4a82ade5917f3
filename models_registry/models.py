"""Exported model files: what they are, where they came from, whether they verified."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.urls import reverse

from hrgc_site.models import BackgroundJob
from training.models import Checkpoint, TrainingRun


class ExportedModel(BackgroundJob):
    class Format(models.TextChoices):
        GGUF = "gguf", "GGUF"
        SAFETENSORS = "safetensors", "safetensors"

    class Quant(models.TextChoices):
        F32 = "f32", "F32"
        F16 = "f16", "F16"
        Q8_0 = "q8_0", "Q8_0"

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="exports")
    checkpoint = models.ForeignKey(Checkpoint, null=True, on_delete=models.SET_NULL, related_name="exports")
    step = models.PositiveIntegerField(default=0)
    format = models.CharField(max_length=12, choices=Format.choices, default=Format.GGUF)
    quant = models.CharField(max_length=8, choices=Quant.choices, default=Quant.F16)
    architecture = models.CharField(max_length=32, blank=True)
    parameter_count = models.PositiveBigIntegerField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="The file (or folder) under the data dir")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    files = models.JSONField(
        default=list, blank=True, help_text="The downloadable files: [{name, size, sha256}] relative to `path`"
    )
    verified = models.BooleanField(null=True)
    verification = models.JSONField(default=dict, blank=True)

    status_url_name = "models_registry:status"
    card_id = "export"
    dead_hint = "worker silent — delete and export again"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.run.name}-step{self.step}-{self.quant}.{self.format}"

    def get_absolute_url(self) -> str:
        return reverse("models_registry:model", args=[self.pk])

    @property
    def directory(self) -> Path:
        return settings.DATA_DIR / "exports" / f"{self.pk}-{self.run.name}-step{self.step}-{self.quant}-{self.format}"

    def registered_file(self, name: str) -> Path | None:
        """The file `name` if, and only if, the export registered it and it lies inside its folder."""
        if name not in {entry["name"] for entry in self.files} or not self.path:
            return None
        root = Path(self.path).resolve()
        candidate = (root / name).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate

    @property
    def main_file(self) -> dict | None:
        return self.files[0] if self.files else None
