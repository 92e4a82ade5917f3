"""`manage.py train DATASET --family hrm --preset tiny [--set key=value ...]`: a run in the foreground, recorded
like any dashboard run (same task body), or queued on the training cluster with --enqueue."""

from __future__ import annotations

import signal

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

from hrgc_site.commands import PipelineCommand
from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import run_job
from hrgc_site.models import JobStatus, split_message
from training.hrm.config import FAMILIES, PRESETS
from training.models import DatasetBuild, TrainingRun, name_validator
from training.services.runs import base_config, create_run, parameter_count
from training.tasks.runs import execute_run


def find_dataset(spec: str) -> DatasetBuild:
    """A finished dataset by id, by name, or `latest`."""
    finished = DatasetBuild.objects.filter(status=JobStatus.FINISHED)
    if spec == "latest":
        dataset = finished.order_by("-created_at").first()
    elif spec.isdigit():
        dataset = finished.filter(pk=int(spec)).first()
    else:
        dataset = finished.filter(name=spec).first()
    if dataset is None:
        names = ", ".join(finished.order_by("-created_at").values_list("name", flat=True)[:10]) or "none yet"
        raise CommandError(f"no finished dataset {spec!r}; finished datasets: {names}")
    return dataset


class Command(PipelineCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="dataset id, name, or `latest`")
        parser.add_argument("--family", choices=FAMILIES, default="hrm")
        parser.add_argument("--preset", choices=PRESETS, default="tiny")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            # Not `settings`: that is Django's own --settings, and the parsed list would replace it.
            dest="overrides",
            help="override a setting of the preset, e.g. --set max_steps=200 (repeatable)",
        )
        parser.add_argument("--name", help="run name (default: family-preset-time)")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="queue it on the training cluster instead of training in this process",
        )

    def handle(self, *args, **options):
        dataset = find_dataset(options["dataset"])
        family, preset_name = options["family"], options["preset"]
        overrides: dict[str, str] = {}
        for item in options["overrides"] or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--set wants KEY=VALUE, got {item!r}")
            overrides[key.strip()] = value
        try:
            config = base_config(family, preset_name, dataset).with_overrides(overrides)
        except ValueError as exc:
            raise CommandError(f"bad setting: {exc}") from None
        name = options["name"] or f"{family}-{preset_name}-{timezone.now():%Y%m%d-%H%M%S}"
        if TrainingRun.objects.filter(name=name).exists():
            raise CommandError(f"a run named {name!r} exists already")
        try:
            name_validator(name)  # the rule the web form applies
        except ValidationError as exc:
            raise CommandError(f"bad --name {name!r}: {' '.join(exc.messages)}") from None
        try:
            run = create_run(
                dataset=dataset,
                family=family,
                preset_name=preset_name,
                name=name,
                overrides=overrides,
                queue=options["enqueue"],
            )
        except ActionRefused as exc:  # a block size the dataset cannot fill, a model over the ceiling
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"run {run.pk} {run.name}: {family}/{preset_name} on {dataset.name}, "
            f"{parameter_count(config):,} parameters, {config.train.max_steps:,} steps"
        )
        if options["enqueue"]:
            self.stdout.write("queued on the training cluster; watch it at " + run.get_absolute_url())
            return

        # Ctrl-C asks for a cooperative stop (checkpoint, status stopped); a second one aborts.
        interrupted = {"flag": False}

        def on_interrupt(signum, frame):
            if interrupted["flag"]:
                raise KeyboardInterrupt
            interrupted["flag"] = True
            self.stderr.write("stopping after this step (Ctrl-C again to abort)")

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            status = run_job(
                TrainingRun,
                run.pk,
                lambda job: execute_run(job, echo=self.stdout.write, interrupted=lambda: interrupted["flag"]),
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        run.refresh_from_db()
        self.stdout.write(f"{status}: {split_message(run.message)[0]}")
        if status == JobStatus.FAILED:
            raise CommandError(run.message[:2000])
