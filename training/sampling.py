"""Periodic sample generations during training: held-out tasks through the refinement loop, and how many parse."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from corpus import golang
from training.data import read_meta
from training.dataset import TOKENIZER_FILE
from training.hrm.config import TrainConfig
from training.hrm.generate import TorchTokenSource, generate_with_refinement
from training.tokenizer import Tokenizer

# Held-out records are looked for in the first tokens of the split only: enough for a handful of prompts.
SCAN_TOKENS = 4_000_000
_REPO = re.compile(r"<REPO> ([^\n]*)\n")
_TITLE = re.compile(r"<PR_TITLE> ([^\n]*)\n")
_BODY = re.compile(r"<PR_BODY> (.*?)\n*(?:<PLAN>|<CONTEXT>|$)", re.DOTALL)
_FILE = re.compile(r'<FILE path="([^"]*)">')
_BEFORE = re.compile(r"<BEFORE>\n(.*?)</BEFORE>", re.DOTALL)


@dataclass
class SamplePrompt:
    """What the refinement loop needs of a held-out record: the task, without its answer."""

    repo: str
    title: str
    body: str
    path: str
    code_before: str


def prompt_from_text(text: str) -> SamplePrompt | None:
    """The task fields of one serialized record's text; None when it has no title (an augmented fragment)."""
    title = _TITLE.search(text)
    if not title:
        return None
    repo, body, path, before = _REPO.search(text), _BODY.search(text), _FILE.search(text), _BEFORE.search(text)
    return SamplePrompt(
        repo=repo.group(1).strip() if repo else "",
        title=title.group(1).strip(),
        body=body.group(1).strip() if body else "",
        path=path.group(1) if path else "main.go",
        code_before=before.group(1) if before else "",
    )


def held_out_prompts(dataset_dir: Path, count: int) -> list[SamplePrompt]:
    """The first `count` distinct tasks of the validation split (the train split when validation is empty)."""
    dataset_dir = Path(dataset_dir)
    meta = read_meta(dataset_dir)
    tokenizer = Tokenizer(dataset_dir / TOKENIZER_FILE)
    prompts: list[SamplePrompt] = []
    seen: set[str] = set()
    for split in ("val", "train"):
        path = dataset_dir / f"{split}.bin"
        if not path.exists() or path.stat().st_size == 0:
            continue
        tokens = np.memmap(path, dtype=meta["dtype"], mode="r")[:SCAN_TOKENS]
        starts = np.flatnonzero(tokens == meta["bos_id"])
        ends = np.flatnonzero(tokens == meta["eos_id"])
        for start in starts.tolist():
            after = ends[ends > start]
            if not len(after):
                break
            prompt = prompt_from_text(tokenizer.decode(tokens[start + 1 : int(after[0])].tolist()))
            if prompt and prompt.title not in seen:
                seen.add(prompt.title)
                prompts.append(prompt)
                if len(prompts) >= count:
                    return prompts
        if prompts:
            return prompts
    return prompts


def generate_samples(
    model: torch.nn.Module, tokenizer: Tokenizer, prompts: list[SamplePrompt], train: TrainConfig, seed: int
) -> dict:
    """Each prompt through plan → code → parse → refine; returns the parse share and the samples."""
    samples = []
    attempts = attempts_parsing = 0
    for index, prompt in enumerate(prompts):
        source = TorchTokenSource(model, tokenizer, temperature=0.8, top_k=50, seed=seed + index)
        done: dict = {}
        for event in generate_with_refinement(
            source,
            title=prompt.title,
            body=prompt.body,
            code_before=prompt.code_before,
            repo=prompt.repo,
            path=prompt.path,
            max_iterations=train.max_refinement_iterations,
            max_plan_tokens=max(16, train.sample_max_tokens // 2),
            max_code_tokens=train.sample_max_tokens,
            validate=golang.attempt_errors,  # the one notion of "parses": an empty attempt does not
        ):
            if event["type"] == "iteration":
                attempts += 1
                attempts_parsing += bool(event["syntax_ok"])
            elif event["type"] == "done":
                done = event
        code = done.get("code", "")
        samples.append(
            {
                "title": prompt.title,
                "plan": done.get("plan", ""),
                "code": code,
                "syntax_ok": golang.attempt_parses(code),
                "iterations": done.get("iterations", 0),
                "stopped": done.get("stopped", ""),
            }
        )
    parsing = sum(sample["syntax_ok"] for sample in samples)
    return {
        "parse_share": parsing / len(samples) if samples else None,
        "attempt_parse_share": attempts_parsing / attempts if attempts else None,
        "samples": samples,
    }


def make_sample_fn(dataset_dir: Path, train: TrainConfig) -> Callable[[torch.nn.Module, int], dict] | None:
    """The engine's sample hook for this dataset; None when it holds no usable held-out task."""
    if train.sample_count < 1:
        return None
    prompts = held_out_prompts(dataset_dir, train.sample_count)
    if not prompts:
        return None
    tokenizer = Tokenizer(Path(dataset_dir) / TOKENIZER_FILE)

    def sample(model: torch.nn.Module, step: int) -> dict:
        return generate_samples(model, tokenizer, prompts, train, seed=train.seed + step)

    return sample
