"""`manage.py train_tokenizer SNAPSHOT --vocab-size N`: train a tokenizer version here, or queue it."""

from __future__ import annotations

from django.core.management.base import CommandError

from corpus.models import Snapshot
from hrgc_site.commands import PipelineCommand
from hrgc_site.errors import Invalid
from hrgc_site.models import JobStatus, split_message
from training.models import TokenizerVersion
from training.services import tokenizers
from training.tasks.tokenizers import train_tokenizer_task


def unique_name(model, base: str) -> str:
    name, number = base, 2
    while model.objects.filter(name=name).exists():
        name, number = f"{base}-{number}", number + 1
    return name


def finished_snapshot(name: str) -> Snapshot:
    snapshot = Snapshot.objects.filter(name=name).first()
    if snapshot is None:
        known = ", ".join(Snapshot.objects.values_list("name", flat=True)[:10]) or "none yet"
        raise CommandError(f"no snapshot named {name!r} (snapshots: {known})")
    if snapshot.status != JobStatus.FINISHED or not snapshot.file_path:
        raise CommandError(f"snapshot {name} is {snapshot.status}; only a finished snapshot can be used")
    return snapshot


class Command(PipelineCommand):
    help = "Train a SentencePiece tokenizer version on a finished snapshot (in this process, or --enqueue)."

    def add_arguments(self, parser):
        parser.add_argument("snapshot", help="snapshot name")
        parser.add_argument("--vocab-size", type=int, default=50_000)
        parser.add_argument("--name", help="version name (default: <snapshot>-<vocab size>)")
        parser.add_argument("--enqueue", action="store_true", help="queue it for a worker instead of training here")

    def handle(self, *args, snapshot, vocab_size, name, enqueue, **options):
        snapshot = finished_snapshot(snapshot)
        name = name or unique_name(TokenizerVersion, f"{snapshot.name}-{vocab_size}")
        try:
            tokenizer = tokenizers.create_tokenizer(
                snapshot=snapshot, name=name, vocab_size=vocab_size, enqueue_task=enqueue
            )
        except Invalid as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.error.message_dict.items())
            ) from error
        if enqueue:
            self.stdout.write(f"queued tokenizer {tokenizer.name} (id {tokenizer.pk}) for a worker")
            return
        self.stdout.write(f"training tokenizer {tokenizer.name} (id {tokenizer.pk}) on snapshot {snapshot.name}…")
        train_tokenizer_task(tokenizer.pk)
        tokenizer.refresh_from_db()
        if tokenizer.status != JobStatus.FINISHED:
            hint = (
                f" — retry with --vocab-size {tokenizer.suggested_vocab_size}" if tokenizer.suggested_vocab_size else ""
            )
            raise CommandError(
                f"tokenizer {tokenizer.name} {tokenizer.status}: {split_message(tokenizer.message)[0]}{hint}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"tokenizer {tokenizer.name} (id {tokenizer.pk}): {tokenizer.vocab_size:,} pieces in "
                f"{tokenizer.training_seconds:.1f} s; chars/token code {_figure(tokenizer.chars_per_token_code)}, "
                f"prose {_figure(tokenizer.chars_per_token_prose)}\n  {tokenizer.model_path}\n  {tokenizer.vocab_path}"
            )
        )


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
