"""safetensors export: transformers loads `gpt` as LlamaForCausalLM and `hrm` as HrmTextForCausalLM, same logits."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer, HrmTextForCausalLM, LlamaForCausalLM

from models_registry.export.safetensors_export import export_safetensors
from models_registry.export.verify import default_prompts, torch_logits
from tests.models_registry.support import (
    fixture_sources,
    tiny_model,
)

CLASSES = {"gpt": LlamaForCausalLM, "hrm": HrmTextForCausalLM}


@pytest.mark.parametrize("family", ["gpt", "hrm"])
def test_transformers_loads_the_folder_with_the_same_logits(tokenizer, tmp_path, family):
    model, config = tiny_model(family, tokenizer.vocab_size)
    folder = tmp_path / f"{family}-hf"
    info = export_safetensors((model, config), tokenizer.model_path, folder)

    assert info.verification["ok"] is True
    assert info.verification["class"] == CLASSES[family].__name__ == info.architecture
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.model",
        "tokenizer_config.json",
    ]
    loaded = CLASSES[family].from_pretrained(folder, dtype=torch.float32).eval()
    for prompt in default_prompts():
        ids = ([tokenizer.bos_id] + tokenizer.encode(prompt))[: config.model.block_size]
        with torch.no_grad():
            theirs = loaded(torch.tensor([ids])).logits[0].numpy()
        assert abs(theirs - torch_logits(model, ids)).max() <= 1e-4
    written = json.loads((folder / "config.json").read_text())
    assert written["eos_token_id"] == tokenizer.eos_id
    if family == "hrm":
        # transformers' own serialised pair: blocks per stack and the inflated KV-slot count.
        m = config.model
        assert written["num_layers_per_stack"] == loaded.config.num_layers_per_stack == m.n_layer
        assert loaded.config.num_hidden_layers == m.n_layer * m.h_cycles * (m.l_cycles + 1)
        assert torch.equal(loaded.model.z_L_init, model.z_L_init)  # not re-zeroed by transformers' init


def test_the_folder_tokenizer_loads_in_transformers_and_matches_sentencepiece(tokenizer, tmp_path):
    model, config = tiny_model("gpt", tokenizer.vocab_size)
    folder = export_safetensors((model, config), tokenizer.model_path, tmp_path / "hf", verify=False).path
    theirs = AutoTokenizer.from_pretrained(folder)
    for text in fixture_sources() + default_prompts():
        assert theirs.encode(text, add_special_tokens=False) == tokenizer.encode(text)
    assert theirs.encode("x")[0] == tokenizer.bos_id  # records start with <s>, as in training


def test_export_replaces_an_earlier_folder_whole(tokenizer, tmp_path):
    folder = tmp_path / "hf"
    first, config = tiny_model("gpt", tokenizer.vocab_size)
    export_safetensors((first, config), tokenizer.model_path, folder, verify=False)
    (folder / "stale.txt").write_text("left from an older export")
    second = type(first)(config.model)
    info = export_safetensors((second, config), tokenizer.model_path, folder, verify=False)
    assert not (folder / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]  # no temporary or old folder left behind
    assert info.verification is None
    reloaded = LlamaForCausalLM.from_pretrained(folder)
    assert torch.equal(reloaded.lm_head.weight, second.lm_head.weight)
