"""Tokenizer versions and dataset builds: create, run (the task bodies), retry, delete, read back."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from django.db import transaction
from django.db.models import ProtectedError

from corpus.models import Snapshot
from corpus.services import iter_snapshot_records
from hrgc_site.jobs import Progress, enqueue
from hrgc_site.models import JobStatus
from training.dataset import (
    VAL_FRACTION,
    BuildStopped,
    DatasetItem,
    build_dataset,
    decode_sample,
    item_from_line,
    load_meta,
)
from training.models import DatasetBuild, TokenizerVersion
from training.tokenizer import (
    Tokenizer,
    VocabularyTooLarge,
    VocabularyTooSmall,
    train_tokenizer,
)

TOKENIZER_TASK = "training.tasks_data.train_tokenizer_task"
DATASET_TASK = "training.tasks_data.build_dataset_task"
MODEL_PREFIX = "tokenizer"  # files are <directory>/tokenizer.model and tokenizer.vocab
ENCODE_MAX_CHARS = 20_000  # the try-it box; longer text is refused, not truncated
SAMPLE_MAX_TOKENS = 4096  # the dataset page's decoded record


class InUse(Exception):
    """The row is referenced by later artefacts or still running, so it cannot be deleted."""


def _user(user):
    return user if user is not None and user.is_authenticated else None


def _enqueue_on_commit(job, func: str) -> None:
    transaction.on_commit(lambda: enqueue(job, func))


def finished_snapshots():
    return Snapshot.objects.filter(status=JobStatus.FINISHED).exclude(file_path="")


def finished_tokenizers():
    return TokenizerVersion.objects.filter(status=JobStatus.FINISHED).select_related("snapshot")


# --- tokenizers -------------------------------------------------------------------------------


def create_tokenizer(
    *, snapshot: Snapshot, name: str, vocab_size: int, user=None, enqueue_task: bool = True
) -> TokenizerVersion:
    """A queued tokenizer version; the worker trains it (or the caller runs the task itself)."""
    tokenizer = TokenizerVersion(
        name=name.strip(), snapshot=snapshot, vocab_size=vocab_size, created_by=_user(user), message="queued"
    )
    tokenizer.full_clean()
    with transaction.atomic():
        tokenizer.save()
        if enqueue_task:
            _enqueue_on_commit(tokenizer, TOKENIZER_TASK)
    return tokenizer


def can_retry(tokenizer: TokenizerVersion) -> bool:
    """Failed, stopped, or its worker died (a killed worker leaves the row "running" without a heartbeat)."""
    return tokenizer.status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.DEAD) or tokenizer.looks_dead


def retry_tokenizer(*, tokenizer: TokenizerVersion, vocab_size: int, enqueue_task: bool = True) -> TokenizerVersion:
    """Queue a failed (or stopped, dead) version again, usually with the size its failure suggested."""
    if not can_retry(tokenizer):
        raise InUse(f"tokenizer {tokenizer.name} is {tokenizer.status}; only a failed one can be retried")
    tokenizer.vocab_size = vocab_size
    tokenizer.full_clean()
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
            _enqueue_on_commit(tokenizer, TOKENIZER_TASK)
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
        raise ValueError(f"at most {ENCODE_MAX_CHARS:,} characters, please (got {len(text):,})")
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


# --- datasets ---------------------------------------------------------------------------------


def create_dataset(
    *,
    snapshot: Snapshot,
    tokenizer: TokenizerVersion,
    name: str,
    processes: int = 2,
    seq_len: int = 1024,
    user=None,
    enqueue_task: bool = True,
) -> DatasetBuild:
    """A queued dataset build of snapshot with a finished tokenizer."""
    if tokenizer.status != JobStatus.FINISHED:
        raise ValueError(f"tokenizer {tokenizer.name} is {tokenizer.status}; pick a finished one")
    dataset = DatasetBuild(
        name=name.strip(),
        snapshot=snapshot,
        tokenizer=tokenizer,
        processes=processes,
        seq_len=seq_len,
        created_by=_user(user),
        message="queued",
    )
    dataset.full_clean()
    with transaction.atomic():
        dataset.save()
        if enqueue_task:
            _enqueue_on_commit(dataset, DATASET_TASK)
    return dataset


def snapshot_items(snapshot: Snapshot) -> Iterator[DatasetItem]:
    """The snapshot's lines as dataset items: record parts (format 2) or finished records (format 1)."""
    if not snapshot.file_path:
        raise ValueError(f"snapshot {snapshot.name} has no file yet (status {snapshot.status})")
    with open(snapshot.file_path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield item_from_line(json.loads(line))


def run_dataset_build(dataset: DatasetBuild, progress: Progress) -> tuple[str, str]:
    """The task body: tokenize the snapshot into the dataset directory and store its statistics."""

    def report(message: str, fraction: float | None) -> None:
        fields = {"message": message}
        if fraction is not None:
            fields["progress"] = min(1.0, fraction)
        progress.update(**fields)

    try:
        stats = build_dataset(
            snapshot_items(dataset.snapshot),
            Path(dataset.tokenizer.model_path),
            dataset.directory,
            processes=dataset.processes,
            seq_len=dataset.seq_len,
            augment=dataset.augment,
            total_records=dataset.snapshot.pr_count or None,
            report=report,
            should_stop=progress.should_stop,
        )
    except BuildStopped:
        return JobStatus.STOPPED, "stopped before it was complete; nothing was kept"
    meta = stats.to_meta()
    train, val = stats.splits["train"], stats.splits["val"]
    DatasetBuild.objects.filter(pk=dataset.pk).update(
        path=str(dataset.directory),
        stats=meta,
        train_tokens=train.tokens,
        val_tokens=val.tokens,
        records=train.records + val.records,
        progress=1.0,
    )
    return JobStatus.FINISHED, (
        f"{train.tokens + val.tokens:,} tokens in {train.records + val.records:,} records "
        f"({len(train.repos)} train / {len(val.repos)} val repositories)"
    )


def stop_dataset(dataset: DatasetBuild) -> None:
    """Ask a running build to stop (it checks between chunks); a queued one is stopped at once, and one
    whose worker died is marked dead (nothing is left to stop it)."""
    if dataset.looks_dead:
        DatasetBuild.objects.filter(pk=dataset.pk).update(
            status=JobStatus.DEAD, cancel_requested=True, message="its worker stopped answering; marked dead"
        )
    elif DatasetBuild.objects.filter(pk=dataset.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.STOPPED, cancel_requested=True, message="stopped before it started"
    ):
        pass  # conditional on the row: a worker may have claimed it since `dataset` was read
    elif dataset.is_active:
        DatasetBuild.objects.filter(pk=dataset.pk).update(cancel_requested=True, message="stopping…")


def delete_dataset(dataset: DatasetBuild) -> None:
    """Remove the row and its files; refused while it runs or while a training run uses it."""
    if dataset.is_active and not dataset.looks_dead:
        raise InUse(f"dataset {dataset.name} is {dataset.status}; stop it first")
    used_by = list(dataset.runs.values_list("name", flat=True)[:5])
    if used_by:
        raise InUse(f"dataset {dataset.name} is used by run(s) {', '.join(used_by)}; delete those first")
    directory = dataset.directory
    try:
        dataset.delete()
    except ProtectedError:  # a run was started on it after the check above
        raise InUse(f"dataset {dataset.name} is now used by a training run; delete that first") from None
    shutil.rmtree(directory, ignore_errors=True)


def dataset_meta(dataset: DatasetBuild) -> dict:
    """meta.json of a finished build (the row's copy when the files are gone)."""
    if dataset.path:
        try:
            return load_meta(Path(dataset.path))
        except FileNotFoundError:
            pass
    return dataset.stats or {}


def dataset_sample(dataset: DatasetBuild, *, split: str = "train", index: int = 0) -> list[dict]:
    """One record of a split decoded token by token, merged into runs of text of one section.

    Shows up to SAMPLE_MAX_TOKENS (at least seq_len) so the code after a long context is visible;
    runs past the first seq_len tokens, the first packed training sequence, are marked `beyond`."""
    limit = max(dataset.seq_len, SAMPLE_MAX_TOKENS)
    pieces = decode_sample(Path(dataset.path), split, index, length=limit)
    runs: list[dict] = []
    for position, (text, section) in enumerate(pieces):
        beyond = position >= dataset.seq_len
        if runs and runs[-1]["section"] == section and runs[-1]["beyond"] == beyond:
            runs[-1]["text"] += text
            runs[-1]["tokens"] += 1
        else:
            runs.append({"section": section, "text": text, "tokens": 1, "beyond": beyond})
    return runs


def split_share(splits: dict, asked: float = VAL_FRACTION) -> dict:
    """The validation split's actual share of the tokens, and a warning when it is off from `asked` by more
    than a factor of two (a split by repository moves whole repositories, so few of them cannot come close)."""
    val = int(splits.get("val", {}).get("tokens", 0))
    total = val + int(splits.get("train", {}).get("tokens", 0))
    share = val / total if total else 0.0
    repos = sum(len(split.get("repos", [])) for split in splits.values())
    warning = ""
    if total and not asked / 2 <= share <= asked * 2:
        warning = (
            f"only {repos} repositor{'y' if repos == 1 else 'ies'}: a split by repository cannot be "
            f"closer to {round(100 * (1 - asked))}/{round(100 * asked)}"
            if repos < 20
            else f"whole repositories go to one side, and these {repos} do not add up closer to "
            f"{round(100 * (1 - asked))}/{round(100 * asked)}"
        )
    return {"val_share": share, "asked": asked, "warning": warning}


def split_summary(meta: dict) -> dict:
    """Per split: tokens, records, sequences and repositories, as plain dicts for templates."""
    return {
        name: dict(split) if isinstance(split, dict) else asdict(split)
        for name, split in (meta.get("splits") or {}).items()
    }
