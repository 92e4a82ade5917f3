"""Tokenizer versions: create, train (the task body), retry, delete, load and try out."""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from corpus.models import Snapshot
from corpus.services.snapshots import iter_snapshot_records
from hrgc_site.errors import ActionRefused, InUse, Invalid
from hrgc_site.jobs import Progress, enqueue_on_commit
from hrgc_site.models import JobStatus
from training.models import TokenizerVersion
from training.tokenizer import (
    Tokenizer,
    VocabularyTooLarge,
    VocabularyTooSmall,
    train_tokenizer,
)

TOKENIZER_TASK = "training.tasks.tokenizers.train_tokenizer_task"
MODEL_PREFIX = "tokenizer"  # files are <directory>/tokenizer.model and tokenizer.vocab
ENCODE_MAX_CHARS = 20_000  # the try-it box; longer text is refused, not truncated


def _user(user):
    return user if user is not None and user.is_authenticated else None


def _full_clean(row) -> None:
    try:
        row.full_clean()
    except ValidationError as error:
        raise Invalid(error) from error


def finished_snapshots():
    return Snapshot.objects.filter(status=JobStatus.FINISHED).exclude(file_path="")


def finished_tokenizers():
    return TokenizerVersion.objects.filter(status=JobStatus.FINISHED).select_related("snapshot")


def create_tokenizer(
    *, snapshot: Snapshot, name: str, vocab_size: int, user=None, enqueue_task: bool = True
) -> TokenizerVersion:
    """A queued tokenizer version; the worker trains it (or the caller runs the task itself)."""
    tokenizer = TokenizerVersion(
        name=name.strip(), snapshot=snapshot, vocab_size=vocab_size, created_by=_user(user), message="queued"
    )
    _full_clean(tokenizer)
    with transaction.atomic():
        tokenizer.save()
        if enqueue_task:
            enqueue_on_commit(tokenizer, TOKENIZER_TASK)
    return tokenizer


def can_retry(tokenizer: TokenizerVersion) -> bool:
    """Failed, stopped, or its worker died (a killed worker leaves the row "running" without a heartbeat)."""
    return tokenizer.status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.DEAD) or tokenizer.looks_dead


def retry_tokenizer(*, tokenizer: TokenizerVersion, vocab_size: int, enqueue_task: bool = True) -> TokenizerVersion:
    """Queue a failed (or stopped, dead) version again, usually with the size its failure suggested."""
    if not can_retry(tokenizer):
        raise InUse(f"tokenizer {tokenizer.name} is {tokenizer.status}; only a failed one can be retried")
    tokenizer.vocab_size = vocab_size
    _full_clean(tokenizer)
    with transaction.atomic():
        updated = TokenizerVersion.objects.filter(pk=tokenizer.pk, status=tokenizer.status).update(
            vocab_size=vocab_size,
            status=JobStatus.QUEUED,
            message="queued",
            progress=0.0,
            suggested_vocab_size=None,
            cancel_requested=False,
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
            worker="",
        )
        tokenizer.refresh_from_db()
        if not updated:
            raise InUse(f"tokenizer {tokenizer.name} changed to {tokenizer.status} meanwhile; not retried")
        if enqueue_task:
            enqueue_on_commit(tokenizer, TOKENIZER_TASK)
    return tokenizer


def run_tokenizer_training(tokenizer: TokenizerVersion, progress: Progress) -> tuple[str, str]:
    """The task body: train on the snapshot's serialized records and store the figures on the row."""
    texts = (record.text for _, record in iter_snapshot_records(tokenizer.snapshot))

    def report(message: str, fraction: float | None) -> None:
        fields = {"message": message}
        if fraction is not None:
            fields["progress"] = fraction
        progress.update(force=True, **fields)

    try:
        info = train_tokenizer(
            texts, tokenizer.directory / MODEL_PREFIX, vocab_size=tokenizer.vocab_size, report=report
        )
    except VocabularyTooLarge as error:
        TokenizerVersion.objects.filter(pk=tokenizer.pk).update(suggested_vocab_size=error.max_size)
        return JobStatus.FAILED, str(error)
    except VocabularyTooSmall as error:
        TokenizerVersion.objects.filter(pk=tokenizer.pk).update(suggested_vocab_size=error.min_size)
        return JobStatus.FAILED, str(error)
    TokenizerVersion.objects.filter(pk=tokenizer.pk).update(
        model_path=str(info.model_path),
        vocab_path=str(info.vocab_path),
        training_seconds=info.train_seconds,
        chars_per_token_code=info.chars_per_token_code,
        chars_per_token_prose=info.chars_per_token_prose,
        input_chars=info.input_chars,
        trained_chars=info.trained_chars,
        progress=1.0,
        vocab_size=info.vocab_size,
    )
    return JobStatus.FINISHED, f"trained {info.vocab_size:,} pieces on {info.trained_chars:,} characters"


def delete_tokenizer(tokenizer: TokenizerVersion) -> None:
    """Remove the row and its files; refused while it runs or while a dataset uses it."""
    if tokenizer.is_active and not tokenizer.looks_dead:
        raise InUse(f"tokenizer {tokenizer.name} is {tokenizer.status}; wait until it ends")
    used_by = list(tokenizer.datasets.values_list("name", flat=True)[:5])
    if used_by:
        raise InUse(f"tokenizer {tokenizer.name} is used by dataset(s) {', '.join(used_by)}; delete those first")
    directory = tokenizer.directory
    try:
        tokenizer.delete()
    except ProtectedError:  # a dataset was started on it after the check above
        raise InUse(f"tokenizer {tokenizer.name} is now used by a dataset; delete that first") from None
    shutil.rmtree(directory, ignore_errors=True)


def resolve_tokenizer(reference: str) -> TokenizerVersion:
    """A finished tokenizer by id, by name, or `latest`; DoesNotExist otherwise."""
    finished = TokenizerVersion.objects.filter(status=JobStatus.FINISHED)
    if reference == "latest":
        latest = finished.order_by("-created_at", "-pk").first()
        if latest is None:
            raise TokenizerVersion.DoesNotExist("there is no finished tokenizer yet")
        return latest
    found = TokenizerVersion.objects.filter(pk=int(reference)).first() if reference.isdigit() else None
    found = found or TokenizerVersion.objects.filter(name=reference).first()
    if found is None:
        raise TokenizerVersion.DoesNotExist(f"no tokenizer with id or name {reference!r}")
    if found.status != JobStatus.FINISHED:
        raise TokenizerVersion.DoesNotExist(f"tokenizer {found.name} is {found.status}, not finished")
    return found


@lru_cache(maxsize=8)
def _load_tokenizer(model_path: str, mtime_ns: int) -> Tokenizer:
    return Tokenizer(Path(model_path))


def load_tokenizer(tokenizer: TokenizerVersion) -> Tokenizer:
    """The trained model, cached per file version (building the piece tables takes a moment)."""
    if tokenizer.status != JobStatus.FINISHED or not tokenizer.model_path:
        raise FileNotFoundError(f"tokenizer {tokenizer.name} has no trained model")
    path = Path(tokenizer.model_path)
    return _load_tokenizer(str(path), path.stat().st_mtime_ns)


def encode_text(tokenizer: TokenizerVersion, text: str) -> dict:
    """What the try-it box shows: each token's id, piece and text, and whether decoding gives text back."""
    if len(text) > ENCODE_MAX_CHARS:
        raise ActionRefused(f"at most {ENCODE_MAX_CHARS:,} characters, please (got {len(text):,})")
    model = load_tokenizer(tokenizer)
    ids, offsets = model.encode_with_offsets(text)
    special = set(model.special_ids.values())
    tokens = [
        {
            "id": token_id,
            "piece": model.piece(token_id),
            "text": text[start:end],
            "special": token_id in special,
            "byte": model.is_byte(token_id),
        }
        for token_id, (start, end) in zip(ids, offsets, strict=True)
    ]
    return {
        "ids": ids,
        "tokens": tokens,
        "chars": len(text),
        "count": len(ids),
        "chars_per_token": len(text) / len(ids) if ids else None,
        "round_trip": model.decode(ids) == text,
    }


def tokenizer_file(tokenizer: TokenizerVersion, kind: str) -> tuple[Path, str]:
    """(path, download name) of the registered .model or .vocab file; FileNotFoundError otherwise."""
    registered = {"model": tokenizer.model_path, "vocab": tokenizer.vocab_path}.get(kind)
    if not registered or not Path(registered).is_file():
        raise FileNotFoundError(f"tokenizer {tokenizer.name} has no .{kind} file")
    return Path(registered), f"{tokenizer.name}.{kind}"
