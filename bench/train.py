"""Training speed and memory of `hrm` and `gpt` (seed preset) beside transformers' own implementations of the
same architectures built from the same config (the peers): HrmTextForCausalLM and LlamaForCausalLM.

    .venv/bin/python bench/train.py                       # CPU, fp32, batch 8 x 256: tens of minutes on two cores
    .venv/bin/python bench/train.py --rounds 1 --steps 2  # a quicker, noisier look
    .venv/bin/python bench/train.py --compile             # adds ours under torch.compile
    .venv/bin/python bench/train.py --device cuda --fp16  # bf16 autocast on a GPU; adds MFU
    .venv/bin/python bench/train.py --fp16                # bf16 autocast on a CPU (fast where it has AMX)

Each measurement runs in its own child process, so the peak memory of one cannot hide in another's, and the
children run interleaved over `--rounds` rounds (the order alternating) so a machine busier in one minute
than the next does not favour one model; the table gives each figure's median over rounds.

A step is forward + backward + fused AdamW on random token ids (speed does not depend on the data), each
model on its own training path: ours the section-weighted loss with the seed's section weights (computed in
chunks without full logits), the peers their `labels=` loss (full logits, as transformers trains).

Speed: tokens/s of wall-clock time, and tokens per CPU-second (the process's user + system time over all its
threads), which a machine busy with other work disturbs much less; on a quiet machine the two ratios agree.

Memory on CPU: the child's peak resident set (ru_maxrss) minus its resident set after importing torch and
transformers, before building anything; so "training memory" holds weights, gradients, AdamW state and the
step's activations. On CUDA: torch.cuda.max_memory_allocated, which starts at zero.

Allocator (CPU): glibc's malloc serves an allocation of 32 MB or more (its largest dynamic mmap threshold)
with a fresh mmap and unmaps it when freed, so a tensor that size allocated anew each step (the peers' 410 MB
of logits and their gradient) is page-faulted and zeroed by the kernel again each step. `--malloc-cache` starts every child, ours and the peers alike, with glibc tunables
that keep freed memory in the heap (as jemalloc or tcmalloc preloaded would): the ratios then show what is
left once allocation costs nothing.

MFU (CUDA only): training FLOPs per token (estimate_flops_per_token in training/hrm/model.py, written out
per matmul) x tokens/s / the GPU's dense bf16 peak (a table below, or --peak-tflops)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpus.records import SECTION_LABELS  # noqa: E402 - after the sys.path line above
from training.devices import autocast_context, device_info, pick_device  # noqa: E402
from training.engine import section_weights_at  # noqa: E402
from training.hrm.config import preset  # noqa: E402
from training.hrm.model import build_model, estimate_flops_per_token, hf_config  # noqa: E402

KEYS = ("tokens_per_sec", "tokens_per_cpu_sec", "training_memory")
PEERS = {"hrm": "HrmTextForCausalLM", "gpt": "LlamaForCausalLM"}
VOCAB_SIZE = 50_000
# Dense bf16 tensor-core peaks (TFLOPS, no sparsity) by a substring of torch.cuda.get_device_name().
# glibc malloc tunables read at process start: every allocation from the heap (no mmap), and nothing trimmed.
MALLOC_CACHE_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(2**34),
    "MALLOC_TRIM_THRESHOLD_": str(2**34),
    "MALLOC_TOP_PAD_": str(2**29),
}
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0, "MI300": 1307.0}


def build(name: str, compiled: bool):
    """(model, parameter count, loss function of (x, y, sections)) for `hrm`, `gpt` or a peer's name."""
    family = next(f for f, peer in PEERS.items() if name in (f, peer))
    seed = preset(family, "seed", vocab_size=VOCAB_SIZE)
    if name == family:
        model = build_model(seed.model)
        weights = section_weights_at(seed.train.refinement_warmup, seed.train)  # every section weighted
        forward = torch.compile(model) if compiled else model
        return model, lambda x, y, sections: forward(x, y, sections, weights)[1]
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    settings = dict(hf_config(seed.model))
    settings.pop("architectures")
    config = CONFIG_MAPPING[settings.pop("model_type")](**settings)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    assert type(model).__name__ == name
    return model, lambda x, y, sections: model(input_ids=x, labels=y).loss


def measure(args: argparse.Namespace, device: torch.device) -> dict:
    import transformers  # noqa: F401 - every child imports it before its baseline, so each baseline is alike

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    memory_before = _rss_now() if device.type == "cpu" else 0
    name = args.only.removesuffix("+compile")
    model, loss_of = build(name, compiled=args.only.endswith("+compile"))
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.type in ("cuda", "cpu"))
    x = torch.randint(VOCAB_SIZE, (args.batch_size, args.seq_len), device=device)
    y = torch.randint(VOCAB_SIZE, (args.batch_size, args.seq_len), device=device)
    sections = torch.randint(len(SECTION_LABELS), (args.batch_size, args.seq_len), device=device)

    def step() -> float:
        with autocast_context(device, args.fp16, cpu_bf16=True):
            loss = loss_of(x, y, sections)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)  # reading the loss waits for the device, so the clock sees all the work

    warmup_start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    warmup_seconds = time.perf_counter() - warmup_start
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    return {
        "model": args.only,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_per_sec": args.batch_size * args.seq_len * args.steps / seconds,
        "tokens_per_cpu_sec": args.batch_size * args.seq_len * args.steps / cpu_seconds,
        "warmup_seconds": warmup_seconds,
        "training_memory": peak - memory_before,
    }


def _rss_now() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAK_TFLOPS.items() if key in name), None)


def print_table(runs: dict[str, list[dict]], device: torch.device, args: argparse.Namespace) -> None:
    info = device_info(device)
    print(
        f"\ndevice {info['type']} ({info['name']}, {args.threads or info.get('threads', '-')} threads), torch {info['torch_version']}, "
        f"batch {args.batch_size} x seq {args.seq_len}, {'bf16/fp16 autocast' if args.fp16 else 'fp32'}, "
        f"median of {args.rounds} round(s) of {args.steps} timed steps after {args.warmup} warm-up"
    )
    memory_kind = "peak allocated" if device.type == "cuda" else "peak RSS minus RSS after imports"
    if args.malloc_cache:
        print("allocator: glibc malloc keeping freed memory (--malloc-cache), for ours and the peers alike")
    print(f"training memory: {memory_kind}; tokens/CPU-s: tokens per second of this process's CPU time, all")
    print("threads together (steadier than tokens/s on a machine that other work keeps busy); warm-up s: the untimed")
    print(
        "first steps, which under torch.compile are mostly the compile (less when Inductor's cache already holds it)\n"
    )
    peak = peak_flops(device, args.peak_tflops)
    header = "| model | params | tokens/s | vs peer | tokens/CPU-s | vs peer | training MiB | vs peer | warm-up s |" + (
        " MFU |" if peak else ""
    )
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    median = {name: {key: statistics.median(r[key] for r in results) for key in KEYS} for name, results in runs.items()}
    for name, results in runs.items():
        family = next(f for f, peer in PEERS.items() if name.removesuffix("+compile") in (f, peer))
        peer = median.get(PEERS[family])
        m = median[name]
        ratio = {key: f"{m[key] / peer[key]:.2f}x" if peer else "-" for key in KEYS}
        row = (
            f"| {name} | {results[0]['parameters'] / 1e6:.1f}M | {m['tokens_per_sec']:.0f} | {ratio['tokens_per_sec']} "
            f"| {m['tokens_per_cpu_sec']:.0f} | {ratio['tokens_per_cpu_sec']} "
            f"| {m['training_memory'] / 2**20:.0f} | {ratio['training_memory']} "
            f"| {statistics.median(r['warmup_seconds'] for r in results):.0f} |"
        )
        if peak:
            config = preset(family, "seed", vocab_size=VOCAB_SIZE).model
            flops = estimate_flops_per_token(config, args.seq_len)
            row += f" {100 * flops * m['tokens_per_sec'] / peak:.1f}% |"
        print(row)
    if peak:
        print(f"\nMFU against {peak / 1e12:.0f} TFLOPS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 1 on CPU, 3 on a GPU)")
    parser.add_argument("--steps", type=int, help="timed steps (default: 3 on CPU, 20 on a GPU)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table gives medians")
    parser.add_argument(
        "--fp16", action="store_true", help="bf16/fp16 autocast where the device supports it (a CPU: bf16)"
    )
    parser.add_argument("--compile", action="store_true", help="also measure ours under torch.compile")
    parser.add_argument("--threads", type=int, help="CPU threads per child (default: torch's, one per core)")
    parser.add_argument("--models", default="hrm,gpt", help="families to measure, each beside its peer")
    parser.add_argument(
        "--malloc-cache", action="store_true", help="every child with glibc malloc keeping freed memory (see above)"
    )
    parser.add_argument("--peak-tflops", type=float, help="the device's peak for MFU (default: from its name)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one child's measurement
    args = parser.parse_args()
    device = pick_device(args.device)
    # A CPU step of the 30 M models takes seconds; a GPU step milliseconds, which need more steps to time.
    on_gpu = device.type in ("cuda", "mps")
    args.warmup = args.warmup if args.warmup is not None else (3 if on_gpu else 1)
    args.steps = args.steps if args.steps is not None else (20 if on_gpu else 3)
    if args.compile:
        args.warmup = max(args.warmup, 2)  # the first compiled steps compile (forward, then backward)

    if args.only:
        print(json.dumps(measure(args, device)))
        return 0

    names = []
    for family in args.models.split(","):
        names += [family, PEERS[family]] + ([f"{family}+compile"] if args.compile else [])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            command = [sys.executable, __file__, "--only", name, "--device", args.device]
            for option in ("batch_size", "seq_len", "warmup", "steps", "threads"):
                if getattr(args, option) is not None:
                    command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
            command += ["--fp16"] if args.fp16 else []
            environment = {**os.environ, **MALLOC_CACHE_ENV} if args.malloc_cache else None
            child = subprocess.run(command, check=False, capture_output=True, text=True, env=environment)
            if child.returncode != 0:
                print(child.stderr, file=sys.stderr)
                return child.returncode
            result = json.loads(child.stdout.strip().splitlines()[-1])
            runs[name].append(result)
            print(
                f"round {round_index + 1}: {name}: {result['tokens_per_sec']:.0f} tokens/s, "
                f"{result['tokens_per_cpu_sec']:.0f} tokens/CPU-s, "
                f"training memory {result['training_memory'] / 2**20:.0f} MiB "
                f"(warm-up {result['warmup_seconds']:.0f} s)",
                flush=True,
            )
    print_table(runs, device, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
