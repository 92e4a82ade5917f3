"""Training runs as the dashboard acts on them: create, stop, resume, mark dead, delete, compare, chart data."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
from functools import lru_cache

import numpy as np
import torch
from django.conf import settings
from django.db.models import ProtectedError
from django.utils import timezone

from hrgc_site.errors import ActionRefused
from hrgc_site.jobs import enqueue_on_commit, mark_dead
from hrgc_site.jobs import forget_queued_task as remove_queued_task
from hrgc_site.models import JobStatus
from training.data import read_meta
from training.hrm.config import ModelConfig, RunConfig, preset
from training.hrm.model import build_model
from training.models import DatasetBuild, MetricPoint, TrainingRun

log = logging.getLogger(__name__)
TASK = "training.tasks.runs.train_run"
OVERVIEW_POINTS = 1500  # per metric: what the charts draw of a long run (W&B's figure)
RESUMABLE = (JobStatus.STOPPED, JobStatus.DEAD, JobStatus.FAILED)
# Far above the 20-30 M models this tool is for; a run above it would not fit any one machine's memory.
MAX_PARAMETERS = 2_000_000_000
# The settings a model's size follows, for the parameter ceiling's error.
SIZE_SETTINGS = ("n_embd", "n_layer", "intermediate_size", "tie_embeddings")


class RunActionError(ActionRefused):
    """An action the run's state does not allow (delete while running, resume a finished run, ...)."""


# ---------------------------------------------------------------------------------------------- configs


def dataset_vocab_size(dataset: DatasetBuild) -> int:
    return int(read_meta(dataset.directory)["vocab_size"])


def base_config(family: str, preset_name: str, dataset: DatasetBuild | None) -> RunConfig:
    """The preset's config, sized to the dataset's vocabulary (the seed's 50K without a dataset)."""
    vocab = dataset_vocab_size(dataset) if dataset is not None else 50_000
    return preset(family, preset_name, vocab_size=vocab)


@lru_cache(maxsize=256)
def _parameter_count(model_json: str) -> int:
    """Built on the meta device (no memory), and never deeper than two layers: every layer of a stack is the
    same block, so the count is linear in n_layer. The run preview, which any viewer can call, thus costs
    the same for 256 layers as for 3."""
    config = json.loads(model_json)

    def built(n_layer: int) -> int:
        with torch.device("meta"):
            return int(build_model(ModelConfig(**{**config, "n_layer": n_layer})).num_parameters())

    n_layer = int(config["n_layer"])
    if n_layer <= 2:
        return built(n_layer)
    one, two = built(1), built(2)
    return one + (n_layer - 1) * (two - one)


def parameter_count(config: RunConfig) -> int:
    return _parameter_count(json.dumps(config.to_dict()["model"], sort_keys=True))


def dataset_problem(config: RunConfig, dataset: DatasetBuild) -> str | None:
    """Why `config` cannot train on `dataset` (a window longer than a split), or None.

    Each split must hold one window of block_size + 1 tokens plus one start offset (training.data.TokenBatches)."""
    meta = read_meta(dataset.directory)
    splits = meta.get("splits", {})
    block_size = config.model.block_size
    for split in ("train", "val"):
        tokens = int(splits.get(split, {}).get("tokens", 0))
        if meta.get("layout") == "rows":
            # Rows of seq_len + 1 tokens, each starting at a record: a window needs that many tokens of rows.
            stream = int(splits.get(split, {}).get("sequences", 0)) * (int(meta["seq_len"]) + 1)
            if stream < block_size + 1:
                return (
                    f"block_size {block_size:,} does not fit dataset {dataset.name}: split {split!r} has "
                    f"{tokens:,} tokens in {stream:,} tokens of sequences, fewer than one window of "
                    f"{block_size + 1:,}; at most {max(0, stream - 1):,} fits"
                )
            continue
        if tokens < block_size + 2:
            return (
                f"block_size {block_size:,} does not fit dataset {dataset.name}: split {split!r} has {tokens:,} "
                f"tokens, fewer than one window of {block_size + 1:,}; at most {max(0, tokens - 2):,} fits"
            )
    return None


def size_problem(config: RunConfig) -> str | None:
    """Why `config` is too large to train (above MAX_PARAMETERS), or None."""
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        return (
            f"this model would have {count:,} parameters, above the ceiling of {MAX_PARAMETERS:,}: "
            "make n_embd, n_layer or intermediate_size smaller"
        )
    return None


def check_runnable(config: RunConfig, dataset: DatasetBuild) -> None:
    """Refuse (ActionRefused) a config that validates but cannot run on this dataset or any one machine."""
    problem = dataset_problem(config, dataset) or size_problem(config)
    if problem:
        raise ActionRefused(problem)


def flatten_config(config: dict) -> dict[str, object]:
    """{"model": {...}, "train": {...}} → {"model.n_embd": 256, ...}."""
    return {f"{section}.{key}": value for section, values in config.items() for key, value in values.items()}


def config_diff(config: dict, base: dict) -> dict[str, tuple[object, object]]:
    """Settings whose value differs from `base`: key → (value, base value)."""
    flat, flat_base = flatten_config(config), flatten_config(base)
    return {key: (value, flat_base.get(key)) for key, value in flat.items() if flat_base.get(key) != value}


def preset_of(run: TrainingRun) -> dict:
    """The preset the run started from, at the run's vocabulary size."""
    vocab = run.config.get("model", {}).get("vocab_size", 50_000)
    return preset(run.family, run.preset, vocab_size=vocab).to_dict()


def differing_hyperparameters(runs: list[TrainingRun]) -> list[tuple[str, list[object]]]:
    """Only the settings (plus dataset, family, preset) on which the runs disagree, each with one value per run."""
    # model.family repeats the run's family: listed once, as "family".
    rows = [
        {
            "dataset": run.dataset.name,
            "family": run.family,
            "preset": run.preset,
            **{key: value for key, value in flatten_config(run.config).items() if key != "model.family"},
        }
        for run in runs
    ]
    keys = list(dict.fromkeys(key for row in rows for key in row))
    table = []
    for key in keys:
        values = [row.get(key) for row in rows]
        if any(value != values[0] for value in values[1:]):
            table.append((key, values))
    return table


# ---------------------------------------------------------------------------------------------- actions


def create_run(
    *,
    dataset: DatasetBuild,
    family: str,
    preset_name: str,
    name: str,
    overrides: dict[str, object],
    user=None,
    parent: TrainingRun | None = None,
    queue: bool = True,
) -> TrainingRun:
    """A queued run with its full config; enqueued on the training cluster unless `queue` is False."""
    config = base_config(family, preset_name, dataset).with_overrides(
        {key: str(value) for key, value in overrides.items()}
    )
    check_runnable(config, dataset)
    t = config.train
    run = TrainingRun.objects.create(
        name=name,
        dataset=dataset,
        family=family,
        preset=preset_name,
        config=config.to_dict(),
        overrides=dict(overrides),
        parent=parent,
        max_steps=t.max_steps,
        parameter_count=parameter_count(config),
        tokens_per_step=t.batch_size
        * config.model.block_size
        * t.gradient_accumulation_steps
        * t.nproc_per_node
        * t.nnodes,
        created_by=user if user is not None and user.is_authenticated else None,
        message="queued until a worker takes it",
    )
    # A fresh run starts fresh: files left by an older run with the same id and name must not be resumed.
    shutil.rmtree(run.directory, ignore_errors=True)
    if queue:
        enqueue_on_commit(run, TASK, cluster=settings.TRAINING_CLUSTER)
    return run


def request_stop(run: TrainingRun) -> str:
    """Queued: stopped at once. Running: ask the loop to stop; it checkpoints within a step."""
    if TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.STOPPED, message="stopped before a worker took it", finished_at=timezone.now()
    ):
        remove_queued_task(run)
        return JobStatus.STOPPED
    if TrainingRun.objects.filter(pk=run.pk, status__in=(JobStatus.RUNNING, JobStatus.WAITING)).update(
        status=JobStatus.STOPPING, cancel_requested=True, message="stop requested: saving a checkpoint"
    ):
        return JobStatus.STOPPING
    raise RunActionError(f"run {run.name} is {run.status}; only queued or running runs can be stopped")


def resume_run(run: TrainingRun) -> TrainingRun:
    """Queue a stopped, failed or dead run again; the task continues from its latest checkpoint."""
    run.refresh_from_db()
    if run.looks_dead:
        mark_dead(run)
        run.refresh_from_db()
    if run.status not in RESUMABLE:
        raise RunActionError(f"run {run.name} is {run.status}; only stopped, failed or dead runs can be resumed")
    remove_queued_task(run)
    updated = TrainingRun.objects.filter(pk=run.pk, status__in=RESUMABLE).update(
        status=JobStatus.QUEUED,
        cancel_requested=False,
        finished_at=None,
        resumes=run.resumes + 1,
        message="queued until a worker takes it (resumes from the last checkpoint)",
    )
    if not updated:
        raise RunActionError(f"run {run.name} changed state meanwhile")
    run.refresh_from_db()
    enqueue_on_commit(run, TASK, cluster=settings.TRAINING_CLUSTER)
    return run


def mark_dead_runs() -> int:
    """Mark every run that looks dead; called when run pages are viewed and when a training task starts."""
    candidates = TrainingRun.objects.filter(status__in=(JobStatus.RUNNING, JobStatus.WAITING, JobStatus.STOPPING))
    return sum(mark_dead(run) for run in candidates if run.looks_dead)


def delete_run(run: TrainingRun) -> None:
    """Remove the run, its rows and its files; refused while a worker may still be writing them."""
    run.refresh_from_db()
    if run.is_active and not run.looks_dead:
        raise RunActionError(f"run {run.name} is {run.status}: stop it before deleting it")
    exports = run.exports.count()
    if exports:
        raise RunActionError(
            f"run {run.name} has {exports} exported model(s) that name it as their lineage: "
            "delete them on the Models page first"
        )
    remove_queued_task(run)
    directory = run.directory
    try:
        run.delete()
    except ProtectedError:  # an export was started after the check above
        raise RunActionError(f"run {run.name} now has an exported model; delete it on the Models page first") from None
    shutil.rmtree(directory, ignore_errors=True)


def clone_initial(run: TrainingRun) -> dict:
    """Initial values of a new-run form that repeats `run`: same dataset, family, preset and every setting."""
    base = flatten_config(run.config)
    name = f"{run.name}-clone"
    suffix = 2
    while TrainingRun.objects.filter(name=name).exists():
        name, suffix = f"{run.name}-clone{suffix}", suffix + 1
    return {
        "dataset": run.dataset_id,
        "family": run.family,
        "preset": run.preset,
        "name": name,
        "parent": run.pk,
        **{key.replace(".", "__"): value for key, value in base.items()},
    }


# ---------------------------------------------------------------------------------------------- chart data


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices to draw of a series: all of them when few, else per bucket its min, its max and its last point,
    so extremes and the latest value survive while the total stays at most `max_points`."""
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 3)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = []
    for start, end in itertools.pairwise(edges):
        if end <= start:
            continue
        chunk = y[start:end]
        keep.extend(
            (
                start + int(np.nanargmin(chunk)) if not np.isnan(chunk).all() else start,
                start + int(np.nanargmax(chunk)) if not np.isnan(chunk).all() else start,
                end - 1,
            )
        )
    return np.unique(np.asarray(keep, dtype=np.int64))


def metric_series(run: TrainingRun, after_id: int = 0, max_points: int = OVERVIEW_POINTS) -> dict:
    """Chart data: per kind and metric, x (step, tokens, elapsed) and y arrays of the points after `after_id`,
    downsampled per metric to `max_points`; `last_id` is what the next poll passes back."""
    rows = list(
        MetricPoint.objects.filter(run=run, id__gt=after_id)
        .order_by("kind", "step")
        .values_list("id", "kind", "step", "tokens", "elapsed", "values")
    )
    series: dict[str, dict[str, dict[str, list]]] = {}
    last_id = after_id
    downsampled = False
    by_kind: dict[str, list] = {}
    for row in rows:
        by_kind.setdefault(row[1], []).append(row)
        last_id = max(last_id, row[0])
    for kind, kind_rows in by_kind.items():
        steps = np.array([r[2] for r in kind_rows], dtype=np.int64)
        tokens = np.array([r[3] for r in kind_rows], dtype=np.int64)
        elapsed = np.array([r[4] for r in kind_rows], dtype=np.float64)
        names = list(
            dict.fromkeys(
                key
                for r in kind_rows
                for key, value in r[5].items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            )
        )
        series[kind] = {}
        for name in names:
            y = np.array([_number(r[5].get(name)) for r in kind_rows], dtype=np.float64)
            present = ~np.isnan(y)
            idx = np.flatnonzero(present)
            chosen = idx[downsample(steps[idx], y[idx], max_points)]
            downsampled = downsampled or len(chosen) < len(idx)
            series[kind][name] = {
                "step": steps[chosen].tolist(),
                "tokens": tokens[chosen].tolist(),
                "elapsed": np.round(elapsed[chosen], 2).tolist(),
                "y": y[chosen].tolist(),
            }
    return {"last_id": last_id, "series": series, "downsampled": downsampled, "points": len(rows)}


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)
