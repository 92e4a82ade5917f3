"""Which device trains, what it is, which mixed precision it gets, and how much memory a run peaked at."""

from __future__ import annotations

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


def autocast_dtype(device: torch.device, fp16: bool, cpu_bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype a run gets, or None for plain fp32.

    CUDA: bf16 where the card supports it, else fp16 (which then needs a GradScaler). CPU: fp32
    unless bf16 is asked for explicitly, since CPU bf16 autocast is slower than fp32 on most
    CPUs. MPS: fp32, because fp16 there would need a gradient scaler PyTorch does not promise."""
    if not fp16:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16:
        return torch.bfloat16
    return None


def autocast_context(device: torch.device, fp16: bool, cpu_bf16: bool = False) -> AbstractContextManager:
    dtype = autocast_dtype(device, fp16, cpu_bf16)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def needs_grad_scaler(device: torch.device, fp16: bool) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
    return autocast_dtype(device, fp16) == torch.float16


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA: the most memory tensors held. Elsewhere: this process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)
