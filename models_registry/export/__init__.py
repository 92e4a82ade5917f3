"""What every export shares: the model to export (from a checkpoint or in memory), atomic writes, the result record.

The exporters live beside this module: `gguf_export` (llama.cpp / Ollama), `safetensors_export`
(transformers), `modelfile` (Ollama) and `verify` (reload and compare logits). None imports Django.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.hrm.config import RunConfig
from training.hrm.model import LanguageModel, build_model

QUANTS = ("f32", "f16", "q8_0")

Report = Callable[[str, float | None], None]
# A checkpoint file written by the train loop, or a model in memory with its run configuration.
Source = Path | str | tuple[LanguageModel, RunConfig]


@dataclass
class ExportInfo:
    path: Path  # the GGUF file, or the safetensors folder
    size: int  # bytes (a folder: all its files)
    sha256: str  # of the GGUF file, or of the folder's model.safetensors
    architecture: str  # llama | hrm_text (GGUF), LlamaForCausalLM | HrmTextForCausalLM (safetensors)
    parameter_count: int
    quant: str  # f32 | f16 | q8_0
    # Tensors written at a wider type than asked (Q8_0 needs rows divisible by 32): name -> type written.
    fallbacks: dict[str, str] = field(default_factory=dict)
    verification: dict[str, Any] | None = None  # verify.verify_gguf / verify_safetensors result


def load_source(source: Source) -> tuple[LanguageModel, RunConfig]:
    """The model (in eval mode, on the CPU, float32) and its run configuration."""
    if isinstance(source, tuple):
        model, run_config = source
    else:
        # The train loop stores only tensors and plain values, so the safe loader reads it.
        checkpoint = torch.load(Path(source), map_location="cpu", weights_only=True)
        run_config = RunConfig.from_dict(checkpoint["config"])
        model = build_model(run_config.model)
        model.load_state_dict(_plain_state_dict(checkpoint["model"]))
    return model.float().cpu().eval(), run_config


def _plain_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # A model saved from inside torch.compile or DDP carries a wrapper prefix on every name.
    prefixes = ("_orig_mod.", "module.")
    plain = {}
    for name, tensor in state.items():
        while name.startswith(prefixes):
            name = name.split(".", 1)[1]
        plain[name] = tensor
    return plain


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` (file or folder) that becomes `final` only if the block succeeds.

    A failure or a kill leaves `final` as it was (absent, or the previous export): a download never
    serves half a model."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.partial-{os.getpid()}")
    _remove(temporary)
    try:
        yield temporary
        if temporary.is_file():
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        if final.is_dir() and temporary.is_dir():
            # os.replace cannot swap a non-empty folder: move the old one aside first.
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(temporary, final)
            _remove(old)
        else:
            os.replace(temporary, final)
    finally:
        _remove(temporary)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
