"""`manage.py export RUN [--step N] --format gguf|safetensors --quant f32|f16|q8_0`: export a checkpoint."""

from __future__ import annotations

from django.core.management.base import CommandError

from hrgc_site.commands import PipelineCommand
from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import run_job
from models_registry.models import ExportedModel
from models_registry.services import create_export, request_export, run_export
from training.models import TrainingRun


def find_run(ref: str) -> TrainingRun:
    runs = TrainingRun.objects.all()
    if ref == "latest":
        run = runs.order_by("-created_at").first()
    elif ref.isdigit():
        run = runs.filter(pk=int(ref)).first() or runs.filter(name=ref).first()
    else:
        run = runs.filter(name=ref).first()
    if run is None:
        raise CommandError(f"No training run {ref!r} (give an id, a name or 'latest').")
    return run


class Command(PipelineCommand):
    help = "Export a training run's checkpoint to GGUF or safetensors, verify it, and register it."

    def add_arguments(self, parser):
        parser.add_argument("run", help="run id, name or 'latest'")
        parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
        parser.add_argument("--format", choices=ExportedModel.Format.values, default="gguf")
        parser.add_argument(
            "--quant", choices=ExportedModel.Quant.values, default=None, help="GGUF: f16 (default), f32 or q8_0"
        )
        parser.add_argument("--enqueue", action="store_true", help="queue it for a worker instead")

    def handle(self, *args, run, step, format, quant, enqueue, **options):
        if format == ExportedModel.Format.SAFETENSORS and quant not in (None, ExportedModel.Quant.F32):
            raise CommandError("safetensors keeps the weights in full precision (f32); --quant is for GGUF.")
        quant = quant or (ExportedModel.Quant.F16 if format == ExportedModel.Format.GGUF else ExportedModel.Quant.F32)
        target = find_run(run)
        if enqueue:
            try:
                export = request_export(run=target, step=step, format=format, quant=quant)
            except ActionRefused as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"Queued export #{export.pk} of {target.name} step {export.step}.")
            return
        try:
            export = create_export(run=target, step=step, format=format, quant=quant)
        except ActionRefused as error:
            raise CommandError(str(error)) from None
        status = run_job(ExportedModel, export.pk, run_export)
        export.refresh_from_db()
        if status != "finished":
            raise CommandError(f"Export failed: {export.message}")
        self.stdout.write(self.style.SUCCESS(f"Exported model #{export.pk}: {export} → {export.path}"))
        for entry in export.files:
            self.stdout.write(f"  {entry['name']}  {entry['size']} bytes  sha256 {entry['sha256']}")
        checks = ", ".join(f"{key} {value}" for key, value in export.verification.items())
        self.stdout.write(f"Verification: {'passed' if export.verified else 'FAILED'} ({checks})")
        if export.format == ExportedModel.Format.GGUF:
            self.stdout.write(f"Evaluate it with: manage.py evaluate model:{export.pk}")
