"""Write a model as a GGUF file that stock llama.cpp runs: family `gpt` as `llama`, family `hrm` as `hrm_text`.

Everything is taken from the transformers-named weights and config (`hf_state_dict`, `hf_config`)
and follows llama.cpp's own converter (`convert_hf_to_gguf.py`: `LlamaModel`, `HrmTextModel`,
`_set_vocab_sentencepiece`, `prepare_tensors`) of the llama.cpp that llama-cpp-python 0.3.36 vendors.
The `gguf` package on PyPI predates `hrm_text`, so its keys are written by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gguf
import torch
from sentencepiece import sentencepiece_model_pb2

from corpus.tags import REPO as REPO_TAG
from models_registry.export import (
    QUANTS,
    ExportInfo,
    Report,
    Source,
    atomic_path,
    file_sha256,
    load_source,
)
from training.hrm.model import LanguageModel, hf_config, hf_state_dict

ARCHITECTURES = {"gpt": "llama", "hrm": "hrm_text"}
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}
TENSOR_TYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}

# transformers name inside a block -> GGUF name inside `blk.N.` (gguf-py's tensor_mapping).
_BLOCK_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.gate_proj.weight": "attn_gate.weight",  # HRM-Text's sigmoid output gate
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_LLAMA_BLOCK = re.compile(r"model\.layers\.(\d+)\.(.+)")
_HRM_BLOCK = re.compile(r"model\.([LH])_module\.layers\.(\d+)\.(.+)")


@dataclass
class SentencePieceVocab:
    tokens: list[bytes]
    scores: list[float]
    types: list[int]  # gguf.TokenType values (the same numbers as SentencePiece's piece types)
    bos_id: int
    eos_id: int
    unk_id: int
    pad_id: int
    add_space_prefix: bool
    remove_extra_whitespaces: bool


def sentencepiece_vocab(model_path: Path | str, vocab_size: int | None = None) -> SentencePieceVocab:
    """The vocabulary as llama.cpp's SPM tokenizer wants it, read from the SentencePiece model proto.

    The proto is read rather than the processor because only it tells user-defined pieces (our format
    tags) apart from normal ones; llama.cpp matches USER_DEFINED tokens in the text before merging,
    exactly as SentencePiece does. Ids past the tokenizer's end (a model vocabulary padded larger)
    become unused `[PADn]` tokens, as in llama.cpp's converter."""
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(model_path).read_bytes())
    # llama.cpp's SPM tokenizer merges pieces by score, which is SentencePiece's BPE, not its unigram search.
    if proto.trainer_spec.model_type != proto.trainer_spec.BPE:
        raise ValueError("only a BPE SentencePiece model tokenizes identically in llama.cpp")
    normalizer = proto.normalizer_spec
    # llama.cpp's SPM tokenizer applies no Unicode normalization; ours is trained with none either.
    if normalizer.name not in ("identity", "") or normalizer.precompiled_charsmap:
        raise ValueError(
            f"tokenizer normalization {normalizer.name!r} cannot be reproduced by llama.cpp; "
            "train it with normalization_rule_name=identity"
        )
    size = len(proto.pieces) if vocab_size is None else vocab_size
    if size < len(proto.pieces):
        raise ValueError(f"the model's vocabulary ({size}) is smaller than the tokenizer's ({len(proto.pieces)})")
    tokens = [f"[PAD{i}]".encode() for i in range(size)]
    scores = [-10000.0] * size
    types = [int(gguf.TokenType.UNUSED)] * size
    for index, piece in enumerate(proto.pieces):
        tokens[index], scores[index], types[index] = piece.piece.encode("utf-8"), piece.score, int(piece.type)
    spec = proto.trainer_spec
    return SentencePieceVocab(
        tokens=tokens,
        scores=scores,
        types=types,
        bos_id=spec.bos_id,
        eos_id=spec.eos_id,
        unk_id=spec.unk_id,
        pad_id=spec.pad_id,
        add_space_prefix=normalizer.add_dummy_prefix,
        remove_extra_whitespaces=normalizer.remove_extra_whitespaces,
    )


def permute_for_interleaved_rope(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """Q/K rows reordered so llama.cpp's `llama` RoPE (rotating pairs 2i, 2i+1) computes what rotate-half
    RoPE computes on the original rows (llama.cpp's converter `LlamaModel.permute`)."""
    return (
        weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def gguf_tensors(model: LanguageModel) -> Iterator[tuple[str, torch.Tensor]]:
    """(GGUF name, float32 tensor) for every weight, from the transformers-named state dict.

    Raises on a name it cannot place, so a model change cannot silently drop a weight."""
    config = model.config
    hf = hf_config(config)
    for name, tensor in hf_state_dict(model).items():
        tensor = tensor.float()
        if name == "model.embed_tokens.weight":
            yield "token_embd.weight", tensor
        elif name == "lm_head.weight":
            yield "output.weight", tensor
        elif name == "model.norm.weight" and config.family == "gpt":
            yield "output_norm.weight", tensor
        elif name == "model.z_L_init" and config.family == "hrm":
            yield "hrm.z_l_init", tensor  # no ".weight" suffix: llama.cpp's name for it
        elif config.family == "gpt" and (match := _LLAMA_BLOCK.fullmatch(name)):
            block, part = int(match[1]), match[2]
            if part in ("self_attn.q_proj.weight", "self_attn.k_proj.weight"):
                tensor = permute_for_interleaved_rope(tensor, hf["num_attention_heads"])
            yield f"blk.{block}.{_block_tensor(name, part)}", tensor
        elif config.family == "hrm" and (match := _HRM_BLOCK.fullmatch(name)):
            # The generator L holds blocks [0, n), the planner H blocks [n, 2n); llama.cpp aliases
            # them over its layers_per_stack * h_cycles * (l_cycles + 1) cache slots.
            block = int(match[2]) + (hf["num_layers_per_stack"] if match[1] == "H" else 0)
            yield f"blk.{block}.{_block_tensor(name, match[3])}", tensor
        else:
            raise ValueError(f"no GGUF name for tensor {name!r} of family {config.family!r}")


def _block_tensor(name: str, part: str) -> str:
    if part not in _BLOCK_TENSORS:
        raise ValueError(f"no GGUF name for tensor {name!r}")
    return _BLOCK_TENSORS[part]


def tensor_type(gguf_name: str, tensor: torch.Tensor, quant: str) -> gguf.GGMLQuantizationType:
    """What llama.cpp's converter writes: 1-D tensors and norms F32, 2-D weights at the asked type,
    except Q8_0 tensors whose rows are not whole 32-value blocks, which fall back to F16."""
    if tensor.dim() <= 1 or gguf_name.endswith("_norm.weight"):
        return gguf.GGMLQuantizationType.F32
    qtype = TENSOR_TYPES[quant]
    if qtype == gguf.GGMLQuantizationType.Q8_0:
        block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
        if tensor.shape[-1] % block_size:
            return gguf.GGMLQuantizationType.F16
    return qtype


def write_gguf(
    model: LanguageModel,
    vocab: SentencePieceVocab,
    path: Path,
    quant: str,
    report: Report | None = None,
    name: str | None = None,
) -> dict[str, str]:
    """Write the GGUF file at `path`; returns the tensors written wider than `quant` (name -> type)."""
    if quant not in QUANTS:
        raise ValueError(f"quant must be one of {QUANTS}, not {quant!r}")
    config, hf = model.config, hf_config(model.config)
    arch = ARCHITECTURES[config.family]
    writer = gguf.GGUFWriter(path, arch)  # writes general.architecture
    writer.add_name(name or f"hrgc-{config.family}")
    writer.add_file_type(int(FILE_TYPES[quant]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_hparams(writer, arch, hf)
    _add_vocab(writer, vocab)

    fallbacks: dict[str, str] = {}
    tensors = list(gguf_tensors(model))
    for index, (gguf_name, tensor) in enumerate(tensors):
        qtype = tensor_type(gguf_name, tensor, quant)
        if qtype != TENSOR_TYPES[quant] and tensor.dim() > 1:
            fallbacks[gguf_name] = qtype.name
        data = gguf.quants.quantize(tensor.numpy(), qtype)
        writer.add_tensor(gguf_name, data, raw_dtype=qtype if qtype == gguf.GGMLQuantizationType.Q8_0 else None)
        if report:
            report(f"converted {gguf_name} ({qtype.name})", 0.7 * (index + 1) / len(tensors))
    if report:
        report("writing the file", 0.7)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return fallbacks


def _add_hparams(writer: gguf.GGUFWriter, arch: str, hf: dict) -> None:
    """The keys llama.cpp's converter writes for the architecture (`TextModel.set_gguf_parameters`)."""
    head_dim = hf["head_dim"]
    writer.add_vocab_size(hf["vocab_size"])
    writer.add_context_length(hf["max_position_embeddings"])
    writer.add_embedding_length(hf["hidden_size"])
    writer.add_feed_forward_length(hf["intermediate_size"])
    writer.add_head_count(hf["num_attention_heads"])
    writer.add_head_count_kv(hf.get("num_key_value_heads", hf["num_attention_heads"]))
    writer.add_layer_norm_rms_eps(hf["rms_norm_eps"])
    writer.add_rope_freq_base(hf["rope_parameters"]["rope_theta"])
    writer.add_rope_dimension_count(head_dim)
    if arch == "hrm_text":
        # block_count is the KV-slot count: layers_per_stack * h_cycles * (l_cycles + 1) (hrm-text.cpp asserts it).
        lps, h_cycles, l_cycles = hf["num_layers_per_stack"], hf["H_cycles"], hf["L_cycles"]
        writer.add_block_count(lps * h_cycles * (l_cycles + 1))
        writer.add_float32(f"{arch}.embedding_scale", float(hf["embedding_scale"]))
        writer.add_uint32(f"{arch}.hrm.layers_per_stack", lps)
        writer.add_uint32(f"{arch}.hrm.h_cycles", h_cycles)
        writer.add_uint32(f"{arch}.hrm.l_cycles", l_cycles)
        writer.add_bool(f"{arch}.hrm.prefix_lm", bool(hf["prefix_lm"]))
    else:
        writer.add_block_count(hf["num_hidden_layers"])


def _add_vocab(writer: gguf.GGUFWriter, vocab: SentencePieceVocab) -> None:
    writer.add_tokenizer_model("llama")  # llama.cpp's SPM tokenizer
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.tokens)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    for add, token_id in (
        (writer.add_bos_token_id, vocab.bos_id),
        (writer.add_eos_token_id, vocab.eos_id),
        (writer.add_unk_token_id, vocab.unk_id),
        (writer.add_pad_token_id, vocab.pad_id),
    ):
        if token_id >= 0:
            add(token_id)
    # llama.cpp guesses special tokens by their text and takes a `<REPO>` token for the fill-in-the-middle
    # "repository" token, making it a CONTROL token that plain-text tokenization then no longer matches
    # (llama-vocab.cpp, "find FIM_REP token"). Naming it explicitly skips the guess: it stays a
    # user-defined tag. It is what ours is (it precedes the repository name) and, as llama.cpp adds the
    # FIM repo token to the end-of-generation set, a model that starts a new record stops there.
    if REPO_TAG.encode() in vocab.tokens:
        writer.add_uint32("tokenizer.ggml.fim_rep_token_id", vocab.tokens.index(REPO_TAG.encode()))
    # Training records start with <s> and the prompt is a record's start, so runtimes prepend it too.
    writer.add_add_bos_token(vocab.bos_id >= 0)
    writer.add_add_eos_token(False)
    # llama.cpp's SPM default is a dummy space prefix; our tokenizer has none, so say so explicitly.
    writer.add_add_space_prefix(vocab.add_space_prefix)
    writer.add_remove_extra_whitespaces(vocab.remove_extra_whitespaces)


def export_gguf(
    source: Source,
    tokenizer_model_path: Path | str,
    out_path: Path | str,
    *,
    quant: str = "f16",
    report: Report | None = None,
    verify: bool = True,
    prompts: list[str] | None = None,
) -> ExportInfo:
    """Export a checkpoint (or an in-memory model with its RunConfig) to a GGUF file, written atomically.

    With `verify`, the file is reloaded in llama.cpp and compared with PyTorch (`verify.verify_gguf`);
    the result is in `ExportInfo.verification`."""
    if quant not in QUANTS:
        raise ValueError(f"quant must be one of {QUANTS}, not {quant!r}")
    out_path = Path(out_path)
    model, _ = load_source(source)
    if report:
        report("reading the tokenizer", 0.0)
    vocab = sentencepiece_vocab(tokenizer_model_path, model.config.vocab_size)
    with atomic_path(out_path) as temporary:
        fallbacks = write_gguf(model, vocab, temporary, quant, report, name=out_path.stem)
    info = ExportInfo(
        path=out_path,
        size=out_path.stat().st_size,
        sha256=file_sha256(out_path),
        architecture=ARCHITECTURES[model.config.family],
        parameter_count=model.num_parameters(),
        quant=quant,
        fallbacks=fallbacks,
    )
    if verify:
        from models_registry.export.verify import verify_gguf
        from training.tokenizer import Tokenizer

        if report:
            report("verifying with llama.cpp", 0.8)
        info.verification = verify_gguf(out_path, model, Tokenizer(tokenizer_model_path), prompts, quant=quant)
    if report:
        report("done", 1.0)
    return info
