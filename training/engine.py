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
    autocast_context,
    current_memory_bytes,
    device_info,
    needs_grad_scaler,
    peak_memory_bytes,
    pick_device,
    reset_peak_memory,
)
from training.hrm.config import RunConfig, TrainConfig, preset

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
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
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
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
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
        with autocast_context(device, t.fp16):
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
    from training.hrm.model import (
        build_model,  # the model module is heavy; import when training
    )

    config.validate()
    t = config.train
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    ddp, device = _init_distributed(t.device)
    writer = None
    try:
        if not ddp.is_main:
            report = _report_nothing
        if t.num_threads > 0:
            torch.set_num_threads(t.num_threads)
        meta = read_meta(dataset_dir)
        if config.model.vocab_size < meta["vocab_size"]:
            raise ValueError(
                f"model vocab_size {config.model.vocab_size} is smaller than the dataset's {meta['vocab_size']}"
            )

        # Same seed on every rank: identical initial weights (DDP also broadcasts rank 0's).
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

        step, tokens, elapsed_before = 0, 0, 0.0
        last_loss: float | None = None
        last_val_loss: float | None = None
        best_val_loss: float | None = None
        best_step: int | None = None
        checkpoint_dir = out_dir / "checkpoints"
        if ddp.is_main:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            _remove_partial_checkpoints(checkpoint_dir)
        latest = find_latest_checkpoint(out_dir) if resume else None
        if latest is not None:
            state = load_checkpoint(latest)
            _resume_from(state, model, optimizer, scaler, train_batches, ddp, t.seed, report)
            step, tokens, elapsed_before = state["step"], state["tokens"], state["elapsed"]
            last_loss, last_val_loss = state["loss"], state["val_loss"]
            # Checkpoints written before the best was tracked know only their own validation loss.
            best_val_loss = state.get("best_val_loss", last_val_loss)
            best_step = state.get("best_step", step if last_val_loss is not None else None)
            report("log", {"message": f"resumed from {latest} at step {step}"})

        eval_model = torch.compile(model) if t.compile else model
        train_model: torch.nn.Module = eval_model
        if ddp.enabled:
            train_model = DistributedDataParallel(
                eval_model, device_ids=[device.index] if device.type == "cuda" else None
            )
        writer = _tensorboard_writer(out_dir, step) if ddp.is_main else None

        accumulation = t.gradient_accumulation_steps
        tokens_per_step = t.batch_size * block_size * accumulation * ddp.world_size
        info = device_info(device)
        report(
            "log",
            {
                "message": f"device {info['type']} ({info['name']}), torch {info['torch_version']}, "
                f"cuda {info['cuda_version']}, hip {info['hip_version']}, world size {ddp.world_size}"
            },
        )
        report("log", {"message": f"model {config.model.family}: {model.num_parameters():,} parameters"})
        report(
            "log",
            {
                "message": f"tokens per step {tokens_per_step:,} = batch {t.batch_size} x block {block_size}"
                f" x accumulation {accumulation} x ranks {ddp.world_size}"
            },
        )

        def save(at_step: int) -> Path:
            """Every rank contributes its RNG state; rank 0 writes the file."""
            rng_states = _gather_rng_states(train_batches, ddp)
            path = checkpoint_path(out_dir, at_step)
            if ddp.is_main:
                size = save_checkpoint(
                    path,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict(),
                        "step": at_step,
                        "tokens": tokens,
                        "elapsed": elapsed_before + time.perf_counter() - start,
                        "loss": float(step_loss) if step_loss is not None else last_loss,
                        "val_loss": last_val_loss,
                        "best_val_loss": best_val_loss,
                        "best_step": best_step,
                        "rng": rng_states,
                        "config": config.to_dict(),
                        "dataset_meta": meta,
                        "world_size": ddp.world_size,
                    },
                )
                report(
                    "checkpoint",
                    {
                        "step": at_step,
                        "path": str(path),
                        "size": size,
                        "best": best_step == at_step,
                    },
                )
                _remove_superseded(at_step)
                if writer is not None:
                    writer.flush()
            return path

        def _remove_superseded(at_step: int) -> None:
            saved = {}
            for found in checkpoint_dir.glob("step_*.pt"):
                digits = found.stem.removeprefix("step_")
                if digits.isdigit():
                    saved[int(digits)] = found
            for old in checkpoints_to_remove(list(saved), best_step=best_step, save_steps=t.save_steps):
                saved[old].unlink(missing_ok=True)
                report("checkpoint_removed", {"step": old, "path": str(saved[old])})

        def run_eval() -> bool:
            """Measure the validation loss; True on every rank when it is the best so far."""
            nonlocal last_val_loss, best_val_loss, best_step
            new_best = False
            if ddp.is_main:
                result = evaluate(eval_model, dataset_dir, config, device)
                last_val_loss = result["val_loss"]
                new_best = is_new_best(last_val_loss, best_val_loss)
                if new_best:
                    best_val_loss, best_step = last_val_loss, step
                report("eval", {"step": step, "tokens": tokens, **result})
                _write_scalars(writer, "val", result, step)
            return _any_rank(new_best, ddp, device)

        start = time.perf_counter()
        saved_path = latest
        saved_step = step if latest is not None else -1
        window_time, window_tokens = 0.0, 0
        reset_peak_memory(device)
        memory_peak = 0  # this run's peak: the largest memory sample of its log steps (CUDA counts its own)
        step_loss: torch.Tensor | None = None  # this step's mean loss, kept on the device until it is read
        status = "finished"
        model.train()
        while step < t.max_steps:
            step_start = time.perf_counter()
            lr = learning_rate_at(step, t)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_multiplier"]
            weights = section_weights_at(step, t)

            step_loss = torch.zeros((), device=device)
            section_sums: dict[str, Any] = {}
            section_counts: dict[str, int] = {}
            for micro_step in range(accumulation):
                x, y, sections = train_batches.next_batch()
                # Gradients are all-reduced once per step, on the last micro-batch.
                last_micro = micro_step == accumulation - 1
                sync = nullcontext() if (last_micro or not ddp.enabled) else train_model.no_sync()
                with sync:
                    with autocast_context(device, t.fp16):
                        _, loss, section_losses = train_model(x, y, sections, weights)
                    scaler.scale(loss / accumulation).backward()
                step_loss += loss.detach() / accumulation
                for name, value in section_losses.items():
                    section_sums[name] = section_sums.get(name, 0.0) + value
                    section_counts[name] = section_counts.get(name, 0) + 1

            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), t.grad_clip if t.grad_clip > 0 else float("inf")
            )
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += tokens_per_step
            window_tokens += tokens_per_step

            logging_now = step % t.logging_steps == 0 or step == t.max_steps
            if logging_now and device.type == "cuda":
                torch.cuda.synchronize(device)  # count queued GPU work inside this window's time
            window_time += time.perf_counter() - step_start

            if logging_now:
                last_loss = float(step_loss)  # under DDP: rank 0's share of the batch, as nanoGPT reports
                memory_now = current_memory_bytes(device)
                memory_peak = peak_memory_bytes(device, max(memory_peak, memory_now))
                metrics = {
                    "step": step,
                    "tokens": tokens,
                    "elapsed": elapsed_before + time.perf_counter() - start,
                    "loss": last_loss,
                    **{f"loss_{name}": float(total) / section_counts[name] for name, total in section_sums.items()},
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "tokens_per_sec": window_tokens / window_time if window_time > 0 else 0.0,
                    "memory": memory_peak,
                    "memory_now": memory_now,
                }
                report("metrics", metrics)
                _write_scalars(writer, "train", metrics, step)
                window_time, window_tokens = 0.0, 0
            new_best = False
            if step % t.eval_steps == 0 or step == t.max_steps:
                new_best = run_eval()
            if sample_fn is not None and ddp.is_main and step % t.validation_frequency == 0:
                report("samples", {"step": step, **_sample(sample_fn, model, step, device)})
            if should_save(step, save_steps=t.save_steps, max_steps=t.max_steps, new_best=new_best):
                saved_path, saved_step = save(step), step
            if _any_rank(should_stop(), ddp, device) and step < t.max_steps:
                status = "stopped"
                break

        if step_loss is not None:
            last_loss = float(step_loss)
        if saved_step != step:
            saved_path = save(step)
        report("log", {"message": f"{status} at step {step} after {tokens:,} tokens"})
        return TrainResult(status, step, tokens, last_loss, last_val_loss, saved_path)
    finally:
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
    result = train(
        config,
        args.dataset,
        args.out,
        resume=not args.no_resume,
        should_stop=(lambda: stop_file.exists()) if stop_file else (lambda: False),
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print_report("result", {**result.__dict__, "checkpoint_path": str(result.checkpoint_path)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
