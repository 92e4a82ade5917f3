"""`manage.py evaluate RUN|model:ID [--step N] [--suite NAME] [--tasks N]`: evaluate in the foreground."""

from __future__ import annotations

from django.core.management.base import CommandError

from evaluation.models import Evaluation
from evaluation.presentation import METRIC_ROWS, metric_text, vet_absent_note
from evaluation.services.evaluations import create_evaluation, vet_absent_reasons
from evaluation.services.job import run_evaluation
from evaluation.services.suites import DEFAULT_TASKS, suite_for
from hrgc_site.commands import PipelineCommand
from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import run_job
from models_registry.management.commands.export import find_run
from models_registry.models import ExportedModel

MODEL_PREFIX = "model:"


def find_model(ref: str) -> ExportedModel:
    number = ref[len(MODEL_PREFIX) :]
    model = ExportedModel.objects.filter(pk=int(number)).first() if number.isdigit() else None
    if model is None:
        raise CommandError(f"No exported model {number!r} (write model:ID, the id on the Models page).")
    return model


class Command(PipelineCommand):
    help = "Evaluate a run's checkpoint (PyTorch) or an exported GGUF on a suite, and print the metrics."

    def add_arguments(self, parser):
        parser.add_argument("target", help="run id or name, 'latest', or model:ID for an exported GGUF")
        parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
        parser.add_argument("--suite", default=None, help="suite name (default: the dataset's default suite)")
        parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="tasks of the default suite")
        parser.add_argument("--max-attempts", type=int, default=3, help="refinement attempts per task")
        parser.add_argument("--max-tokens", type=int, default=256, help="tokens per attempt")

    def handle(self, *args, target, step, suite, tasks, max_attempts, max_tokens, **options):
        exported = find_model(target) if target.startswith(MODEL_PREFIX) else None
        run = exported.run if exported else find_run(target)
        try:
            chosen = suite_for(dataset=run.dataset, name=suite, task_count=tasks)
            evaluation = create_evaluation(
                suite=chosen,
                run=run,
                step=step,
                exported_model=exported,
                settings={"max_attempts": max_attempts, "max_tokens": max_tokens},
            )
        except ActionRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Evaluating {evaluation} ({chosen.task_count} tasks, suite sha256 {chosen.sha256[:12]}…)")
        status = run_job(Evaluation, evaluation.pk, lambda job: run_evaluation(job, echo=self.stdout.write))
        evaluation.refresh_from_db()
        if status != "finished":
            raise CommandError(f"Evaluation #{evaluation.pk} {status}: {evaluation.message}")
        self.stdout.write(f"Evaluation #{evaluation.pk}: {evaluation.tasks_done} tasks")
        width = max(len(label) for _, label in METRIC_ROWS)
        for key, label in METRIC_ROWS:
            self.stdout.write(f"  {label:<{width}}  {metric_text(key, evaluation.metrics.get(key))}")
        note = vet_absent_note(vet_absent_reasons(evaluation), evaluation.tasks_done)
        if note:
            self.stdout.write(note)
