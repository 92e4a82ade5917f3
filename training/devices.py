"""Which device trains, what it is, which mixed precision it gets, and how much memory a run holds and peaked at."""

from __future__ import annotations

import functools
import resource
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA (PyTorch's ROCm build also answers through torch.cuda), then MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but torch.cuda.is_available() is False")
    if device.type == "mps" and not _mps_available():
        raise ValueError("MPS was asked for but this PyTorch build or machine has no MPS")
    return device


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def device_info(device: torch.device) -> dict[str, Any]:
    """A plain description for logs and the run page: type, name, total memory, CUDA/HIP version."""
    info: dict[str, Any] = {
        "type": device.type,
        "name": "cpu",
        "memory_total": None,
        "cuda_version": torch.version.cuda,
        "hip_version": getattr(torch.version, "hip", None),
        "torch_version": torch.__version__,
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update(name=props.name, memory_total=props.total_memory)
    elif device.type == "mps":
        info["name"] = "Apple MPS"
    else:
        info.update(name=_cpu_name(), threads=torch.get_num_threads())
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


@functools.cache
def cpu_has_amx_bf16() -> bool:
    """Whether this CPU has AMX tiles for bf16 (Intel Sapphire Rapids and later), from /proc/cpuinfo's flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


# On one AMX CPU a seed-preset step (30 M parameters) ran 1.2-1.3x faster in bf16 autocast than in fp32, a
# `tiny` one (1 M) 0.7x: the casts cost more than small matmuls save.
CPU_BF16_MIN_PARAMETERS = 10_000_000


def cpu_bf16_wanted(parameters: int) -> bool:
    """Whether a CPU run of a model this large with `fp16` on trains in bf16: where the CPU has AMX."""
    return parameters >= CPU_BF16_MIN_PARAMETERS and cpu_has_amx_bf16()


def autocast_dtype(device: torch.device, fp16: bool, cpu_bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype a run gets, or None for plain fp32.

    CUDA: bf16 where the card has it in hardware (Ampere and later; emulated bf16 on a V100 or T4 is slow),
    else fp16 (which then needs a GradScaler). CPU: fp32
    unless `cpu_bf16` (the engine passes cpu_bf16_wanted), since CPU bf16 autocast is slower than
    fp32 on CPUs without AMX. MPS: fp32, because fp16 there would need a gradient scaler PyTorch
    does not promise."""
    if not fp16:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if device.type == "cpu" and cpu_bf16:
        return torch.bfloat16
    return None


def allow_tf32(device: torch.device) -> None:
    """fp32 matmuls on a CUDA GPU in TF32 (tensor cores, 10-bit mantissa), as nanoGPT trains: several times
    faster on Ampere and later, and what the `tiny` preset (no mixed precision) and evaluation run in there."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast_context(device: torch.device, fp16: bool, cpu_bf16: bool = False) -> AbstractContextManager:
    dtype = autocast_dtype(device, fp16, cpu_bf16)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def needs_grad_scaler(device: torch.device, fp16: bool) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
    return autocast_dtype(device, fp16) == torch.float16


def reset_peak_memory(device: torch.device) -> None:
    """Start a run's peak afresh: a worker process trains many runs, and CUDA's counter spans them all."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def current_memory_bytes(device: torch.device) -> int:
    """CUDA: memory tensors hold now. MPS: what the driver holds. CPU: this process's resident set size now."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    return _rss_bytes()


def _rss_bytes() -> int:
    try:
        import psutil  # installed with pgserver; the fallbacks keep the engine usable without it

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        # Lifetime peak, the best left: Linux reports kilobytes, macOS bytes.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def peak_memory_bytes(device: torch.device, sampled_peak: int | None = None) -> int:
    """The run's peak: CUDA's own counter (reset by reset_peak_memory at the run's start); elsewhere the
    largest of the samples the run took (`sampled_peak`, the max of current_memory_bytes at each log step),
    or the current figure without samples.

    Not ru_maxrss: that is the worker process's lifetime peak, the same for every run it ever trained."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(sampled_peak) if sampled_peak is not None else current_memory_bytes(device)
