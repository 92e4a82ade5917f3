"""Helpers the export and runtime tests share (fixtures live in conftest.py): a small real tokenizer
and tiny models of both families."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from training.hrm.config import RunConfig, preset
from training.hrm.generate import task_prompt
from training.hrm.model import LanguageModel, build_model
from training.tokenizer import Tokenizer, train_tokenizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
WORDS = ["handle", "request", "server", "reader", "cache", "config", "buffer", "client", "value", "store"]


def fixture_sources() -> list[str]:
    # Bytes, not read_text(): universal newlines would turn the CRLF fixture into LF.
    return [path.read_bytes().decode("utf-8") for path in sorted(FIXTURES.glob("*.go"))]


def serialized_record(rng: random.Random, index: int) -> str:
    name, kind = rng.choice(WORDS), rng.choice(WORDS).title()
    code = (
        f"package {rng.choice(WORDS)}\n\n// {name.title()}{index} checks the {kind}.\n"
        f'func {name}{index}(r *{kind}) error {{\n\tif r == nil {{\n\t\treturn fmt.Errorf("nil")\n\t}}\n'
        f'\tfor i := 0; i < {index}; i++ {{\n\t\tr.{name}("  x  ")\n\t}}\n\treturn nil\n}}\n'
    )
    header, context = task_prompt(
        repo=f"owner/repo{index % 5}",
        title=f"Fix nil {name} in handler",
        body=f"Panics when the {kind} is nil.\n",
        path="x.go",
        code_before=code,
    )
    return (
        header
        + f"<STEP> <INTENT:FIX> <TARGET:func> {name}{index}\n</PLAN>\n"
        + context
        + f"<CODE>\n<AFTER>\n{code}</AFTER>\n</CODE>\n<VALIDATE>\n<SYNTAX_OK> true\n</VALIDATE>\n"
    )


def train_small_tokenizer(folder: Path) -> Tokenizer:
    """A real SentencePiece model, trained by the project's trainer on records and the Go fixtures."""
    rng = random.Random(3)
    texts = [serialized_record(rng, index) for index in range(150)] + fixture_sources()
    return Tokenizer(train_tokenizer(texts, folder / "tok", vocab_size=700).model_path)


def tiny_model(family: str, vocab_size: int) -> tuple[LanguageModel, RunConfig]:
    """The `tiny` preset with a fixed random init; HRM's z_L_init made non-zero so its mapping is tested."""
    torch.manual_seed(0)
    config = preset(family, "tiny", vocab_size=vocab_size)
    model = build_model(config.model)
    if family == "hrm":
        with torch.no_grad():
            model.z_L_init.normal_(0.0, 1.0)
    return model.eval(), config


def briefly_trained(family: str, tokenizer: Tokenizer, steps: int = 40) -> tuple[LanguageModel, RunConfig]:
    """`tiny_model` after 40 AdamW steps on records (about 2 s). A random init predicts nearly uniform
    logits whose top two differ by less than Q8_0's rounding, so only a model that has learnt
    something makes the Q8_0 top-1 check meaningful (and its logits reach trained magnitudes)."""
    model, config = tiny_model(family, tokenizer.vocab_size)
    rng = random.Random(1)
    ids = []
    for index in range(60):
        ids += [tokenizer.bos_id, *tokenizer.encode(serialized_record(rng, index)), tokenizer.eos_id]
    data, length = torch.tensor(ids), 128
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(data) - length - 1, (8,), generator=generator).tolist()
        inputs = torch.stack([data[s : s + length] for s in starts])
        targets = torch.stack([data[s + 1 : s + length + 1] for s in starts])
        _, loss, _ = model(inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), config
