"""Training speed and memory of `hrm` and `gpt` (seed preset) beside a Hugging Face GPT-2 of the same size.

    .venv/bin/python bench/train.py                 # CPU, a few minutes on two cores
    .venv/bin/python bench/train.py --device cuda --fp16

Each model is measured in its own child process, so the peak memory of one cannot hide in another's.
A step is forward + backward + fused AdamW on random token ids (speed does not depend on the data)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.devices import (  # noqa: E402 - after the sys.path line above
    autocast_context,
    device_info,
    peak_memory_bytes,
    pick_device,
)
from training.hrm.config import preset  # noqa: E402
from training.hrm.model import build_model  # noqa: E402

MODELS = ("hrm", "gpt", "gpt2")
VOCAB_SIZE = 50_000


def build(name: str, block_size: int) -> tuple[torch.nn.Module, callable]:
    """The model and a function (x, y) -> loss that runs its forward pass."""
    if name in ("hrm", "gpt"):
        config = preset(name, "seed", vocab_size=VOCAB_SIZE).model
        model = build_model(config)
        return model, lambda x, y: model(x, y)[1]
    from transformers import GPT2Config, GPT2LMHeadModel

    seed = preset("gpt", "seed", vocab_size=VOCAB_SIZE).model
    # Untied head and as many blocks as `gpt`: about the same parameter count (≈30 M).
    config = GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=max(block_size, seed.block_size),
        n_embd=seed.n_embd,
        n_layer=seed.n_layer,
        n_head=seed.n_head,
        tie_word_embeddings=False,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(config)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=x).logits
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))

    return model, loss_of


def measure(
    name: str, device: torch.device, batch_size: int, seq_len: int, warmup: int, steps: int, fp16: bool
) -> dict:
    torch.manual_seed(0)
    if name == "gpt2":
        import transformers  # noqa: F401  -- its import weighs ~100 MiB; count it before, not as training memory
    memory_before = peak_memory_bytes(device)
    model, loss_of = build(name, seq_len)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.type in ("cuda", "cpu"))
    x = torch.randint(VOCAB_SIZE, (batch_size, seq_len), device=device)
    y = torch.randint(VOCAB_SIZE, (batch_size, seq_len), device=device)

    def step() -> float:
        with autocast_context(device, fp16):
            loss = loss_of(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)  # reading the loss waits for the device, so the clock sees all the work

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {
        "model": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_per_sec": batch_size * seq_len * steps / seconds,
        "step_ms": 1000 * seconds / steps,
        "peak_memory": peak_memory_bytes(device),
        "memory_before": memory_before,
    }


def print_table(results: list[dict], device: torch.device, args: argparse.Namespace) -> None:
    baseline = next(r for r in results if r["model"] == "gpt2")
    info = device_info(device)
    print(
        f"\ndevice {info['type']} ({info['name']}), torch {info['torch_version']}, "
        f"batch {args.batch_size} x seq {args.seq_len}, {args.steps} timed steps after {args.warmup} warm-up, "
        f"{'mixed precision' if args.fp16 else 'fp32'}"
    )
    memory_kind = "allocated" if device.type == "cuda" else "process RSS"
    header = (
        f"{'model':<6} {'params':>8} {'tokens/s':>10} {'vs GPT-2':>9} {'step ms':>9} "
        f"{'peak MiB':>9} {'training MiB':>13} {'vs GPT-2':>9}"
    )
    print(f"memory: peak {memory_kind}; training = peak minus what the process held before building the model")
    print(header)
    print("-" * len(header))
    for r in results:
        training = r["peak_memory"] - r["memory_before"]
        baseline_training = baseline["peak_memory"] - baseline["memory_before"]
        print(
            f"{r['model']:<6} {r['parameters'] / 1e6:>7.1f}M {r['tokens_per_sec']:>10.0f} "
            f"{r['tokens_per_sec'] / baseline['tokens_per_sec']:>8.2f}x {r['step_ms']:>9.0f} "
            f"{r['peak_memory'] / 2**20:>9.0f} {training / 2**20:>13.0f} {training / baseline_training:>8.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 1 on CPU, 3 on a GPU)")
    parser.add_argument("--steps", type=int, help="timed steps (default: 3 on CPU, 20 on a GPU)")
    parser.add_argument("--fp16", action="store_true", help="bf16/fp16 autocast where the device supports it")
    parser.add_argument("--only", choices=MODELS, help=argparse.SUPPRESS)  # one child's measurement
    args = parser.parse_args()
    device = pick_device(args.device)
    # A CPU step of the 30 M models takes seconds; a GPU step milliseconds, which need more steps to time.
    on_gpu = device.type in ("cuda", "mps")
    args.warmup = args.warmup if args.warmup is not None else (3 if on_gpu else 1)
    args.steps = args.steps if args.steps is not None else (20 if on_gpu else 3)

    if args.only:
        result = measure(args.only, device, args.batch_size, args.seq_len, args.warmup, args.steps, args.fp16)
        print(json.dumps(result))
        return 0

    results = []
    for name in MODELS:
        command = [
            sys.executable,
            __file__,
            "--only",
            name,
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
            "--seq-len",
            str(args.seq_len),
            "--warmup",
            str(args.warmup),
            "--steps",
            str(args.steps),
        ] + (["--fp16"] if args.fp16 else [])
        child = subprocess.run(command, check=False, capture_output=True, text=True)
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return child.returncode
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{name}: {r['tokens_per_sec']:.0f} tokens/s, peak {r['peak_memory'] / 2**20:.0f} MiB", flush=True)
    print_table(results, device, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
