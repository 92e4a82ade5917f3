"""Rows for tests that need a lineage (snapshot → tokenizer → dataset → run) without running it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings


def make_lineage(name: str = "t1"):
    from corpus.models import Snapshot
    from training.models import DatasetBuild, TokenizerVersion, TrainingRun

    snapshot = Snapshot.objects.create(name=f"snap-{name}", status="finished")
    tokenizer = TokenizerVersion.objects.create(
        name=f"tok-{name}", snapshot=snapshot, status="finished", vocab_size=500
    )
    dataset = DatasetBuild.objects.create(
        name=f"data-{name}", snapshot=snapshot, tokenizer=tokenizer, status="finished"
    )
    run = TrainingRun.objects.create(
        name=f"run-{name}", dataset=dataset, family="gpt", preset="tiny", status="finished"
    )
    return run


def make_export_with_file(run, content: bytes, name: str = "model.gguf"):
    from models_registry.models import ExportedModel

    export = ExportedModel.objects.create(run=run, step=10, format="gguf", quant="q8_0", status="finished")
    folder = Path(settings.DATA_DIR) / "exports" / f"{export.pk}-test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    export.path = str(folder)
    export.files = [{"name": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}]
    export.size = len(content)
    export.save()
    return export


def add_curve(run, *, train: list[tuple[int, float]], evals: list[tuple[int, float]], checkpoints=()):
    """Metric points (and checkpoint rows at the given steps, with the eval's val loss) as a finished run has them."""
    from training.models import Checkpoint, MetricPoint

    MetricPoint.objects.bulk_create(
        [MetricPoint(run=run, kind="train", step=step, values={"loss": loss}) for step, loss in train]
        + [MetricPoint(run=run, kind="eval", step=step, values={"val_loss": loss}) for step, loss in evals]
    )
    val = dict(evals)
    for step in checkpoints:
        Checkpoint.objects.create(run=run, step=step, path=f"/nowhere/step_{step:07d}.pt", val_loss=val.get(step))
    last_train, last_eval = train[-1] if train else (0, None), evals[-1] if evals else (0, None)
    run.step = max(last_train[0], last_eval[0])
    run.last_loss = last_train[1]
    run.last_val_loss = last_eval[1]
    run.best_val_loss = min((loss for _, loss in evals), default=None)
    run.save()
    return run


# The run: best validation loss 6.92 at step 250, then rising to 7.62 while training falls to 1.38; the last
# logged training loss is a spike (6.72) on a curve that sits near 1.4.
OVERFIT_TRAIN = [(step, 8.0 - 6.6 * step / 2000) for step in range(10, 2000, 10)] + [(2000, 6.72)]
OVERFIT_EVALS = [(50, 7.9), (250, 6.92), (500, 7.0), (1000, 7.2), (1500, 7.4), (2000, 7.62)]
