"""Shared helpers for the run tests: a small real dataset (SentencePiece + packed tokens) and its rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from corpus.plans import Plan
from corpus.records import FileRecord, PRRecord
from corpus.serialize import serialize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
PAIRS = ("add_cache", "fix_server", "optimize_join", "refactor_store")
# Short runs: a few steps, quick evals, no sampling unless a test asks for it.
FAST = {
    "max_steps": "12",
    "eval_steps": "6",
    "save_steps": "6",
    "logging_steps": "2",
    "eval_iters": "1",
    "validation_frequency": "1000",
    "warmup_steps": "2",
    "batch_size": "4",
    "block_size": "64",
    "num_threads": "1",
    "device": "cpu",
}


def serialized_records() -> list[tuple[str, object]]:
    records = []
    for index in range(24):
        name = PAIRS[index % len(PAIRS)]
        before = (FIXTURES / f"{name}_before.go").read_text() if (FIXTURES / f"{name}_before.go").exists() else ""
        after = (FIXTURES / f"{name}_after.go").read_text()
        repo = f"owner{index % 6}/project{index % 6}"
        pr = PRRecord(
            repo=repo,
            number=index + 1,
            title=f"{name.replace('_', ' ').capitalize()} number {index}",
            body=f"Change {index} of {repo}.",
            files=[FileRecord(path=f"pkg/{name}.go", before=before, after=after)],
        )
        records.append((repo, serialize(pr, Plan(intent="FIX", steps=[f"<INTENT:FIX> {name} step {index}"]))))
    return records


@pytest.fixture(scope="session")
def dataset_files(tmp_path_factory) -> Path:
    """A real dataset directory (meta.json, train/val bins, tokenizer.model), built once per session."""
    from training.dataset import build_dataset
    from training.tokenizer import train_tokenizer

    records = serialized_records()
    root = tmp_path_factory.mktemp("run-dataset")
    model = train_tokenizer([record.text for _, record in records], root / "tok", vocab_size=700).model_path
    out = root / "dataset"
    build_dataset(records, model, out, processes=1, seq_len=64, val_fraction=0.3)
    return out


def make_dataset(dataset_files: Path, name: str = "ds-small"):
    """Rows for a finished dataset (snapshot, tokenizer, build) whose directory holds `dataset_files`."""
    from corpus.models import Snapshot
    from training.models import DatasetBuild, TokenizerVersion

    snapshot = Snapshot.objects.create(name=f"snap-{name}", status="finished")
    tokenizer = TokenizerVersion.objects.create(
        name=f"tok-{name}", snapshot=snapshot, vocab_size=700, status="finished"
    )
    dataset = DatasetBuild.objects.create(
        name=name, snapshot=snapshot, tokenizer=tokenizer, status="finished", seq_len=64
    )
    shutil.rmtree(dataset.directory, ignore_errors=True)
    shutil.copytree(dataset_files, dataset.directory)
    return dataset
