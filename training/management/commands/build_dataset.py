"""`manage.py build_dataset SNAPSHOT TOKENIZER`: tokenize a snapshot into a dataset here, or queue it."""

from __future__ import annotations

from django.core.management.base import CommandError

from hrgc_site.commands import PipelineCommand
from hrgc_site.errors import Invalid
from hrgc_site.models import JobStatus, split_message
from training.management.commands.train_tokenizer import finished_snapshot, unique_name
from training.models import DatasetBuild, TokenizerVersion
from training.services import datasets, tokenizers
from training.tasks.datasets import build_dataset_task


class Command(PipelineCommand):
    help = "Build a dataset from a finished snapshot with a finished tokenizer (in this process, or --enqueue)."

    def add_arguments(self, parser):
        parser.add_argument("snapshot", help="snapshot name")
        parser.add_argument("tokenizer", help="tokenizer id, name, or 'latest'")
        parser.add_argument("--name", help="dataset name (default: <snapshot>-<tokenizer>)")
        parser.add_argument("--processes", type=int, default=2)
        parser.add_argument("--seq-len", type=int, default=1024)
        parser.add_argument("--enqueue", action="store_true", help="queue it for a worker instead of building here")

    def handle(self, *args, snapshot, tokenizer, name, processes, seq_len, enqueue, **options):
        snapshot = finished_snapshot(snapshot)
        try:
            tokenizer = tokenizers.resolve_tokenizer(tokenizer)
        except TokenizerVersion.DoesNotExist as error:
            raise CommandError(str(error)) from error
        name = name or unique_name(DatasetBuild, f"{snapshot.name}-{tokenizer.name}")
        try:
            dataset = datasets.create_dataset(
                snapshot=snapshot,
                tokenizer=tokenizer,
                name=name,
                processes=processes,
                seq_len=seq_len,
                enqueue_task=enqueue,
            )
        except Invalid as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.error.message_dict.items())
            ) from error
        if enqueue:
            self.stdout.write(f"queued dataset {dataset.name} (id {dataset.pk}) for a worker")
            return
        self.stdout.write(
            f"building dataset {dataset.name} (id {dataset.pk}) from {snapshot.name} "
            f"with tokenizer {tokenizer.name}, {processes} process(es)…"
        )
        build_dataset_task(dataset.pk)
        dataset.refresh_from_db()
        if dataset.status != JobStatus.FINISHED:
            raise CommandError(f"dataset {dataset.name} {dataset.status}: {split_message(dataset.message)[0]}")
        stats = dataset.stats
        self.stdout.write(
            self.style.SUCCESS(
                f"dataset {dataset.name} (id {dataset.pk}): {dataset.message}\n"
                f"  sequences of {dataset.seq_len}: {stats['splits']['train']['sequences']:,} train, "
                f"{stats['splits']['val']['sequences']:,} val; validation split by {stats.get('split_method', 'repository')}; "
                f"pull requests that fit one record: {stats.get('fit_whole_share', 0):.0%}; "
                f"controller examples: {stats['augmented_records']:,}\n"
                f"  sections: "
                + ", ".join(f"{k} {v:.1%}" for k, v in stats["section_share"].items())
                + f"\n  {dataset.path}"
            )
        )
