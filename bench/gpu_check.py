"""Every GPU path of training, run once, for a session lent a GPU for a few minutes.

    python3 bench/gpu_check.py --out $OUT          # on the GPU machine: about 6 to 8 minutes on one GPU
    .venv/bin/python bench/gpu_check.py --device cpu --quick --out /tmp/gpu-check   # the same checks, small, here

No GPU has run these paths in this project's tests (CI has none), and a lent GPU comes for minutes, so this
script runs them all in one call and keeps going past a failed check: each check's outcome, time and figures
go to `gpu_check.json` under --out and to a table at the end. It needs no Django, no database and no
network: the dataset is random token ids written here (a step's speed does not depend on the data).

The checks, in order:
- environment: torch, CUDA/HIP, the device and whether it has bf16.
- loss: the chunked linear + cross-entropy against the plain one in fp32, bf16 and fp16 autocast on the
  device (loss and both gradients).
- kv_cache: cached generation's logits against a full forward, both families.
- train_bf16: the train loop at the seed preset (hrm) with `fp16` on (bf16 autocast on a GPU that has it),
  compile `auto` and fused AdamW; then stopped and resumed from its checkpoint.
- train_fp16: the same loop for `gpt` with bf16 reported missing, so autocast takes fp16 with a GradScaler
  (the path of GPUs older than Ampere).
- ddp: `torchrun --nproc_per_node <GPUs>` of the engine (nccl on a GPU, gloo on a CPU), as the worker
  launches a run.
- bench: bench/train.py (ours beside transformers' peers, MFU on CUDA), bf16, with and without compile;
  a peer whose class this transformers lacks is left out (HrmTextForCausalLM came in transformers 5.x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpus.records import SECTION_LABELS  # noqa: E402 - after the sys.path line above
from training.devices import device_info, pick_device  # noqa: E402
from training.engine import train  # noqa: E402
from training.hrm.config import preset  # noqa: E402
from training.hrm.loss import chunked_section_weighted_loss, section_weighted_loss  # noqa: E402
from training.hrm.model import KVCache, build_model  # noqa: E402

SEED_WEIGHTS = {"plan": 0.4, "code": 0.4, "refine": 0.2, "other": 0.1, "validate": 0.1}


class CheckFailed(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).norm() / expected.float().norm().clamp_min(1e-30))


def write_random_dataset(directory: Path, vocab_size: int, tokens: int) -> Path:
    """A dataset directory as the train loop reads it: random ids in records of 200-1000 tokens, random labels."""
    rng = np.random.default_rng(0)
    bos, eos = vocab_size - 3, vocab_size - 2
    directory.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, count in (("train", tokens), ("val", max(tokens // 10, 20_000))):
        ids = rng.integers(0, vocab_size - 3, count, dtype=np.uint32)
        starts = np.cumsum(rng.integers(200, 1000, count // 200))
        starts = starts[starts < count - 1]
        ids[starts], ids[starts - 1] = bos, eos
        ids[0] = bos
        labels = rng.integers(0, len(SECTION_LABELS), count, dtype=np.uint8)
        ids.astype(np.uint16 if vocab_size <= 65_535 else np.uint32).tofile(directory / f"{split}.bin")
        labels.tofile(directory / f"{split}.labels.bin")
        splits[split] = {"tokens": count, "records": len(starts) + 1}
    meta = {
        "vocab_size": vocab_size,
        "dtype": "uint16" if vocab_size <= 65_535 else "uint32",
        "seq_len": 1024,
        "bos_id": bos,
        "eos_id": eos,
        "pad_id": vocab_size - 1,
        "section_labels": SECTION_LABELS,
        "splits": splits,
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


# ------------------------------------------------------------------------------------------------ the checks


def check_environment(ctx: Context) -> dict:
    info = device_info(ctx.device)
    figures = {key: info[key] for key in ("type", "name", "torch_version", "cuda_version", "hip_version")}
    if ctx.device.type == "cuda":
        figures["capability"] = ".".join(map(str, torch.cuda.get_device_capability(ctx.device)))
        figures["bf16"] = torch.cuda.is_bf16_supported()
        figures["gpus"] = torch.cuda.device_count()
        figures["memory_gib"] = round(info["memory_total"] / 2**30, 1)
    return figures


def check_loss(ctx: Context) -> dict:
    """The chunked loss under each autocast against the plain loss in fp32, at the seed head's shape (C 256,
    V 50,000) on 2,048 rows. Not against the plain loss under the same autocast: in fp16 that one flushes
    small gradient rows to zero (it counts on the GradScaler), so it is the less exact of the two."""
    rows, vocab = (512, 4096) if ctx.quick else (2048, 50_000)
    generator = torch.Generator(device="cpu").manual_seed(0)
    hidden0 = torch.randn(rows, 256, generator=generator).to(ctx.device)
    weight0 = (torch.randn(vocab, 256, generator=generator) * 0.02).to(ctx.device)
    targets = torch.randint(0, vocab, (rows,), generator=generator).to(ctx.device)
    targets[:7] = -1
    sections = torch.randint(0, len(SECTION_LABELS), (rows,), generator=generator).to(ctx.device)

    def loss_and_grads(chunked: bool, dtype: torch.dtype | None) -> list[torch.Tensor]:
        hidden, weight = hidden0.clone().requires_grad_(), weight0.clone().requires_grad_()
        with torch.autocast(ctx.device.type, dtype=dtype) if dtype else nullcontext():
            if chunked:
                loss, _ = chunked_section_weighted_loss(hidden, weight, targets, sections, SEED_WEIGHTS)
            else:
                loss, _ = section_weighted_loss(hidden @ weight.t(), targets, sections, SEED_WEIGHTS)
        return [loss.detach(), *torch.autograd.grad(loss, (hidden, weight))]

    reference = loss_and_grads(chunked=False, dtype=None)
    figures = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        if ctx.device.type == "cpu" and dtype is torch.float16:
            continue  # CPU autocast is bf16 only in this project
        got = loss_and_grads(chunked=True, dtype=dtype)
        errors = [relative_error(g, r) for g, r in zip(got, reference, strict=True)]
        plain = [relative_error(g, r) for g, r in zip(loss_and_grads(False, dtype), reference, strict=True)]
        figures[name] = {
            "loss": float(got[0]),
            "chunked_errors": [f"{e:.1e}" for e in errors],  # loss, hidden gradient, weight gradient
            "plain_errors": [f"{e:.1e}" for e in plain],
        }
        tolerance = 1e-4 if dtype is None else 2e-2
        expect(all(np.isfinite(e) and e < tolerance for e in errors), f"{name}: errors {errors} over {tolerance}")
        expect(all(g.dtype == torch.float32 for g in got[1:]), f"{name}: gradients not float32")
    return figures


def check_kv_cache(ctx: Context) -> dict:
    figures = {}
    for family in ("hrm", "gpt"):
        config = preset(family, "tiny" if ctx.quick else "seed", vocab_size=4096).model
        torch.manual_seed(0)
        model = build_model(config).to(ctx.device).eval()
        ids = torch.randint(0, 4096, (1, 96), device=ctx.device)
        with torch.no_grad():
            expected = model(ids, all_logits=True)[0][0]
            cache = KVCache(config.block_size)
            got = [model.lm_head(model.hidden_states(ids[:, :40], cache))[0]]
            got += [model.lm_head(model.hidden_states(ids[:, i : i + 1], cache))[0] for i in range(40, 96)]
        error = float((torch.cat(got) - expected).abs().max())
        figures[family] = {"max_abs_error": f"{error:.1e}"}
        expect(error < 2e-3, f"{family}: cached logits differ from the full forward by {error}")
    return figures


def _train_once(ctx: Context, family: str, out: Path, steps: int, extra: dict[str, str]) -> tuple[dict, list]:
    settings = {
        "max_steps": str(steps),
        "save_steps": str(max(1, steps // 2)),
        "eval_steps": str(max(1, steps // 2)),
        "logging_steps": str(max(1, steps // 4)),
        "eval_iters": "2",
        "warmup_steps": "5",
        "device": ctx.device.type,
        "fp16": "true",
        "compile": "auto",
        **extra,
    }
    if ctx.quick:
        settings.update(batch_size="2", block_size="64", gradient_accumulation_steps="1")
    config = preset(family, "tiny" if ctx.quick else "seed", vocab_size=ctx.vocab_size).with_overrides(settings)
    events: list[tuple[str, dict]] = []
    result = train(config, ctx.dataset, out, report=lambda kind, payload: events.append((kind, payload)))
    return result.__dict__, events


def _train_and_resume(ctx: Context, family: str, extra: dict[str, str]) -> dict:
    steps = 8 if ctx.quick else 40
    out = ctx.scratch / f"train-{family}-{'-'.join(extra.values()) or 'default'}"
    first, events = _train_once(ctx, family, out, steps, extra)
    expect(first["status"] == "finished" and first["step"] == steps, f"first part ended {first}")
    metrics = [payload for kind, payload in events if kind == "metrics"]
    logs = [payload["message"] for kind, payload in events if kind == "log"]
    expect(all(np.isfinite(m["loss"]) for m in metrics), "a non-finite loss")
    resumed, resumed_events = _train_once(ctx, family, out, steps + steps // 2, extra)
    resumed_steps = [payload["step"] for kind, payload in resumed_events if kind == "metrics"]
    expect(resumed["status"] == "finished", f"resumed part ended {resumed}")
    expect(resumed_steps and min(resumed_steps) > steps, f"the resumed run started over: steps {resumed_steps}")
    return {
        "precision": next((m for m in logs if m.startswith("precision")), "?"),
        "tokens_per_sec_last_window": round(metrics[-1]["tokens_per_sec"]),
        "memory_mib": round(metrics[-1]["memory"] / 2**20),
        "loss_first_last": [round(metrics[0]["loss"], 3), round(metrics[-1]["loss"], 3)],
        "val_loss": resumed["final_val_loss"],
        "resumed_at_step": min(resumed_steps),
    }


def check_train_bf16(ctx: Context) -> dict:
    return _train_and_resume(ctx, "hrm", {})


def check_train_fp16(ctx: Context) -> dict:
    if ctx.device.type != "cuda":
        return {"skipped": "fp16 with a GradScaler is a CUDA path"}
    with mock.patch("torch.cuda.is_bf16_supported", return_value=False):
        figures = _train_and_resume(ctx, "gpt", {"compile": "off"})
    expect("float16" in figures["precision"], f"expected fp16 autocast, got {figures['precision']}")
    return figures


def check_ddp(ctx: Context) -> dict:
    processes = torch.cuda.device_count() if ctx.device.type == "cuda" else 2
    out = ctx.scratch / "ddp"
    steps = 6 if ctx.quick else 20
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)),
        *("-m", "training.engine", "--dataset", str(ctx.dataset), "--out", str(out), "--family", "gpt"),
        *("--preset", "tiny" if ctx.quick else "seed"),
    ]
    for key, value in {
        "max_steps": steps,
        "save_steps": steps,
        "eval_steps": steps,
        "logging_steps": 2,
        "eval_iters": 1,
        "device": ctx.device.type,
        "compile": "off",
        "num_threads": 1,
        **({"batch_size": 2, "block_size": 64, "gradient_accumulation_steps": 1} if ctx.quick else {}),
    }.items():
        command += ["--set", f"{key}={value}"]
    child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=ctx.seconds_left(), check=False)
    lines = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    results = [line for line in lines if line.get("event") == "result"]
    expect(child.returncode == 0, f"torchrun exited {child.returncode}: {child.stderr[-2000:]}")
    expect(results and results[-1]["step"] == steps, f"no result at step {steps}: {child.stdout[-1000:]}")
    setup = [line["message"] for line in lines if "world size" in line.get("message", "")]
    expect(setup and f"world size {processes}" in setup[0], f"not a run of {processes} ranks: {setup}")
    return {"processes": processes, "setup": setup[0], "loss": results[-1]["final_loss"]}


def check_bench(ctx: Context) -> dict:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    families = [
        family for family, model_type in (("hrm", "hrm_text"), ("gpt", "llama")) if model_type in CONFIG_MAPPING
    ]
    command = [sys.executable, str(ROOT / "bench" / "train.py"), "--device", ctx.device.type, "--fp16"]
    if ctx.quick:  # one family, no compile: the smoke run checks that the bench runs, not its figures
        command += ["--models", families[-1], "--rounds", "1", "--steps", "1", "--warmup", "1"]
        command += ["--batch-size", "2", "--seq-len", "64"]
    else:
        command += ["--models", ",".join(families), "--rounds", "1", "--compile", "--steps", "10"]
    child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=ctx.seconds_left(), check=False)
    print(child.stdout, flush=True)
    expect(child.returncode == 0, f"bench/train.py exited {child.returncode}: {child.stderr[-2000:]}")
    table = [line for line in child.stdout.splitlines() if line.startswith("|") or line.startswith("MFU")]
    return {"families": families, "table": table}


CHECKS: dict[str, Callable[[Context], dict]] = {
    "environment": check_environment,
    "loss": check_loss,
    "kv_cache": check_kv_cache,
    "train_bf16": check_train_bf16,
    "train_fp16": check_train_fp16,
    "ddp": check_ddp,
    "bench": check_bench,
}


class Context:
    def __init__(self, device: torch.device, quick: bool, scratch: Path, deadline: float):
        self.device, self.quick, self.scratch, self.deadline = device, quick, scratch, deadline
        self.vocab_size = 4096 if quick else 50_000
        self.dataset = write_random_dataset(scratch / "dataset", self.vocab_size, 200_000 if quick else 2_000_000)

    def seconds_left(self) -> float:
        return max(1.0, self.deadline - time.monotonic())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) | cpu | auto")
    parser.add_argument("--quick", action="store_true", help="small shapes and the tiny preset (a CPU smoke run)")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for gpu_check.json")
    parser.add_argument("--only", help="comma-separated checks to run (default: all)")
    parser.add_argument("--minutes", type=float, default=7.0, help="skip the checks not started by then")
    args = parser.parse_args()
    device = pick_device(args.device)
    names = args.only.split(",") if args.only else list(CHECKS)
    unknown = set(names) - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks {sorted(unknown)}; choose from {list(CHECKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        ctx = Context(device, args.quick, Path(scratch), time.monotonic() + 60 * args.minutes)
        for name in names:
            if time.monotonic() > ctx.deadline:
                report[name] = {"outcome": "not run (out of time)"}
                continue
            start = time.monotonic()
            try:
                figures = CHECKS[name](ctx)
                outcome = "skipped" if "skipped" in figures else "passed"
            except Exception as exc:  # one check's failure must not cost the others their turn
                figures, outcome = (
                    {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()},
                    "failed",
                )
            report[name] = {"outcome": outcome, "seconds": round(time.monotonic() - start, 1), **figures}
            print(
                f"{name}: {outcome} in {report[name]['seconds']} s {json.dumps(figures, default=str)[:1500]}",
                flush=True,
            )
            (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    print("\n| check | outcome | seconds |\n| --- | --- | --- |")
    for name, entry in report.items():
        print(f"| {name} | {entry['outcome']} | {entry.get('seconds', '-')} |")
    return 0 if all(entry["outcome"] in ("passed", "skipped") for entry in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
