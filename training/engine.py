"""The train loop: batches in, checkpoints and metric reports out, on one device or under torchrun (DDP)."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from corpus.records import SECTION_LABELS
from training.checkpoint_policy import checkpoints_to_remove, is_new_best, should_save
from training.data import TokenBatches, read_meta
from training.devices import (
    allow_tf32,
    autocast_context,
    autocast_dtype,
    cpu_bf16_wanted,
    current_memory_bytes,
    device_info,
    needs_grad_scaler,
    peak_memory_bytes,
    pick_device,
    reset_peak_memory,
)
from training.hrm.config import RunConfig, TrainConfig, preset
from training.hrm.model import build_model
from training.ranks import RankLog

Report = Callable[[str, dict], None]
SampleFn = Callable[[torch.nn.Module, int], dict]

# Validation batches come from their own fixed seed, so every eval scores the same windows.
EVAL_SEED_OFFSET = 7_919


def print_report(kind: str, payload: dict) -> None:
    """The default `report`: one JSON line per event, readable by a person and by a parent process."""
    print(json.dumps({"event": kind, **payload}, default=str), flush=True)


@dataclass
class TrainResult:
    status: str  # "finished" | "stopped"
    step: int
    tokens: int
    final_loss: float | None
    final_val_loss: float | None
    checkpoint_path: Path | None


def learning_rate_at(step: int, train: TrainConfig) -> float:
    """Linear warm-up to `learning_rate`, then cosine decay to `learning_rate * min_lr_ratio` at max_steps."""
    base = train.learning_rate
    if step < train.warmup_steps:
        return base * (step + 1) / train.warmup_steps
    min_lr = base * train.min_lr_ratio
    progress = min(1.0, (step - train.warmup_steps) / max(1, train.max_steps - train.warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base - min_lr)


def section_weights_at(step: int, train: TrainConfig) -> dict[str, float]:
    """Loss weight per section label. The refinement decisions only count after `refinement_warmup` steps,
    once the model writes code worth refining; VALIDATE tags are scaffolding and weigh like `other`."""
    return {
        "other": train.other_loss_weight,
        "plan": train.plan_loss_weight,
        "code": train.code_loss_weight,
        "validate": train.other_loss_weight,
        "refine": train.refinement_loss_weight if step >= train.refinement_warmup else 0.0,
    }


# ---------------------------------------------------------------------------------------------- checkpoints


def checkpoint_path(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step_{step:07d}.pt"


def find_latest_checkpoint(out_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step; half-written temp files are never picked."""
    found = []
    for path in (Path(out_dir) / "checkpoints").glob("step_*.pt"):
        digits = path.stem.removeprefix("step_")
        if digits.isdigit():
            found.append((int(digits), path))
    return max(found)[1] if found else None


def save_checkpoint(path: Path, state: dict[str, Any]) -> int:
    """Write to a temp file beside `path`, flush it to disk, then rename: a crash leaves the old set intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path.stat().st_size


def load_checkpoint(path: Path) -> dict[str, Any]:
    # Only tensors and plain Python values are stored, so the safe loader reads it.
    return torch.load(path, map_location="cpu", weights_only=True)


def _remove_partial_checkpoints(checkpoint_dir: Path) -> None:
    for temp in checkpoint_dir.glob(".step_*.pt.tmp"):
        temp.unlink(missing_ok=True)


def _rng_state(train_batches: TokenBatches) -> dict[str, Any]:
    """Everything random this process draws from, so a resumed run draws the same numbers."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        # This rank's GPU only: a list of every visible GPU's would not restore on a machine with fewer.
        "cuda": torch.cuda.get_rng_state(train_batches.device) if train_batches.device.type == "cuda" else None,
        "data": train_batches.state_dict(),
    }


def _restore_rng_state(state: dict[str, Any], train_batches: TokenBatches) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if isinstance(cuda, list):  # checkpoints before this rank-only state held every visible GPU's
        index = train_batches.device.index or 0
        cuda = cuda[index] if index < len(cuda) else None
    if cuda is not None and train_batches.device.type == "cuda":
        torch.cuda.set_rng_state(cuda, train_batches.device)
    train_batches.load_state_dict(state["data"])


def _resume_from(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    train_batches: TokenBatches,
    ddp: Distributed,
    seed: int,
    report: Report,
) -> None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if state["scaler"] and scaler.is_enabled():
        # A disabled scaler (fp32, bf16) saves {}: resuming such a run with fp16 starts the scale afresh.
        scaler.load_state_dict(state["scaler"])
    if len(state["rng"]) == ddp.world_size:
        _restore_rng_state(state["rng"][ddp.rank], train_batches)
    else:
        # Another world size cannot replay the old streams; fresh ones seeded by step at least avoid repeats.
        train_batches.generator.manual_seed(seed + 1_000_003 * ddp.rank + state["step"])
        report(
            "log",
            {
                "message": f"world size changed from {len(state['rng'])} to {ddp.world_size}: "
                "data order after resume differs from an uninterrupted run"
            },
        )


# ---------------------------------------------------------------------------------------------- distributed


@dataclass
class Distributed:
    """Where this process sits in a torchrun launch; a plain run is rank 0 of 1."""

    enabled: bool = False
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_process_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single-process run."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Distributed(), pick_device(device_name)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name in ("auto", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend)
    return Distributed(True, rank, local_rank, world_size, owns), device


def _any_rank(flag: bool, ddp: Distributed, device: torch.device) -> bool:
    """True on every rank when any rank says True: ranks must stop at the same step or DDP hangs."""
    if not ddp.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _gather_rng_states(train_batches: TokenBatches, ddp: Distributed) -> list[dict[str, Any]]:
    state = _rng_state(train_batches)
    if not ddp.enabled:
        return [state]
    gathered: list[Any] = [None] * ddp.world_size
    dist.all_gather_object(gathered, state)
    return gathered


# ---------------------------------------------------------------------------------------------- the loop


# On a CPU, a cold compile takes one to three minutes and made seed-preset steps faster (bench/train.py --compile,
# tokens per CPU-second: gpt ~1.09x, hrm 1.06-1.16x): worth it for long runs of large models, not for the
# minutes of a tiny-preset run.
CPU_COMPILE_MIN_PARAMETERS = 10_000_000
CPU_COMPILE_MIN_STEPS = 1_000


def compile_wanted(setting: str, device: torch.device, parameters: int = 0, max_steps: int = 0) -> bool:
    """torch.compile where it pays off: "auto" compiles on CUDA, and on a CPU for a long run of a large model."""
    if setting != "auto":
        return setting == "on"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and parameters >= CPU_COMPILE_MIN_PARAMETERS and max_steps >= CPU_COMPILE_MIN_STEPS


def _make_optimizer(model: torch.nn.Module, train: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    groups = model.optim_groups(train.weight_decay, train.planner_lr_multiplier, train.generator_lr_multiplier)
    # Fused AdamW does the whole update in one kernel (one loop on CPU): same maths, fewer launches.
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=train.learning_rate, betas=(train.beta1, train.beta2), fused=fused)


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset_dir: Path, config: RunConfig, device: torch.device) -> dict[str, float]:
    """Token-weighted cross-entropy on `eval_iters` fixed validation batches, overall and per section."""
    t = config.train
    batches = TokenBatches(
        dataset_dir, "val", config.model.block_size, t.batch_size, device, seed=t.seed + EVAL_SEED_OFFSET
    )
    loss_sums = torch.zeros(len(SECTION_LABELS), dtype=torch.float64)
    token_counts = torch.zeros(len(SECTION_LABELS), dtype=torch.float64)
    was_training = model.training
    model.eval()
    for _ in range(t.eval_iters):
        x, y, sections = batches.next_batch()
        with autocast_context(device, t.fp16, cpu_bf16_wanted(model.num_parameters())):
            token_loss = model.token_losses(x, y).reshape(-1)  # in chunks: a batch's logits are never held
        # Padding (target -1) after the last record of a row counts in no section.
        valid = y.reshape(-1) >= 0
        labels, token_loss = sections.reshape(-1)[valid], token_loss[valid]
        loss_sums += torch.bincount(labels, weights=token_loss, minlength=len(SECTION_LABELS)).double().cpu()
        token_counts += torch.bincount(labels, minlength=len(SECTION_LABELS)).double().cpu()
    model.train(was_training)
    val_loss = float(loss_sums.sum() / token_counts.sum())
    result = {"val_loss": val_loss, "perplexity": math.exp(min(val_loss, 50.0))}
    for name, label in SECTION_LABELS.items():
        if token_counts[label] > 0:
            result[f"val_loss_{name}"] = float(loss_sums[label] / token_counts[label])
    return result


@dataclass
class TrainState:
    """What a checkpoint holds and a resumed run continues from: the model, its optimizer, the data
    stream, and the counters (as the HRM reference's TrainState)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    train_batches: TokenBatches
    step: int = 0
    tokens: int = 0
    elapsed_before: float = 0.0  # seconds trained before this process (earlier processes of a resumed run)
    last_loss: float | None = None
    last_val_loss: float | None = None
    best_val_loss: float | None = None
    best_step: int | None = None


@dataclass
class RunContext:
    """What stays fixed while one process trains: where, on what, and where reports and checkpoints go."""

    config: RunConfig
    dataset_dir: Path
    out_dir: Path
    meta: dict[str, Any]
    ddp: Distributed
    device: torch.device
    report: Report
    train_model: torch.nn.Module  # what the step calls: the model, compiled and/or DDP-wrapped
    eval_model: torch.nn.Module  # the model, compiled when asked: never DDP-wrapped
    writer: Any
    tokens_per_step: int
    cpu_bf16: bool = False  # on a CPU with `fp16` on: bf16 autocast (devices.cpu_bf16_wanted), else fp32
    started: float = 0.0  # time.perf_counter() when this process began its steps

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def elapsed(self, state: TrainState) -> float:
        return state.elapsed_before + time.perf_counter() - self.started


@dataclass
class StepResult:
    loss: torch.Tensor  # the step's mean loss, kept on the device until it is read
    section_sums: dict[str, Any]  # per section: the sum of the micro-batches' losses
    section_counts: dict[str, int]  # and how many micro-batches had that section
    lr: float
    grad_norm: torch.Tensor


@dataclass
class LogWindow:
    """Throughput and memory between two metric reports."""

    seconds: float = 0.0
    tokens: int = 0
    memory_peak: int = 0  # this run's peak: the largest memory sample of its log steps (CUDA counts its own)


def init_train_state(config: RunConfig, dataset_dir: Path, ddp: Distributed, device: torch.device) -> TrainState:
    """Fresh weights, optimizer and data stream; the same seed on every rank gives identical initial weights
    (DDP also broadcasts rank 0's)."""
    t = config.train
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)
    model = build_model(config.model).to(device)
    optimizer = _make_optimizer(model, t, device)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, t.fp16))
    block_size = config.model.block_size
    train_batches = TokenBatches(dataset_dir, "train", block_size, t.batch_size, device, t.seed, ddp.rank)
    # Opening the val split now makes a missing or too-small one fail before training, not at the first eval.
    TokenBatches(dataset_dir, "val", block_size, t.batch_size, device, t.seed)
    torch.manual_seed(t.seed + ddp.rank)  # dropout masks differ across ranks
    return TrainState(model, optimizer, scaler, train_batches)


def resume_train_state(state: TrainState, out_dir: Path, ddp: Distributed, seed: int, report: Report) -> Path | None:
    """Continue from the latest checkpoint in `out_dir`, if any: weights, optimizer, RNG streams, counters.

    Under DDP rank 0 chooses and every rank loads that file: ranks resuming at different steps would run
    different step counts and hang in a collective. A rank that cannot read it fails with the reason."""
    latest = find_latest_checkpoint(out_dir)
    if ddp.enabled:
        chosen = [str(latest) if latest is not None else None]
        dist.broadcast_object_list(chosen, src=0)
        latest = Path(chosen[0]) if chosen[0] is not None else None
        if latest is not None and not latest.is_file():
            raise FileNotFoundError(
                f"rank {ddp.rank} cannot read {latest}, the checkpoint rank 0 resumes from: every node needs the "
                "run directory on storage they share (HRGC_DATA_DIR)"
            )
    if latest is None:
        return None
    saved = load_checkpoint(latest)
    _resume_from(saved, state.model, state.optimizer, state.scaler, state.train_batches, ddp, seed, report)
    state.step, state.tokens, state.elapsed_before = saved["step"], saved["tokens"], saved["elapsed"]
    state.last_loss, state.last_val_loss = saved["loss"], saved["val_loss"]
    # Checkpoints written before the best was tracked know only their own validation loss.
    state.best_val_loss = saved.get("best_val_loss", state.last_val_loss)
    state.best_step = saved.get("best_step", state.step if state.last_val_loss is not None else None)
    report("log", {"message": f"resumed from {latest} at step {state.step}"})
    return latest


def train_step(state: TrainState, run: RunContext) -> StepResult:
    """One optimizer step: `gradient_accumulation_steps` micro-batches, clipped, scaled, applied."""
    t = run.config.train
    lr = learning_rate_at(state.step, t)
    for group in state.optimizer.param_groups:
        group["lr"] = lr * group["lr_multiplier"]
    weights = section_weights_at(state.step, t)

    accumulation = t.gradient_accumulation_steps
    step_loss = torch.zeros((), device=run.device)
    section_sums: dict[str, Any] = {}
    section_counts: dict[str, int] = {}
    for micro_step in range(accumulation):
        x, y, sections = state.train_batches.next_batch()
        # Gradients are all-reduced once per step, on the last micro-batch.
        last_micro = micro_step == accumulation - 1
        sync = nullcontext() if (last_micro or not run.ddp.enabled) else run.train_model.no_sync()
        with sync:
            with autocast_context(run.device, t.fp16, run.cpu_bf16):
                _, loss, section_losses = run.train_model(x, y, sections, weights)
            state.scaler.scale(loss / accumulation).backward()
        step_loss += loss.detach() / accumulation
        for name, value in section_losses.items():
            section_sums[name] = section_sums.get(name, 0.0) + value
            section_counts[name] = section_counts.get(name, 0) + 1

    state.scaler.unscale_(state.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(
        state.model.parameters(), t.grad_clip if t.grad_clip > 0 else float("inf")
    )
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    state.tokens += run.tokens_per_step
    return StepResult(step_loss, section_sums, section_counts, lr, grad_norm)


def report_metrics(state: TrainState, run: RunContext, result: StepResult, window: LogWindow) -> None:
    """The step's metrics (loss, per-section losses, rate, memory) to `report` and TensorBoard."""
    state.last_loss = float(result.loss)  # under DDP: rank 0's share of the batch, as nanoGPT reports
    memory_now = current_memory_bytes(run.device)
    window.memory_peak = peak_memory_bytes(run.device, max(window.memory_peak, memory_now))
    metrics = {
        "step": state.step,
        "tokens": state.tokens,
        "elapsed": run.elapsed(state),
        "loss": state.last_loss,
        **{f"loss_{name}": float(total) / result.section_counts[name] for name, total in result.section_sums.items()},
        "lr": result.lr,
        "grad_norm": float(result.grad_norm),
        "tokens_per_sec": window.tokens / window.seconds if window.seconds > 0 else 0.0,
        "memory": window.memory_peak,
        "memory_now": memory_now,
    }
    run.report("metrics", metrics)
    _write_scalars(run.writer, "train", metrics, state.step)
    window.seconds, window.tokens = 0.0, 0


def run_eval(state: TrainState, run: RunContext) -> bool:
    """Measure the validation loss (on rank 0); True on every rank when it is the best so far."""
    new_best = False
    if run.ddp.is_main:
        result = evaluate(run.eval_model, run.dataset_dir, run.config, run.device)
        state.last_val_loss = result["val_loss"]
        new_best = is_new_best(state.last_val_loss, state.best_val_loss)
        if new_best:
            state.best_val_loss, state.best_step = state.last_val_loss, state.step
        run.report("eval", {"step": state.step, "tokens": state.tokens, **result})
        _write_scalars(run.writer, "val", result, state.step)
    return _any_rank(new_best, run.ddp, run.device)


def save(state: TrainState, run: RunContext, step_loss: torch.Tensor | None) -> Path:
    """A checkpoint at the current step: every rank contributes its RNG state; rank 0 writes the file and
    removes the checkpoints the retention policy no longer keeps."""
    rng_states = _gather_rng_states(state.train_batches, run.ddp)
    path = checkpoint_path(run.out_dir, state.step)
    if run.ddp.is_main:
        # The recorder writes out every metric up to this step first: a worker killed once the file exists
        # resumes after this step and never logs those steps again. (Under torchrun the report travels through
        # a pipe and may arrive after the file.)
        run.report("saving", {"step": state.step})
        size = save_checkpoint(
            path,
            {
                "model": state.model.state_dict(),
                "optimizer": state.optimizer.state_dict(),
                "scaler": state.scaler.state_dict(),
                "step": state.step,
                "tokens": state.tokens,
                "elapsed": run.elapsed(state),
                "loss": float(step_loss) if step_loss is not None else state.last_loss,
                "val_loss": state.last_val_loss,
                "best_val_loss": state.best_val_loss,
                "best_step": state.best_step,
                "rng": rng_states,
                "config": run.config.to_dict(),
                "dataset_meta": run.meta,
                "world_size": run.ddp.world_size,
            },
        )
        run.report(
            "checkpoint", {"step": state.step, "path": str(path), "size": size, "best": state.best_step == state.step}
        )
        _remove_superseded(state, run)
        if run.writer is not None:
            run.writer.flush()
    return path


def _remove_superseded(state: TrainState, run: RunContext) -> None:
    saved = {}
    for found in run.checkpoint_dir.glob("step_*.pt"):
        digits = found.stem.removeprefix("step_")
        if digits.isdigit():
            saved[int(digits)] = found
    train = run.config.train
    keep_last = train.keep_last_checkpoints or None  # 0: every checkpoint on the save_steps grid stays
    for old in checkpoints_to_remove(
        list(saved), best_step=state.best_step, save_steps=train.save_steps, keep_last=keep_last
    ):
        saved[old].unlink(missing_ok=True)
        run.report("checkpoint_removed", {"step": old, "path": str(saved[old])})


def _report_setup(run: RunContext, model: torch.nn.Module) -> None:
    config, ddp, t = run.config, run.ddp, run.config.train
    info = device_info(run.device)
    run.report(
        "log",
        {
            "message": f"device {info['type']} ({info['name']}), torch {info['torch_version']}, "
            f"cuda {info['cuda_version']}, hip {info['hip_version']}, world size {ddp.world_size}"
        },
    )
    run.report("log", {"message": f"model {config.model.family}: {model.num_parameters():,} parameters"})
    precision = autocast_dtype(run.device, t.fp16, run.cpu_bf16)
    precision_text = "float32" if precision is None else f"{str(precision).removeprefix('torch.')} autocast"
    run.report("log", {"message": f"precision: {precision_text}"})
    run.report(
        "log",
        {
            "message": f"tokens per step {run.tokens_per_step:,} = batch {t.batch_size} x block "
            f"{config.model.block_size} x accumulation {t.gradient_accumulation_steps} x ranks {ddp.world_size}"
        },
    )


def train(
    config: RunConfig,
    dataset_dir: Path,
    out_dir: Path,
    *,
    report: Report = print_report,
    should_stop: Callable[[], bool] = lambda: False,
    resume: bool = True,
    sample_fn: SampleFn | None = None,
) -> TrainResult:
    """Train `config` on `dataset_dir`, writing checkpoints and TensorBoard events under `out_dir`.

    With `resume`, continues exactly from the latest checkpoint in `out_dir`. `should_stop()` is asked
    after every optimizer step; a stop saves a checkpoint and returns status "stopped"."""
    config.validate()
    t = config.train
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    ddp, device = _init_distributed(t.device)
    allow_tf32(device)
    writer = None
    # Under torchrun every rank keeps a heartbeat and its own log in the run directory (the run page lists them).
    ranks = RankLog(out_dir, ddp.rank, ddp.local_rank, ddp.world_size) if ddp.enabled else None
    outcome = "failed"
    try:
        if not ddp.is_main:
            report = _report_nothing
        if ranks is not None:
            report, should_stop = ranks.wrap_report(report), ranks.wrap_stop(should_stop)
        if t.num_threads > 0:
            torch.set_num_threads(t.num_threads)
        meta = read_meta(dataset_dir)
        if config.model.vocab_size < meta["vocab_size"]:
            raise ValueError(
                f"model vocab_size {config.model.vocab_size} is smaller than the dataset's {meta['vocab_size']}"
            )

        # State: fresh, then the latest checkpoint's when resuming.
        state = init_train_state(config, dataset_dir, ddp, device)
        checkpoint_dir = out_dir / "checkpoints"
        if ddp.is_main:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            _remove_partial_checkpoints(checkpoint_dir)
        latest = resume_train_state(state, out_dir, ddp, t.seed, report) if resume else None

        # The run: the model as the steps call it, where reports go.
        compiled = compile_wanted(t.compile, device, state.model.num_parameters(), t.max_steps)
        eval_model = torch.compile(state.model) if compiled else state.model
        train_model: torch.nn.Module = eval_model
        if ddp.enabled:
            train_model = DistributedDataParallel(
                eval_model, device_ids=[device.index] if device.type == "cuda" else None
            )
        writer = _tensorboard_writer(out_dir, state.step) if ddp.is_main else None
        tokens_per_step = t.batch_size * config.model.block_size * t.gradient_accumulation_steps * ddp.world_size
        run = RunContext(
            config, dataset_dir, out_dir, meta, ddp, device, report, train_model, eval_model, writer, tokens_per_step
        )
        run.cpu_bf16 = cpu_bf16_wanted(state.model.num_parameters())
        _report_setup(run, state.model)

        # The loop: step, then report, evaluate, sample, save and stop as the config says.
        run.started = time.perf_counter()
        saved_path = latest
        saved_step = state.step if latest is not None else -1
        window = LogWindow()
        reset_peak_memory(device)
        step_loss: torch.Tensor | None = None
        status = "finished"
        state.model.train()
        while state.step < t.max_steps:
            step_start = time.perf_counter()
            result = train_step(state, run)
            step_loss = result.loss
            window.tokens += tokens_per_step
            logging_now = state.step % t.logging_steps == 0 or state.step == t.max_steps
            if logging_now and device.type == "cuda":
                torch.cuda.synchronize(device)  # count queued GPU work inside this window's time
            window.seconds += time.perf_counter() - step_start

            if logging_now:
                report_metrics(state, run, result, window)
            new_best = False
            if state.step % t.eval_steps == 0 or state.step == t.max_steps:
                new_best = run_eval(state, run)
            if sample_fn is not None and ddp.is_main and state.step % t.validation_frequency == 0:
                report("samples", {"step": state.step, **_sample(sample_fn, state.model, state.step, device)})
            if should_save(state.step, save_steps=t.save_steps, max_steps=t.max_steps, new_best=new_best):
                saved_path, saved_step = save(state, run, step_loss), state.step
            if _any_rank(should_stop(), ddp, device) and state.step < t.max_steps:
                status = "stopped"
                break

        if step_loss is not None:
            state.last_loss = float(step_loss)
        if saved_step != state.step:
            saved_path = save(state, run, step_loss)
        report("log", {"message": f"{status} at step {state.step} after {state.tokens:,} tokens"})
        outcome = status
        return TrainResult(status, state.step, state.tokens, state.last_loss, state.last_val_loss, saved_path)
    finally:
        if ranks is not None:
            ranks.finish(outcome)
        if writer is not None:
            writer.close()
        if ddp.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()


def _report_nothing(kind: str, payload: dict) -> None:
    """Ranks other than 0 stay quiet: one voice per run."""


def _sample(sample_fn: SampleFn, model: torch.nn.Module, step: int, device: torch.device) -> dict:
    """Sampling must not move the training RNG, or a run with samples would diverge from one without."""
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        result = sample_fn(model, step)
    model.train(was_training)
    return result


def _tensorboard_writer(out_dir: Path, step: int):
    from torch.utils.tensorboard import (
        SummaryWriter,  # imports tensorboard; only rank 0 pays for it
    )

    # purge_step hides events an interrupted run wrote after the checkpoint it resumes from.
    return SummaryWriter(log_dir=str(out_dir / "tb"), purge_step=step if step > 0 else None)


def _write_scalars(writer: Any, prefix: str, values: dict[str, Any], step: int) -> None:
    if writer is None:
        return
    for key, value in values.items():
        if key != "step" and isinstance(value, int | float):
            writer.add_scalar(f"{prefix}/{key}", value, step)


# ---------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """`python -m training.engine` or `torchrun --nproc_per_node N -m training.engine`: JSON lines on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True, help="dataset directory with meta.json")
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints/, tb/)")
    parser.add_argument("--family", default="hrm", help="hrm | gpt")
    parser.add_argument("--preset", default="tiny", help="seed | tiny")
    parser.add_argument("--config", type=Path, help="a RunConfig.to_dict() JSON file; replaces family/preset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--no-resume", action="store_true", help="start fresh even if checkpoints exist")
    parser.add_argument("--stop-file", type=Path, help="stop cooperatively (with a checkpoint) once this exists")
    parser.add_argument("--samples", action="store_true", help="generate samples every validation_frequency steps")
    args = parser.parse_args(argv)

    if args.config:
        config = RunConfig.from_dict(json.loads(args.config.read_text(encoding="utf-8")))
    else:
        config = preset(args.family, args.preset, vocab_size=read_meta(args.dataset)["vocab_size"])
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set wants KEY=VALUE, got {item!r}")
        overrides[key] = value
    config = config.with_overrides(overrides)
    stop_file = args.stop_file
    is_main = int(os.environ.get("RANK", "0")) == 0
    sample_fn = None
    if args.samples and is_main:
        from training.sampling import make_sample_fn  # the Go parser and generation: only when asked

        try:
            sample_fn = make_sample_fn(args.dataset, config.train)
        except (OSError, ValueError) as exc:  # sampling is a bonus; training goes on without it
            print_report("log", {"message": f"no sample generations: {exc}"})
    result = train(
        config,
        args.dataset,
        args.out,
        resume=not args.no_resume,
        should_stop=(lambda: stop_file.exists()) if stop_file else (lambda: False),
        sample_fn=sample_fn,
    )
    if is_main:
        print_report("result", {**result.__dict__, "checkpoint_path": str(result.checkpoint_path)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
