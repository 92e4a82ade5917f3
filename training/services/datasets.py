"""Dataset builds: create, build (the task body), stop, delete, and read back their statistics and records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from django.db import transaction
from django.db.models import ProtectedError

from corpus.models import Snapshot
from hrgc_site.errors import ActionRefused, InUse
from hrgc_site.jobs import Progress, enqueue_on_commit
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
from training.record_index import write_record_index
from training.services.tokenizers import _full_clean, _user

DATASET_TASK = "training.tasks.datasets.build_dataset_task"
SAMPLE_MAX_TOKENS = 4096  # the dataset page's decoded record


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
        raise ActionRefused(f"tokenizer {tokenizer.name} is {tokenizer.status}; pick a finished one")
    dataset = DatasetBuild(
        name=name.strip(),
        snapshot=snapshot,
        tokenizer=tokenizer,
        processes=processes,
        seq_len=seq_len,
        created_by=_user(user),
        message="queued",
    )
    _full_clean(dataset)
    with transaction.atomic():
        dataset.save()
        if enqueue_task:
            enqueue_on_commit(dataset, DATASET_TASK)
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
    write_record_index(dataset.directory)  # the dataset page reads record N without scanning to it
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
