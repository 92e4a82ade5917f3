"""`manage.py train_tokenizer` and `manage.py build_dataset`: foreground, queued, and their clear errors."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django_q.models import OrmQ

from hrgc_site.models import JobStatus
from tests.training.data_fixtures import make_snapshot
from training.dataset import load_meta
from training.models import DatasetBuild, TokenizerVersion
from training.tokenizer import Tokenizer

# The commands run the job the way the worker does (run_job), which manages its own connections.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def snapshot(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return make_snapshot(tmp_path, name="snap-cli")


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_train_tokenizer_in_the_foreground_then_build_datasets_by_every_reference(snapshot):
    out = run("train_tokenizer", "snap-cli", "--vocab-size", "400")
    tokenizer = TokenizerVersion.objects.get()
    assert tokenizer.name == "snap-cli-400" and tokenizer.status == JobStatus.FINISHED
    assert f"tokenizer snap-cli-400 (id {tokenizer.pk}): 400 pieces" in out and tokenizer.model_path in out
    assert Tokenizer(tokenizer.model_path).vocab_size == 400
    run("train_tokenizer", "snap-cli", "--vocab-size", "420", "--name", "second")
    second = TokenizerVersion.objects.get(name="second")

    out = run("build_dataset", "snap-cli", "latest", "--processes", "2")
    dataset = DatasetBuild.objects.get()
    assert dataset.tokenizer == second and dataset.processes == 2 and dataset.status == JobStatus.FINISHED
    meta = load_meta(Path(dataset.path))
    assert f"{meta['splits']['train']['sequences']:,} train" in out and dataset.path in out
    # Six small repositories, none holding a window of tokens: the latest pull request validates.
    assert meta["split_method"] == "merge time" and meta["splits"]["val"]["prs"] == 1
    assert "validation split by merge time" in out
    by_name = DatasetBuild.objects.get(pk=_built("snap-cli", "snap-cli-400", "--processes", "1"))
    assert by_name.tokenizer == tokenizer and by_name.name == "snap-cli-snap-cli-400"
    by_id = DatasetBuild.objects.get(pk=_built("snap-cli", str(tokenizer.pk), "--processes", "1", "--name", "ds-id"))
    assert by_id.tokenizer == tokenizer
    # Two processes write the same files as one.
    same = _built("snap-cli", str(second.pk), "--processes", "1", "--name", "ds-one-process")
    one = DatasetBuild.objects.get(pk=same)
    for part in ("train.bin", "val.bin", "train.labels.bin", "val.labels.bin"):
        assert np.array_equal(
            np.fromfile(Path(one.path) / part, np.uint8), np.fromfile(Path(dataset.path) / part, np.uint8)
        )


def _built(*args) -> int:
    run("build_dataset", *args)
    return DatasetBuild.objects.latest("created_at").pk


def test_too_large_vocabulary_is_a_clear_command_error(snapshot):
    with pytest.raises(CommandError) as error:
        run("train_tokenizer", "snap-cli", "--vocab-size", "50000")
    tokenizer = TokenizerVersion.objects.get()
    assert tokenizer.status == JobStatus.FAILED
    assert str(error.value) == (
        f"tokenizer snap-cli-50000 failed: vocabulary size 50000 is larger than this corpus supports; the largest "
        f"size that works is {tokenizer.suggested_vocab_size} — retry with --vocab-size {tokenizer.suggested_vocab_size}"
    )


def test_unknown_names_are_clear_command_errors(snapshot):
    with pytest.raises(CommandError, match=r"no snapshot named 'nope' \(snapshots: snap-cli\)"):
        run("train_tokenizer", "nope", "--vocab-size", "400")
    with pytest.raises(CommandError, match="there is no finished tokenizer yet"):
        run("build_dataset", "snap-cli", "latest")
    with pytest.raises(CommandError, match="no tokenizer with id or name 'missing'"):
        run("build_dataset", "snap-cli", "missing")
    with pytest.raises(CommandError, match="vocab_size: Ensure this value is greater than or equal to 300"):
        run("train_tokenizer", "snap-cli", "--vocab-size", "10")
    snapshot.status = JobStatus.RUNNING
    snapshot.save()
    with pytest.raises(CommandError, match="snapshot snap-cli is running; only a finished snapshot can be used"):
        run("train_tokenizer", "snap-cli", "--vocab-size", "400")
    assert not TokenizerVersion.objects.exists() and not DatasetBuild.objects.exists()


def test_enqueue_queues_for_a_worker(snapshot):
    out = run("train_tokenizer", "snap-cli", "--vocab-size", "400", "--enqueue", "--name", "queued-tok")
    tokenizer = TokenizerVersion.objects.get()
    assert f"queued tokenizer queued-tok (id {tokenizer.pk})" in out and tokenizer.status == JobStatus.QUEUED
    tasks = {task.task_id(): task for task in OrmQ.objects.all()}
    assert tasks[tokenizer.task_id].func() == "training.tasks.tokenizers.train_tokenizer_task"
    with pytest.raises(CommandError, match="tokenizer queued-tok is queued, not finished"):
        run("build_dataset", "snap-cli", "queued-tok")
