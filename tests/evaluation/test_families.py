"""Matched family configs: parameter counts within a few per cent, equal token budgets, the same seed."""

from __future__ import annotations

import pytest

from evaluation.families import FamilyMismatch, default_tokens, plan_families, tokens_per_step
from training.hrm.config import preset
from training.services.runs import parameter_count


@pytest.mark.parametrize(("preset_name", "vocab"), [("tiny", 400), ("tiny", 8000), ("seed", 50_000), ("seed", 2000)])
def test_families_match_in_parameters_and_tokens(preset_name, vocab):
    plan = plan_families(vocab, preset_name, tokens=1_000_000, seed=7, count=parameter_count)
    hrm, gpt = plan.configs["hrm"], plan.configs["gpt"]
    assert (hrm.model.family, gpt.model.family) == ("hrm", "gpt")
    assert hrm.model.vocab_size == gpt.model.vocab_size == vocab
    assert parameter_count(hrm) == plan.parameters["hrm"] and parameter_count(gpt) == plan.parameters["gpt"]
    assert abs(plan.parameters["gpt"] - plan.parameters["hrm"]) / plan.parameters["hrm"] <= 0.03
    budget = {family: c.train.max_steps * tokens_per_step(c) for family, c in plan.configs.items()}
    assert budget["hrm"] == budget["gpt"] == plan.tokens
    assert abs(plan.tokens - 1_000_000) <= tokens_per_step(hrm) / 2  # the nearest whole number of steps
    assert hrm.train.seed == gpt.train.seed == 7


def test_gpt_is_resized_only_when_the_presets_are_too_far_apart():
    """At a small vocabulary HRM's extra gates weigh more; gpt's SwiGLU width makes up the difference."""
    tight = plan_families(400, "tiny", tokens=100_000, seed=1, count=parameter_count, tolerance=0.001)
    loose = plan_families(400, "tiny", tokens=100_000, seed=1, count=parameter_count, tolerance=0.5)
    assert "intermediate_size" not in loose.overrides["gpt"]
    assert loose.configs["gpt"].model == preset("gpt", "tiny", vocab_size=400).model
    assert tight.overrides["gpt"]["intermediate_size"] != preset("gpt", "tiny", vocab_size=400).model.intermediate_size
    assert tight.parameter_gap <= 0.001 < loose.parameter_gap


def test_overrides_rebuild_the_configs_through_the_preset():
    plan = plan_families(400, "tiny", tokens=40_000, seed=3, count=parameter_count)
    for family in ("hrm", "gpt"):
        rebuilt = preset(family, "tiny", vocab_size=400).with_overrides(
            {key: str(value) for key, value in plan.overrides[family].items()}
        )
        assert rebuilt == plan.configs[family]


def test_a_budget_below_one_step_is_refused():
    with pytest.raises(FamilyMismatch, match="less than one step"):
        plan_families(400, "tiny", tokens=10, seed=1, count=parameter_count)


def test_default_tokens_is_the_presets_budget():
    config = preset("hrm", "tiny", vocab_size=400)
    assert default_tokens("tiny", 400) == config.train.max_steps * tokens_per_step(config) == 300 * 8 * 256
