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


def test_verdict_picks_the_better_mean_per_metric_with_the_spread_across_seeds():
    from evaluation.families import verdict

    metrics = {
        "hrm": [{"code_loss": 2.0, "exact_match": 0.1}, {"code_loss": 4.0, "exact_match": 0.3}],
        "gpt": [{"code_loss": 3.5, "exact_match": 0.2}, {"code_loss": 3.5, "exact_match": 0.2, "vet_ok": 1.0}],
    }
    rows = {r["metric"]: r for r in verdict(metrics, [("code_loss", True), ("exact_match", False), ("vet_ok", False)])}
    loss = rows["code_loss"]
    assert loss["hrm"] == {"mean": 3.0, "spread": pytest.approx(2**0.5), "n": 2}
    assert loss["gpt"]["mean"] == 3.5 and loss["gpt"]["spread"] == 0.0
    assert loss["winner"] == "hrm" and loss["within_spread"]  # 0.5 apart, spread 1.41
    assert rows["exact_match"]["winner"] == "tie"  # 0.2 each
    assert rows["vet_ok"]["winner"] is None and rows["vet_ok"]["gpt"]["n"] == 1  # hrm never measured it


def test_verdict_with_one_seed_has_no_spread():
    from evaluation.families import verdict

    rows = verdict({"hrm": [{"perplexity": 10.0}], "gpt": [{"perplexity": 12.0}]}, [("perplexity", True)])
    assert rows[0]["winner"] == "hrm" and rows[0]["hrm"]["spread"] is None and rows[0]["within_spread"] is False
