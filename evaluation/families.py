"""The `hrm` and `gpt` configs a family comparison trains: matched parameter counts, equal tokens, same seed.

Both start from the same preset at the dataset's vocabulary. The presets already give `gpt` as many
decoder blocks as `hrm` has physical blocks; what is left over (HRM's attention gates and z_L init) is
evened out by widening or narrowing `gpt`'s SwiGLU hidden size (`intermediate_size`), the one setting
whose parameter count is linear and fine-grained. Both train for max_steps × tokens_per_step tokens,
the same number, with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from training.hrm.config import RunConfig, preset

TOLERANCE = 0.03  # largest relative gap in parameter count accepted between the two families


class FamilyMismatch(ValueError):
    """The two families cannot be matched as asked (a budget below one step, sizes that will not meet)."""


@dataclass(frozen=True)
class FamilyPlan:
    """What a comparison queues for one seed: per family the overrides to the preset and the result."""

    preset: str
    seed: int
    max_steps: int
    tokens_per_step: int
    overrides: dict[str, dict[str, object]]  # family → settings changed from the preset
    configs: dict[str, RunConfig]
    parameters: dict[str, int]

    @property
    def tokens(self) -> int:
        return self.max_steps * self.tokens_per_step

    @property
    def parameter_gap(self) -> float:
        """|gpt − hrm| / hrm."""
        return abs(self.parameters["gpt"] - self.parameters["hrm"]) / self.parameters["hrm"]


def tokens_per_step(config: RunConfig) -> int:
    t = config.train
    return t.batch_size * config.model.block_size * t.gradient_accumulation_steps * t.nproc_per_node * t.nnodes


def default_tokens(preset_name: str, vocab_size: int) -> int:
    """The preset's own budget: its max_steps × tokens per step."""
    config = preset("hrm", preset_name, vocab_size=vocab_size)
    return config.train.max_steps * tokens_per_step(config)


def plan_families(
    vocab_size: int,
    preset_name: str,
    *,
    tokens: int,
    seed: int,
    count: Callable[[RunConfig], int],
    tolerance: float = TOLERANCE,
) -> FamilyPlan:
    """The matched pair for one seed. `count` gives a config's parameter count (the run services' own)."""
    hrm = preset("hrm", preset_name, vocab_size=vocab_size)
    gpt = preset("gpt", preset_name, vocab_size=vocab_size)
    per_step = tokens_per_step(hrm)
    if tokens_per_step(gpt) != per_step:  # the presets share batch and block sizes; guard the assumption
        raise FamilyMismatch(f"the {preset_name} presets differ in tokens per step")
    if tokens < per_step:
        raise FamilyMismatch(f"a budget of {tokens:,} tokens is less than one step ({per_step:,} tokens)")
    max_steps = max(1, round(tokens / per_step))
    common = {"max_steps": max_steps, "seed": seed}
    hrm = hrm.with_overrides({key: str(value) for key, value in common.items()})
    gpt_overrides: dict[str, object] = dict(common)
    target = count(hrm)
    width = gpt.model.intermediate_size
    have = count(gpt)
    if abs(have - target) / target > tolerance:
        width = _matching_width(gpt, target, count)
        gpt_overrides["intermediate_size"] = width
    gpt = gpt.with_overrides({key: str(value) for key, value in gpt_overrides.items()})
    parameters = {"hrm": target, "gpt": count(gpt)}
    plan = FamilyPlan(
        preset=preset_name,
        seed=seed,
        max_steps=max_steps,
        tokens_per_step=per_step,
        overrides={"hrm": common, "gpt": gpt_overrides},
        configs={"hrm": hrm, "gpt": gpt},
        parameters=parameters,
    )
    if plan.parameter_gap > tolerance:
        raise FamilyMismatch(
            f"gpt has {parameters['gpt']:,} parameters against hrm's {target:,}: more than {tolerance:.0%} apart"
        )
    return plan


def _matching_width(gpt: RunConfig, target: int, count: Callable[[RunConfig], int]) -> int:
    """The SwiGLU width that brings `gpt` closest to `target` parameters (the count is linear in it)."""
    width = gpt.model.intermediate_size
    here = count(gpt)
    slope = count(gpt.with_overrides({"intermediate_size": str(width + 1)})) - here
    if slope <= 0:
        raise FamilyMismatch("gpt's parameter count does not grow with intermediate_size")
    best = max(1, width + round((target - here) / slope))
    return best


# ------------------------------------------------------------------------------------------------ verdict


def verdict(metrics: dict[str, list[dict]], keys: list[tuple[str, bool]]) -> list[dict]:
    """Which family wins each metric at equal tokens.

    `metrics` maps a family to its evaluations' metric dicts (one per seed); `keys` lists (metric key,
    lower is better). Per metric: each family's mean, sample standard deviation across seeds (None with
    one seed), the number of seeds that measured it, the winner ("hrm", "gpt", "tie", or None when a family
    lacks it), and whether the gap is within the spread (smaller than the larger standard deviation)."""
    rows = []
    for key, lower_is_better in keys:
        row: dict = {"metric": key, "lower_is_better": lower_is_better}
        for family, dicts in metrics.items():
            values = [float(d[key]) for d in dicts if _number(d.get(key))]
            mean = sum(values) / len(values) if values else None
            spread = None
            if len(values) > 1:
                spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
            row[family] = {"mean": mean, "spread": spread, "n": len(values)}
        means = {family: row[family]["mean"] for family in metrics}
        if any(mean is None for mean in means.values()) or len(means) != 2:
            row["winner"], row["within_spread"] = None, False
        else:
            (a, mean_a), (b, mean_b) = sorted(means.items())
            if mean_a == mean_b:
                row["winner"] = "tie"
            else:
                row["winner"] = (a if mean_a < mean_b else b) if lower_is_better else (a if mean_a > mean_b else b)
            spreads = [row[f]["spread"] for f in (a, b) if row[f]["spread"] is not None]
            row["within_spread"] = bool(spreads) and abs(mean_a - mean_b) < max(spreads)
        rows.append(row)
    return rows


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN
