"""Helpers the training tests share (fixtures live in conftest.py): a small real dataset (SentencePiece +
packed tokens) and its rows, and a byte-level Go-flavoured dataset for the engine tests."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np

from corpus.models import Snapshot
from corpus.plans import Plan
from corpus.records import SECTION_LABELS, FileRecord, PRRecord
from corpus.serialize import serialize
from training.dataset import build_dataset
from training.models import DatasetBuild, TokenizerVersion
from training.services.runs import create_run
from training.tokenizer import train_tokenizer

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


def build_dataset_files(root: Path) -> Path:
    """A real dataset directory (meta.json, train/val bins, tokenizer.model) under `root`."""
    records = serialized_records()
    model = train_tokenizer([record.text for _, record in records], root / "tok", vocab_size=700).model_path
    out = root / "dataset"
    build_dataset(records, model, out, processes=1, seq_len=64, val_fraction=0.3)
    return out


def make_dataset(dataset_files: Path, name: str = "ds-small"):
    """Rows for a finished dataset (snapshot, tokenizer, build) whose directory holds `dataset_files`."""
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


BOS, EOS, VOCAB = 256, 257, 260
NAMES = ["Parse", "Load", "Close", "Open", "Read", "Write", "Count", "Merge", "Split", "Join", "Flush", "Reset"]
TYPES = ["int", "string", "error", "bool", "[]byte", "float64"]


def write_go_corpus(dataset_dir: Path, records: int = 500, seed: int = 0) -> Path:
    """A dataset directory as training/dataset.py writes it: byte-level ids of small Go-flavoured
    records (title, plan, code, validate, done marker), one section label per token."""
    rng = random.Random(seed)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, count in (("train", records), ("val", max(40, records // 8))):
        ids, labels = [], []
        for _ in range(count):
            name, kind, divisor = rng.choice(NAMES), rng.choice(TYPES), rng.randint(1, 9)
            parts = [
                ("other", f"<PR_TITLE> Add {name} for {kind}\n"),
                ("plan", f"<PLAN><STEP> add func {name} taking {kind}</PLAN>\n"),
                ("code", f"<CODE>func {name}(v {kind}) {kind} {{\n\treturn v / {divisor}\n}}\n"),
                ("validate", "<VALIDATE><SYNTAX_OK> true\n"),
                ("refine", "</CODE>\n"),
            ]
            ids.append(BOS)
            labels.append(SECTION_LABELS["other"])
            for section, text in parts:
                encoded = list(text.encode())
                ids += encoded
                labels += [SECTION_LABELS[section]] * len(encoded)
            ids.append(EOS)
            labels.append(SECTION_LABELS["other"])
        np.array(ids, dtype=np.uint16).tofile(dataset_dir / f"{split}.bin")
        np.array(labels, dtype=np.uint8).tofile(dataset_dir / f"{split}.labels.bin")
        splits[split] = {"tokens": len(ids), "records": count}
    meta = {
        "vocab_size": VOCAB,
        "dtype": "uint16",
        "seq_len": 256,
        "bos_id": BOS,
        "eos_id": EOS,
        "pad_id": 258,
        "section_labels": SECTION_LABELS,
        "splits": splits,
    }
    (dataset_dir / "meta.json").write_text(json.dumps(meta))
    return dataset_dir


TRACEBACK = (
    "ValueError: dropout probability has to be between 0 and 1, but got 1.5\n\n"
    'Traceback (most recent call last):\n  File "/work/main/training/engine.py", line 1, in train\n'
    "ValueError: dropout probability has to be between 0 and 1, but got 1.5"
)


def tiny_run(dataset, name="qa-run", family="hrm", **overrides):
    return create_run(
        dataset=dataset, family=family, preset_name="tiny", name=name, overrides={**FAST, **overrides}, queue=False
    )
