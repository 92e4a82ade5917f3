"""The `seed` preset really trains (one step at 1,024 tokens) and exports; a vocabulary over 65,536 writes
32-bit token files that read back exactly. Slow: the seed model has tens of millions of parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentencepiece import sentencepiece_model_pb2

from corpus.plans import Plan
from corpus.records import FileRecord, PRRecord
from corpus.serialize import serialize
from hrgc_site.models import JobStatus
from models_registry.models import ExportedModel
from tests.commands import command_env, manage
from tests.training.support import FIXTURES, PAIRS
from training.data import TokenBatches
from training.dataset import build_dataset, decode_sample, load_meta
from training.models import DatasetBuild, TrainingRun
from training.tokenizer import Tokenizer, train_tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXTRA_PIECES = 70_000  # beyond 65,536: token ids no longer fit 16 bits
WIDE = "<w69999>"  # the last piece added: its id is above 65,535


def _records() -> list[tuple[str, object]]:
    records = []
    for index in range(24):
        name = PAIRS[index % len(PAIRS)]
        before_path = FIXTURES / f"{name}_before.go"
        before = before_path.read_text() if before_path.exists() else ""
        repo = f"owner{index % 6}/project{index % 6}"
        pr = PRRecord(
            repo=repo,
            number=index + 1,
            title=f"{name.replace('_', ' ')} {index}",
            body=f"Change {index} {WIDE} <w{index:05d}> of {repo}.",
            files=[FileRecord(path=f"pkg/{name}.go", before=before, after=(FIXTURES / f"{name}_after.go").read_text())],
        )
        records.append((repo, serialize(pr, Plan(intent="FIX", steps=[f"<INTENT:FIX> {name} step {index}"]))))
    return records


def _wide_tokenizer(records, directory: Path) -> Path:
    """A real SentencePiece model with 70,000 user-defined pieces appended (training one that large would
    need a corpus far beyond a test's)."""
    small = train_tokenizer([record.text for _, record in records], directory / "small", vocab_size=700).model_path
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(small).read_bytes())
    for index in range(EXTRA_PIECES):
        piece = proto.pieces.add()
        piece.piece, piece.score = f"<w{index:05d}>", 0.0
        piece.type = sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED
    wide = directory / "wide.model"
    wide.write_bytes(proto.SerializeToString())
    return wide


def test_a_wide_vocabulary_reads_back_and_the_seed_preset_trains_one_step_and_exports(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"  # where the command processes below look too
    records = _records()
    model_path = _wide_tokenizer(records, tmp_path)
    tokenizer = Tokenizer(model_path)
    wide_id = tokenizer.sp.piece_to_id(WIDE)
    assert tokenizer.vocab_size > 65_536 and wide_id > 65_535

    from corpus.models import Snapshot
    from training.models import TokenizerVersion

    snapshot = Snapshot.objects.create(name="snap-wide", status="finished")
    version = TokenizerVersion.objects.create(
        name="tok-wide", snapshot=snapshot, vocab_size=tokenizer.vocab_size, status="finished"
    )
    dataset = DatasetBuild.objects.create(
        name="ds-wide", snapshot=snapshot, tokenizer=version, status="finished", seq_len=1024
    )
    env = command_env(settings.DATA_DIR)
    out = dataset.directory
    build_dataset(records, model_path, tmp_path / "built", processes=1, val_fraction=0.3)
    shutil.copytree(tmp_path / "built", out)
    version.model_path = str(out / "tokenizer.model")
    version.save(update_fields=["model_path"])

    # Read back: 32-bit files, the wide piece decodes as itself, batches carry ids above 65,535.
    meta = load_meta(out)
    assert meta["dtype"] == "uint32"
    ids = np.fromfile(out / "train.bin", dtype=np.uint32)
    assert (ids == wide_id).any() and ids.max() > 65_535
    text = "".join(piece for piece, _ in decode_sample(out, "train", 0))
    assert WIDE in text and text.startswith("<s>")
    batches = TokenBatches(out, "train", 1024, 4, torch.device("cpu"), seed=0)
    assert batches.num_tokens == len(ids)
    x, y, _ = batches.next_batch()
    assert x.shape == y.shape == (4, 1024) and 0 <= int(x.min()) and int(x.max()) < tokenizer.vocab_size

    # One step of the seed preset (1,024-token sequences, the seed's model) from the command line, then export.
    settings_args = {
        "max_steps": "1",
        "batch_size": "1",
        "gradient_accumulation_steps": "1",
        "eval_iters": "1",
        "validation_frequency": "1000",
        "warmup_steps": "1",
        "device": "cpu",
    }
    args = ["train", "ds-wide", "--family", "hrm", "--preset", "seed", "--name", "seed-one-step"]
    for key, value in settings_args.items():
        args += ["--set", f"{key}={value}"]
    manage(*args, env=env, timeout=900)
    run = TrainingRun.objects.get(name="seed-one-step")
    assert run.status == JobStatus.FINISHED and run.step == 1 and run.tokens == 1024
    model = run.config["model"]
    assert (model["block_size"], model["n_embd"], model["n_layer"], model["n_head"]) == (1024, 256, 3, 8)
    assert model["vocab_size"] == tokenizer.vocab_size and run.parameter_count > 20_000_000

    manage("export", "seed-one-step", "--format", "gguf", "--quant", "f16", env=env, timeout=900)
    export = ExportedModel.objects.get(run=run)
    assert export.status == JobStatus.FINISHED and export.step == 1 and export.verified is True, export.message
