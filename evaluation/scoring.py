"""One task scored by one model: teacher-forced loss on the reference, then greedy generation through the
refinement loop and every check of the kept code. Returns a TaskResult-shaped dict; None means absent.

Composes the evaluation domain API (metrics, gotools, scorers); no Django here."""

from __future__ import annotations

import time
from pathlib import Path

from evaluation import gotools, metrics


def kept_attempt(attempts: list[dict]) -> dict | None:
    """The attempt whose code is kept: the last that parsed, else the last."""
    parsing = [attempt for attempt in attempts if attempt.get("parses")]
    return parsing[-1] if parsing else (attempts[-1] if attempts else None)


def score_task(
    scorer,
    *,
    prompt: str,
    reference: str,
    max_attempts: int,
    max_tokens: int,
    git_dir: Path | None = None,
    base_commit: str = "",
    path: str = "",
) -> dict:
    """Every metric of one task (module docstring). `git_dir` and `base_commit` make `go vet` possible."""
    began = time.monotonic()
    loss_sum, tokens, correct = scorer.teacher_forced(prompt, reference)
    attempts = scorer.generate(prompt, max_attempts=max_attempts, max_tokens=max_tokens)
    kept = kept_attempt(attempts)
    output = metrics.code_of(kept["code"]) if kept else ""
    expected = metrics.code_of(reference)
    row = {
        "code_loss": loss_sum / tokens if tokens else None,
        "code_tokens": tokens,
        "correct_tokens": correct,
        "attempts": attempts,
        "output": output,
        "exact_match": metrics.exact_match(output, expected) if kept else None,
        "edit_similarity": metrics.edit_similarity(output, expected) if kept else None,
        "parses_first": bool(attempts[0]["parses"]) if attempts else None,
        "parses_final": bool(kept["parses"]) if kept else None,
        "gofmt_ok": gotools.gofmt_accepts(output) if kept else None,
        "vet_ok": None,
        "vet_output": "",
    }
    if kept and git_dir is not None and base_commit and path:
        row["vet_ok"], row["vet_output"] = gotools.typecheck(git_dir, base_commit, path, output)
    row["seconds"] = time.monotonic() - began
    return row
