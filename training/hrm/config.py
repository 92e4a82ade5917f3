"""Model and training configuration: every hyperparameter of the seed's table, and the presets."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

FAMILIES = ("hrm", "gpt")
MODEL_LIMITS = {
    "vocab_size": 1_000_000,
    "n_embd": 16_384,
    "n_head": 256,
    "n_layer": 256,
    "intermediate_size": 65_536,
    "h_cycles": 16,
    "l_cycles": 16,
    "block_size": 131_072,
}
# Integer training settings' upper bounds: the database's integer columns (step counts are PostgreSQL
# `integer`), numpy's seed range, and beyond that sizes no machine runs, so a typo gets a message, not a 500.
INT32_MAX = 2**31 - 1
TRAIN_LIMITS = {
    "batch_size": 1_048_576,
    "gradient_accumulation_steps": 1_048_576,
    "max_steps": INT32_MAX,
    "warmup_steps": INT32_MAX,
    "save_steps": INT32_MAX,
    "eval_steps": INT32_MAX,
    "logging_steps": INT32_MAX,
    "refinement_warmup": INT32_MAX,
    "validation_frequency": INT32_MAX,
    "keep_last_checkpoints": INT32_MAX,
    "max_refinement_iterations": 1_000,
    "eval_iters": 1_000_000,
    "sample_count": 10_000,
    "sample_max_tokens": 131_072,
    "seed": 2**32 - 1,
    "num_threads": 4_096,
    "nproc_per_node": 4_096,
    "nnodes": 65_536,
}
PRESETS = ("seed", "tiny")
COMPILE_CHOICES = ("auto", "on", "off")
# Training settings that must be at least 1 (the new-run form gives their inputs min="1" from this).
TRAIN_AT_LEAST_ONE = (
    "batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "save_steps",
    "eval_steps",
    "logging_steps",
    "eval_iters",
    "max_refinement_iterations",
    "nproc_per_node",
    "nnodes",
)


@dataclass
class ModelConfig:
    family: str = "hrm"  # "hrm" (HRM-Text: planner=H stack, generator=L stack) | "gpt" (llama decoder)
    vocab_size: int = 50_000
    n_embd: int = 256
    n_head: int = 8
    # hrm: blocks per stack (planner and generator each); gpt: total decoder blocks.
    n_layer: int = 3
    intermediate_size: int = 512  # SwiGLU hidden width (2x: keeps the seed preset under 30 M at a 50K vocab)
    h_cycles: int = 2  # hrm only
    l_cycles: int = 2  # hrm only
    block_size: int = 1024  # seed: code length (generator context, training sequence length)
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0
    # Gradient through the last H cycle only (the papers' cheap option) unless True.
    full_backprop: bool = False
    tie_embeddings: bool = False


@dataclass
class TrainConfig:
    # The seed's "Hyperparameters (HRM 20-30M Model)" table, names kept.
    learning_rate: float = 3e-4
    batch_size: int = 8
    gradient_accumulation_steps: int = 4
    max_steps: int = 125_000
    warmup_steps: int = 1000
    weight_decay: float = 0.1
    fp16: bool = True  # mixed precision where the device supports it (bf16 preferred when available)
    save_steps: int = 1000
    eval_steps: int = 500
    logging_steps: int = 50
    planner_lr_multiplier: float = 1.2
    generator_lr_multiplier: float = 0.8
    refinement_warmup: int = 5000
    max_refinement_iterations: int = 5
    validation_frequency: int = 100  # sample generations + Go parser check every N steps
    plan_loss_weight: float = 0.4
    code_loss_weight: float = 0.4
    refinement_loss_weight: float = 0.2
    # Ours, beyond the seed's table.
    other_loss_weight: float = 0.1  # REPO/PR text, CONTEXT, COMMENTS, VALIDATE tags
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95
    eval_iters: int = 20
    sample_count: int = 4
    sample_max_tokens: int = 256
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | mps
    # torch.compile: "auto" where it pays off (CUDA; on a CPU only long runs of models of 10 M parameters or
    # more, see training.engine.compile_wanted), "on" or "off". Older configs stored a bool, read as on/off.
    compile: str = "auto"
    # Checkpoints on the save_steps grid kept besides the best by validation loss and the latest (0: all).
    keep_last_checkpoints: int = 0
    num_threads: int = 0  # 0: torch default
    # Processes (DDP ranks) per node and nodes: more than one in all launches the run with torchrun; several
    # nodes meet at the c10d rendezvous `rdzv_endpoint` (host:port of the first node).
    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str = ""

    def __post_init__(self):
        setting = str(self.compile).strip().lower()
        self.compile = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}.get(
            setting, setting
        )


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"model": asdict(self.model), "train": asdict(self.train)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        model = dict(data.get("model", {}))
        # Read by nothing (planner and generator share one token stream); runs saved with it still load.
        model.pop("planner_positions", None)
        return cls(model=ModelConfig(**model), train=TrainConfig(**data.get("train", {})))

    def with_overrides(self, overrides: dict[str, str], *, validate: bool = True) -> RunConfig:
        """Apply `key=value` overrides (key names a field of either config); raise ValueError on bad ones.

        With validate=False only unknown or unparsable settings raise; problems() then lists the rest."""
        model, train = self.model, self.train
        model_fields = {f.name: f for f in fields(ModelConfig)}
        train_fields = {f.name: f for f in fields(TrainConfig)}
        for key, raw in overrides.items():
            key = key.strip()
            if key.startswith("model."):
                target, name = "model", key[6:]
            elif key.startswith("train."):
                target, name = "train", key[6:]
            elif key in train_fields:
                target, name = "train", key
            elif key in model_fields:
                target, name = "model", key
            else:
                raise ValueError(f"unknown setting {key!r}")
            f = (model_fields if target == "model" else train_fields).get(name)
            if f is None:
                raise ValueError(f"unknown setting {key!r}")
            value = _parse_value(name, raw, type(getattr(model if target == "model" else train, name)))
            if target == "model":
                model = replace(model, **{name: value})
            else:
                train = replace(train, **{name: value})
        config = RunConfig(model=model, train=train)
        if validate:
            config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError with the first problem (problems() lists them all)."""
        found = self.problems()
        if found:
            raise ValueError(found[0][1])

    def problems(self) -> list[tuple[str, str]]:
        """Every problem of this config at once, as (setting name, message), so a form can show each beside its field."""
        m, t = self.model, self.train
        found: list[tuple[str, str]] = []
        if m.family not in FAMILIES:
            found.append(("family", f"family must be one of {FAMILIES}"))
        for name in (
            "vocab_size",
            "n_embd",
            "n_head",
            "n_layer",
            "intermediate_size",
            "h_cycles",
            "l_cycles",
            "block_size",
        ):
            if getattr(m, name) < 1:
                found.append((name, f"{name} must be at least 1"))
            # Far above any model this tool trains; below them a typo cannot ask for a terabyte model.
            elif getattr(m, name) > MODEL_LIMITS[name]:
                found.append((name, f"{name} must be at most {MODEL_LIMITS[name]:,}"))
        if m.n_embd >= 1 and m.n_head >= 1:
            if m.n_embd % m.n_head:
                found.append(("n_head", f"n_embd must be divisible by n_head ({m.n_embd} / {m.n_head} is not whole)"))
            elif (m.n_embd // m.n_head) % 2:
                found.append(("n_head", "head size (n_embd / n_head) must be even for RoPE"))
        if not 0 <= m.dropout < 1:
            found.append(("dropout", f"dropout must be at least 0 and below 1 (a probability), not {m.dropout}"))
        for name in TRAIN_AT_LEAST_ONE:
            if getattr(t, name) < 1:
                found.append((name, f"{name} must be at least 1"))
        for name, most in TRAIN_LIMITS.items():
            if getattr(t, name) > most:
                found.append((name, f"{name} must be at most {most:,}"))
        if t.seed < 0:
            found.append(("seed", "seed must be 0 or more"))
        if not t.learning_rate > 0:
            found.append(("learning_rate", "learning_rate must be positive"))
        for name in ("warmup_steps", "refinement_warmup"):
            if getattr(t, name) < 0:
                found.append((name, f"{name}: warm-up steps cannot be negative"))
        if t.device not in ("auto", "cpu", "cuda", "mps"):
            found.append(("device", "device must be auto, cpu, cuda or mps"))
        if t.compile not in COMPILE_CHOICES:
            found.append(("compile", "compile must be auto, on or off"))
        if t.nnodes > 1 and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", t.rdzv_endpoint.strip()):
            found.append(("rdzv_endpoint", "several nodes need a rendezvous address host:port (the first node's)"))
        if t.keep_last_checkpoints < 0:
            found.append(("keep_last_checkpoints", "keep_last_checkpoints cannot be negative (0 keeps all)"))
        weight_names = ("plan_loss_weight", "code_loss_weight", "refinement_loss_weight", "other_loss_weight")
        negative = [name for name in weight_names if getattr(t, name) < 0]
        for name in negative:
            found.append((name, f"{name}: loss weights must be non-negative"))
        if not negative and sum(getattr(t, name) for name in weight_names) == 0:
            found.append(("plan_loss_weight", "loss weights must be non-negative and not all zero"))
        return found


def _parse_value(name: str, raw: Any, kind: type) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(float(raw)) if raw.strip().lower().count("e") else int(raw)
        if kind is float:
            return float(raw)
        return raw.strip()
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a valid {kind.__name__}") from None


def preset(family: str, name: str, vocab_size: int = 50_000) -> RunConfig:
    """The `seed` preset follows the seed's tables; `tiny` trains end to end on a 2-core CPU in minutes.

    `gpt` gets as many decoder blocks as the `hrm` has physical blocks (2 stacks x n_layer), so
    the two families match in parameter count at each preset."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    if name == "seed":
        model = ModelConfig(family=family, vocab_size=vocab_size)
        train = TrainConfig()
    elif name == "tiny":
        model = ModelConfig(
            family=family,
            vocab_size=vocab_size,
            n_embd=64,
            n_head=4,
            n_layer=1,
            intermediate_size=176,
            h_cycles=2,
            l_cycles=1,
            block_size=256,
        )
        train = TrainConfig(
            learning_rate=2e-3,
            batch_size=8,
            gradient_accumulation_steps=1,
            max_steps=300,
            warmup_steps=20,
            save_steps=100,
            eval_steps=50,
            logging_steps=5,
            refinement_warmup=100,
            validation_frequency=100,
            eval_iters=4,
            sample_count=2,
            sample_max_tokens=96,
            fp16=False,
        )
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")
    if family == "gpt":
        model = replace(model, n_layer=model.n_layer * 2)
    config = RunConfig(model=model, train=train)
    config.validate()
    return config
