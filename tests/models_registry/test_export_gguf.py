"""GGUF export: stock llama.cpp loads `gpt` (llama) and `hrm` (hrm_text) with PyTorch's logits and tokenization."""

from __future__ import annotations

from dataclasses import replace

import gguf
import pytest
import torch

from corpus.tags import FORMAT_TAGS
from models_registry.export import atomic_path, file_sha256, load_source
from models_registry.export.gguf_export import export_gguf
from models_registry.export.modelfile import STOP_TOKENS, write_modelfile
from tests.llama import llama_cpp_module, needs_llama_cpp  # noqa: F401 - the fixture the marker names
from tests.models_registry.support import briefly_trained, fixture_sources, tiny_model
from training.hrm.config import RunConfig, preset
from training.hrm.generate import task_prompt
from training.hrm.model import LanguageModel, build_model


@pytest.fixture(scope="module")
def trained(tokenizer) -> dict[str, tuple[LanguageModel, RunConfig]]:
    return {family: briefly_trained(family, tokenizer) for family in ("gpt", "hrm")}


def _field(reader: gguf.GGUFReader, key: str):
    field = reader.fields[key]
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types[0] == gguf.GGUFValueType.STRING else value.tolist()[0]


@needs_llama_cpp
@pytest.mark.parametrize("family", ["gpt", "hrm"])
@pytest.mark.parametrize("quant", ["f32", "f16", "q8_0"])
def test_llama_cpp_reproduces_pytorch_logits_and_tokenization(tokenizer, trained, tmp_path, family, quant):
    model, config = trained[family]
    info = export_gguf((model, config), tokenizer.model_path, tmp_path / "model.gguf", quant=quant)

    result = info.verification
    assert result["architecture"] == {"gpt": "llama", "hrm": "hrm_text"}[family] == info.architecture
    logits = result["logits"]
    assert logits["positions"] > 200
    assert logits["max_abs_logit"] > 3  # a model that predicts something, not a flat distribution
    if quant == "f32":
        assert logits["max_abs_diff"] <= 1e-3
    elif quant == "f16":
        # verify.py's documented bound, 1e-2 x max |logit|; measured here: about 4e-4 x max |logit|.
        assert logits["max_abs_diff"] <= 1e-2 * max(1.0, logits["max_abs_logit"])
        assert logits["top1_agreement"] >= 0.99
    else:
        assert logits["top1_agreement"] >= 0.95
    # Real Go files with tabs, CRLF, blank lines and Unicode, and prompts full of tags.
    assert result["tokenization"]["ok"], result["tokenization"]["mismatches"]
    assert result["tokenization"]["texts"] >= len(fixture_sources())
    assert result["ok"] is True
    assert info.size == (tmp_path / "model.gguf").stat().st_size
    assert info.parameter_count == model.num_parameters()


def test_hrm_text_keys_and_tensor_names_are_what_llama_cpp_reads(tokenizer, tmp_path):
    model, config = tiny_model("hrm", tokenizer.vocab_size)
    info = export_gguf((model, config), tokenizer.model_path, tmp_path / "hrm.gguf", quant="q8_0", verify=False)
    reader = gguf.GGUFReader(info.path)
    m = config.model
    assert _field(reader, "general.architecture") == "hrm_text"
    assert _field(reader, "hrm_text.hrm.layers_per_stack") == m.n_layer
    assert _field(reader, "hrm_text.hrm.h_cycles") == m.h_cycles
    assert _field(reader, "hrm_text.hrm.l_cycles") == m.l_cycles
    assert _field(reader, "hrm_text.hrm.prefix_lm") is False
    assert _field(reader, "hrm_text.block_count") == m.n_layer * m.h_cycles * (m.l_cycles + 1)
    assert _field(reader, "hrm_text.embedding_scale") == pytest.approx(50.0)
    assert _field(reader, "hrm_text.context_length") == m.block_size
    assert _field(reader, "tokenizer.ggml.add_space_prefix") is False

    types = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    per_block = {"attn_q", "attn_k", "attn_v", "attn_output", "attn_gate", "ffn_gate", "ffn_up", "ffn_down"}
    expected = {"token_embd.weight", "output.weight", "hrm.z_l_init"} | {
        f"blk.{block}.{part}.weight" for block in range(2 * m.n_layer) for part in per_block
    }
    assert set(types) == expected  # weightless norms: no norm tensors at all
    assert types["hrm.z_l_init"] == "F32"
    assert types["blk.0.attn_gate.weight"] == "Q8_0"
    # The tiny preset's FFN width (176) is not a multiple of 32: ffn_down falls back to F16, on record.
    assert types["blk.0.ffn_down.weight"] == "F16"
    assert info.fallbacks == {f"blk.{b}.ffn_down.weight": "F16" for b in range(2 * m.n_layer)}


def test_vocabulary_is_typed_like_sentencepiece(tokenizer, tmp_path):
    model, config = tiny_model("gpt", tokenizer.vocab_size)
    info = export_gguf((model, config), tokenizer.model_path, tmp_path / "gpt.gguf", quant="f16", verify=False)
    reader = gguf.GGUFReader(info.path)
    tokens_field, types_field = reader.fields["tokenizer.ggml.tokens"], reader.fields["tokenizer.ggml.token_type"]
    tokens = [bytes(tokens_field.parts[i]).decode() for i in tokens_field.data]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    assert len(tokens) == tokenizer.vocab_size
    kind = dict(zip(tokens, types, strict=True))
    assert kind["<unk>"] == gguf.TokenType.UNKNOWN
    assert kind["<s>"] == kind["</s>"] == kind["<pad>"] == gguf.TokenType.CONTROL
    assert all(kind[tag] == gguf.TokenType.USER_DEFINED for tag in FORMAT_TAGS)
    assert kind["<0x0A>"] == gguf.TokenType.BYTE
    assert _field(reader, "tokenizer.ggml.model") == "llama"
    assert _field(reader, "tokenizer.ggml.bos_token_id") == tokenizer.bos_id
    assert _field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_id


def test_checkpoint_file_exports_the_same_bytes_as_the_model_in_memory(tokenizer, tmp_path):
    model, config = tiny_model("gpt", tokenizer.vocab_size)
    checkpoint = tmp_path / "step_0000010.pt"
    # As the train loop saves it (a compiled model's names carry the _orig_mod. prefix).
    torch.save(
        {"model": {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}, "config": config.to_dict(), "step": 10},
        checkpoint,
    )
    loaded, _ = load_source(checkpoint)
    assert loaded.config == config.model
    progress = []
    from_file = export_gguf(
        checkpoint,
        tokenizer.model_path,
        tmp_path / "a" / "model.gguf",
        quant="q8_0",
        verify=False,
        report=lambda message, fraction: progress.append((message, fraction)),
    )
    assert progress[-1] == ("done", 1.0)
    assert [fraction for _, fraction in progress] == sorted(fraction for _, fraction in progress)
    from_memory = export_gguf(
        (model, config), tokenizer.model_path, tmp_path / "b" / "model.gguf", quant="q8_0", verify=False
    )
    assert from_file.sha256 == from_memory.sha256


def test_failed_export_leaves_no_partial_file_and_keeps_the_previous_one(tokenizer, tmp_path):
    model, config = tiny_model("gpt", tokenizer.vocab_size)
    out = tmp_path / "model.gguf"
    previous = export_gguf((model, config), tokenizer.model_path, out, quant="f16", verify=False)
    # A weight no GGUF name exists for: the exporter must refuse rather than drop it.
    model.register_parameter("stray", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match="stray"):
        export_gguf((model, config), tokenizer.model_path, out, quant="f16", verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]
    assert file_sha256(out) == previous.sha256
    # A failure after half the bytes are on disk (a full disk, a kill) is cleaned up the same way.
    with pytest.raises(OSError), atomic_path(tmp_path / "new.gguf") as temporary:
        temporary.write_bytes(b"GGUF" + bytes(1000))
        raise OSError("No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_modelfile_prompts_in_the_record_format_and_stops_on_the_controller_tags(tokenizer, tmp_path):
    model, config = tiny_model("hrm", tokenizer.vocab_size)
    gguf_path = export_gguf(
        (model, config), tokenizer.model_path, tmp_path / "hrm.gguf", quant="q8_0", verify=False
    ).path
    text = write_modelfile(gguf_path, tmp_path / "Modelfile").read_text()
    lines = text.splitlines()
    assert lines[0] == "FROM ./hrm.gguf"
    for stop in ("</CODE>", "<REFINE>", "</s>"):
        assert f'PARAMETER stop "{stop}"' in lines
    assert STOP_TOKENS == ("</CODE>", "<REFINE>", "</s>")
    assert "PARAMETER temperature 0.8" in lines
    assert f"PARAMETER num_ctx {config.model.block_size}" in lines
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    # Rendered as Ollama would (System = the repository, Prompt = the PR title), it is the prompt
    # the model was trained on and the playground sends.
    rendered = template.replace("{{ if .System }} {{ .System }}{{ end }}", " owner/repo").replace(
        "{{ .Prompt }}", "Fix the nil map"
    )
    header, _ = task_prompt(repo="owner/repo", title="Fix the nil map", body="", path="main.go", code_before="")
    assert rendered == header
    elsewhere = write_modelfile(gguf_path, tmp_path / "ollama" / "Modelfile").read_text()
    assert elsewhere.splitlines()[0] == f"FROM {gguf_path.resolve()}"


@needs_llama_cpp
@pytest.mark.parametrize("family", ["gpt", "hrm"])
def test_tied_embeddings_export_without_an_output_tensor(tokenizer, tmp_path, family):
    torch.manual_seed(0)
    base = preset(family, "tiny", vocab_size=tokenizer.vocab_size)
    config = RunConfig(model=replace(base.model, tie_embeddings=True), train=base.train)
    model = build_model(config.model).eval()
    info = export_gguf((model, config), tokenizer.model_path, tmp_path / "tied.gguf", quant="f32")
    names = {tensor.name for tensor in gguf.GGUFReader(info.path).tensors}
    assert "output.weight" not in names and "token_embd.weight" in names  # llama.cpp reuses token_embd
    assert info.verification["logits"]["max_abs_diff"] <= 1e-3
    assert info.verification["ok"] is True
