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
