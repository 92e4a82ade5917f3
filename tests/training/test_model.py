"""The hrm and gpt models: shapes, learning, the section-weighted loss, optimiser groups, H/L cycles, exports."""

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from corpus.records import SECTION_LABELS
from training.hrm.config import ModelConfig, preset
from training.hrm.model import (
    GPT,
    HRMText,
    build_model,
    hf_config,
    hf_state_dict,
    section_weighted_loss,
)

VOCAB = 64


def tiny(family: str, **changes) -> ModelConfig:
    return replace(preset(family, "tiny", vocab_size=VOCAB).model, block_size=32, **changes)


def randomize(model: torch.nn.Module) -> None:
    """Random values everywhere (norm weights and z_L_init too), so a wrong name mapping shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.2 + (1.0 if param.dim() == 1 else 0.0))


@pytest.mark.parametrize("family", ["hrm", "gpt"])
def test_forward_shapes(family):
    model = build_model(tiny(family))
    idx = torch.randint(0, VOCAB, (3, 20))
    logits, loss, section_losses = model(idx, idx, torch.zeros_like(idx), {"other": 1.0})
    assert logits is None and loss.dim() == 0 and set(section_losses) == {"other"}  # the loss came in chunks
    logits, _, _ = model(idx, idx, torch.zeros_like(idx), {"other": 1.0}, all_logits=True)
    assert logits.shape == (3, 20, VOCAB)
    logits, loss, section_losses = model(idx)
    assert logits.shape == (3, 1, VOCAB) and loss is None and section_losses == {}
    assert model(idx, all_logits=True)[0].shape == (3, 20, VOCAB)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros((1, 33), dtype=torch.long))


@pytest.mark.parametrize("family", ["hrm", "gpt"])
def test_overfits_one_batch(family):
    torch.manual_seed(0)
    model = build_model(tiny(family))
    optimizer = torch.optim.AdamW(model.optim_groups(0.1, 1.2, 0.8), lr=3e-3)
    x = torch.randint(0, VOCAB, (4, 32))
    y = torch.roll(x, -1, dims=1)
    losses = []
    for _ in range(30):
        _, loss, _ = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 3.5  # about ln(64) at initialisation
    assert losses[-1] < 0.5 * losses[0]


def test_section_weighted_loss_renormalizes_over_present_sections():
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 5)
    targets = torch.tensor([[1, 2, 3, -1, 4, 0]])
    sections = torch.tensor([[SECTION_LABELS[name] for name in ("plan", "plan", "code", "code", "other", "refine")]])
    token_ce = F.cross_entropy(logits[0], targets[0].clamp(min=0), reduction="none")
    plan, code, other, refine = token_ce[:2].mean(), token_ce[2], token_ce[4], token_ce[5]

    weights = {"plan": 0.4, "code": 0.4, "refine": 0.2, "other": 0.1, "validate": 0.1}
    loss, per_section = section_weighted_loss(logits, targets, sections, weights)
    # "validate" is absent: its weight drops out and the other four renormalise.
    expected = (0.4 * plan + 0.4 * code + 0.2 * refine + 0.1 * other) / 1.1
    assert torch.allclose(loss, expected)
    assert set(per_section) == {"plan", "code", "other", "refine"}
    assert torch.allclose(per_section["code"], code)  # the ignored target (-1) is left out
    assert not per_section["plan"].requires_grad

    # A section missing from the weights counts zero; without weights or sections: the token mean.
    loss, _ = section_weighted_loss(logits, targets, sections, {"plan": 1.0, "code": 3.0})
    assert torch.allclose(loss, (plan + 3 * code) / 4)
    token_mean = token_ce[[0, 1, 2, 4, 5]].mean()
    assert torch.allclose(section_weighted_loss(logits, targets, sections, None)[0], token_mean)
    assert torch.allclose(section_weighted_loss(logits, targets, None, weights)[0], token_mean)
    assert torch.allclose(section_weighted_loss(logits, targets, sections, {"validate": 1.0})[0], token_mean)
    with pytest.raises(ValueError, match="unknown sections"):
        section_weighted_loss(logits, targets, sections, {"tests": 1.0})


def test_optim_groups_scale_planner_and_generator_and_skip_decay_on_vectors():
    model = build_model(tiny("hrm"))
    groups = model.optim_groups(0.1, 1.2, 0.8)
    group_of = {id(p): g for g in groups for p in g["params"]}
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert len(group_of) == sum(len(g["params"]) for g in groups) == len(trainable)
    for name, param in trainable:
        group = group_of[id(param)]
        expected = 1.2 if name.startswith("H_module.") else 0.8 if name.startswith("L_module.") else 1.0
        assert group["lr_multiplier"] == expected, name
        no_decay = param.dim() < 2 or name.startswith("embed_tokens.")
        assert group["weight_decay"] == (0.0 if no_decay else 0.1), name
    assert group_of[id(model.lm_head.weight)]["weight_decay"] == 0.1

    gpt_groups = build_model(tiny("gpt")).optim_groups(0.1, 1.2, 0.8)
    assert {g["lr_multiplier"] for g in gpt_groups} == {1.0}
    assert {g["weight_decay"] for g in gpt_groups} == {0.0, 0.1}  # norm weights and embeddings undecayed


def test_cycles_and_z_l_init_shape_the_output():
    idx = torch.randint(0, VOCAB, (2, 16))
    one_cycle = HRMText(tiny("hrm", h_cycles=1, l_cycles=1))
    randomize(one_cycle)
    more_cycles = HRMText(tiny("hrm", h_cycles=2, l_cycles=3))
    more_cycles.load_state_dict(one_cycle.state_dict())  # same weights, more recursion
    with torch.no_grad():
        base = one_cycle(idx, all_logits=True)[0]
        assert not torch.allclose(base, more_cycles(idx, all_logits=True)[0], atol=1e-3)
        one_cycle.z_L_init.add_(1.0)
        assert not torch.allclose(base, one_cycle(idx, all_logits=True)[0], atol=1e-3)


def test_early_l_steps_run_without_gradient_unless_full_backprop():
    def l_calls_with_grad(full_backprop: bool) -> list[bool]:
        model = HRMText(tiny("hrm", h_cycles=2, l_cycles=3, full_backprop=full_backprop))
        calls = []
        model.L_module.register_forward_hook(lambda module, args, output: calls.append(output.requires_grad))
        _, loss, _ = model(torch.randint(0, VOCAB, (2, 8)), torch.randint(0, VOCAB, (2, 8)))
        loss.backward()
        assert model.embed_tokens.weight.grad is not None  # zH keeps its gradient path through every H step
        return calls

    # transformers' L_bp_cycles=[2]: the last L step of the first H cycle, the last two of the last one.
    assert l_calls_with_grad(False) == [False, False, True, False, True, True]
    assert l_calls_with_grad(True) == [True] * 6


@pytest.mark.parametrize("family,cycles", [("hrm", (2, 1)), ("hrm", (2, 2)), ("hrm", (1, 1)), ("gpt", (2, 2))])
def test_every_trainable_parameter_gets_a_gradient(family, cycles):
    # DDP (without find_unused_parameters) fails on a trainable parameter that never gets a gradient.
    model = build_model(tiny(family, h_cycles=cycles[0], l_cycles=cycles[1]))
    _, loss, _ = model(torch.randint(0, VOCAB, (2, 8)), torch.randint(0, VOCAB, (2, 8)))
    loss.backward()
    assert [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    if family == "hrm":
        assert model.z_L_init.requires_grad == (cycles[1] == 1)  # reachable only when the first L step has grad


def test_preset_parameter_counts():
    counts = {
        (family, name, vocab): build_model(preset(family, name, vocab_size=vocab).model).num_parameters()
        for family in ("hrm", "gpt")
        for name, vocab in (("seed", 50_000), ("tiny", 1000))
    }
    # hrm seed: 2 x 50000 x 256 embeddings/head + 6 blocks x (5 x 256^2 attention + 3 x 256 x 512 SwiGLU) + 256
    assert counts[("hrm", "seed", 50_000)] == 29_925_632
    assert counts[("gpt", "seed", 50_000)] == 29_535_488  # 6 llama blocks with 2 norm vectors each, a final norm
    assert counts[("hrm", "tiny", 1000)] == 236_608
    assert counts[("gpt", "tiny", 1000)] == 228_672
    assert abs(counts[("gpt", "seed", 50_000)] / counts[("hrm", "seed", 50_000)] - 1) < 0.05
    assert abs(counts[("gpt", "tiny", 1000)] / counts[("hrm", "tiny", 1000)] - 1) < 0.05
    model = build_model(preset("hrm", "tiny", vocab_size=1000).model)
    assert model.num_parameters(exclude_embeddings=True) == 236_608 - 1000 * 64


@pytest.mark.parametrize("family,tied", [("hrm", False), ("hrm", True), ("gpt", False), ("gpt", True)])
def test_transformers_loads_our_weights_and_gives_the_same_logits(family, tied, tmp_path):
    pytest.importorskip("transformers")
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    config = tiny(family, h_cycles=2, l_cycles=2, tie_embeddings=tied)
    ours = build_model(config)
    assert isinstance(ours, HRMText if family == "hrm" else GPT)
    randomize(ours)
    if tied:
        assert ours.lm_head.weight is ours.embed_tokens.weight
    save_file(hf_state_dict(ours), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(hf_config(config)))
    theirs, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert type(theirs).__name__ == ("HrmTextForCausalLM" if family == "hrm" else "LlamaForCausalLM")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]

    idx = torch.randint(0, VOCAB, (2, 24))
    with torch.no_grad():
        expected = ours.eval()(idx, all_logits=True)[0]
        actual = theirs.eval()(idx).logits
    assert torch.allclose(actual, expected, atol=1e-4)
