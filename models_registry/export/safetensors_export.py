"""Write a model as a transformers folder: `gpt` loads as LlamaForCausalLM, `hrm` as HrmTextForCausalLM.

The folder holds `model.safetensors` (the transformers-named weights of `hf_state_dict`),
`config.json` (`hf_config` plus the special token ids), `generation_config.json`, and the
tokenizer: `tokenizer.model` (our SentencePiece model, unchanged) with `tokenizer_config.json`.
What transformers needs to load that tokenizer: `sentencepiece` and `protobuf` installed (it converts
`tokenizer.model` into its own BPE tokenizer), `tokenizer_class` LlamaTokenizer, `add_prefix_space`
false (ours has no dummy prefix) and the format tags listed as added tokens, so they stay one token each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from corpus.tags import FORMAT_TAGS
from models_registry.export import (
    ExportInfo,
    Report,
    Source,
    atomic_path,
    file_sha256,
    load_source,
)
from training.hrm.model import LanguageModel, hf_config, hf_state_dict
from training.tokenizer import Tokenizer

# Sampling defaults shared with the playground and the Ollama Modelfile.
TEMPERATURE = 0.8
TOP_K = 50


def model_config(model: LanguageModel, tokenizer: Tokenizer) -> dict[str, Any]:
    return {
        **hf_config(model.config),
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "pad_token_id": tokenizer.pad_id,
    }


def generation_config(tokenizer: Tokenizer) -> dict[str, Any]:
    return {
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "pad_token_id": tokenizer.pad_id,
        "do_sample": True,
        "temperature": TEMPERATURE,
        "top_k": TOP_K,
    }


def tokenizer_config(model: LanguageModel, tokenizer: Tokenizer) -> dict[str, Any]:
    """transformers' description of our SentencePiece tokenizer (see the module docstring)."""
    control = {tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id}
    added = {}
    for text, token_id in sorted(tokenizer.special_ids.items(), key=lambda item: item[1]):
        if token_id < 0 or (token_id not in control and text not in FORMAT_TAGS):
            continue
        added[str(token_id)] = {
            "content": text,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "single_word": False,
            "special": token_id in control,
        }
    return {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,  # training records start with <s>
        "add_eos_token": False,
        "add_prefix_space": False,
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "bos_token": tokenizer.piece(tokenizer.bos_id),
        "eos_token": tokenizer.piece(tokenizer.eos_id),
        "unk_token": tokenizer.piece(tokenizer.unk_id),
        "pad_token": tokenizer.piece(tokenizer.pad_id),
        "model_max_length": model.config.block_size,
        "added_tokens_decoder": added,
    }


def write_safetensors_folder(model: LanguageModel, tokenizer_model_path: Path, folder: Path) -> None:
    tokenizer = Tokenizer(tokenizer_model_path)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(hf_state_dict(model), folder / "model.safetensors", metadata={"format": "pt"})
    files = {
        "config.json": model_config(model, tokenizer),
        "generation_config.json": generation_config(tokenizer),
        "tokenizer_config.json": tokenizer_config(model, tokenizer),
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copyfile(tokenizer_model_path, folder / "tokenizer.model")


def export_safetensors(
    source: Source,
    tokenizer_model_path: Path | str,
    out_folder: Path | str,
    *,
    report: Report | None = None,
    verify: bool = True,
) -> ExportInfo:
    """Export a checkpoint (or an in-memory model with its RunConfig) to a transformers folder, written
    atomically (a temporary folder renamed into place). `ExportInfo.path` is the folder.

    With `verify`, transformers loads the folder and its logits are compared with PyTorch's
    (`verify.verify_safetensors`); the result is in `ExportInfo.verification`."""
    out_folder = Path(out_folder)
    model, _ = load_source(source)
    if report:
        report("writing model.safetensors", 0.1)
    with atomic_path(out_folder) as temporary:
        write_safetensors_folder(model, Path(tokenizer_model_path), temporary)
    info = ExportInfo(
        path=out_folder,
        size=sum(p.stat().st_size for p in out_folder.iterdir() if p.is_file()),
        sha256=file_sha256(out_folder / "model.safetensors"),
        architecture=hf_config(model.config)["architectures"][0],
        parameter_count=model.num_parameters(),
        quant="f32",
    )
    if verify:
        from models_registry.export.verify import verify_safetensors

        if report:
            report("verifying with transformers", 0.6)
        info.verification = verify_safetensors(out_folder, model)
    if report:
        report("done", 1.0)
    return info
