"""The evaluation's metrics: per task (exact match, edit similarity) and over a suite (`aggregate`).

A metric a task could not measure is None there and left out of the aggregate, never counted as
zero; an aggregate no task measured is None. Domain code: no Django here."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein

from corpus.code_section import code_of

__all__ = ["aggregate", "code_of", "edit_similarity", "exact_match", "normalized"]


def normalized(code: str) -> str:
    """The code with trailing whitespace cut from every line (CRLF included) and blank lines removed at
    both ends: editors and the format's blocks differ there without the code differing."""
    lines = [line.rstrip() for line in code.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def exact_match(output: str, reference: str) -> bool:
    """True when the generated code equals the reference after `normalized` (line-end whitespace)."""
    return normalized(output) == normalized(reference)


def edit_similarity(output: str, reference: str) -> float:
    """Character-level normalized Levenshtein similarity from RapidFuzz
    (`rapidfuzz.distance.Levenshtein.normalized_similarity`): 1 - distance / max(len(a), len(b)),
    where the distance counts single-character insertions, deletions and substitutions, on the
    `normalized` texts. 1.0 for identical texts (two empty ones included), 0.0 when nothing is shared."""
    return float(Levenshtein.normalized_similarity(normalized(output), normalized(reference)))


def _share(values: Iterable[bool | None]) -> float | None:
    measured = [bool(value) for value in values if value is not None]
    return sum(measured) / len(measured) if measured else None


def _mean(values: Iterable[float | None]) -> float | None:
    measured = [float(value) for value in values if value is not None]
    return sum(measured) / len(measured) if measured else None


def aggregate(rows: list[dict]) -> dict:
    """The suite's metrics (the Evaluation.metrics dict) from TaskResult-shaped dicts.

    - code_loss: nats per reference token over every task's tokens (a task weighs by its tokens);
      perplexity: exp(code_loss); token_accuracy: share of reference tokens predicted by argmax.
    - exact_match, parse_first, parse_final, gofmt_ok, vet_ok: shares of the tasks that measured them;
      edit_similarity: the mean over those tasks.
    - refinement_lift_points: 100 x (parse_final - parse_first) over the tasks that measured both;
      mean_attempts: attempts per task that generated. n_tasks: rows given; vet_tasks: rows with vet."""
    scored = [row for row in rows if row.get("code_loss") is not None and row.get("code_tokens")]
    tokens = sum(int(row["code_tokens"]) for row in scored)
    code_loss = sum(float(row["code_loss"]) * int(row["code_tokens"]) for row in scored) / tokens if tokens else None
    both = [row for row in rows if row.get("parses_first") is not None and row.get("parses_final") is not None]
    first, final = _share(row["parses_first"] for row in both), _share(row["parses_final"] for row in both)
    generated = [len(row["attempts"]) for row in rows if row.get("attempts")]
    vetted = [row.get("vet_ok") for row in rows if row.get("vet_ok") is not None]
    return {
        "code_loss": code_loss,
        "perplexity": math.exp(min(code_loss, 700.0)) if code_loss is not None else None,  # exp overflows past 709
        "token_accuracy": sum(int(row.get("correct_tokens") or 0) for row in scored) / tokens if tokens else None,
        "exact_match": _share(row.get("exact_match") for row in rows),
        "edit_similarity": _mean(row.get("edit_similarity") for row in rows),
        "parse_first": _share(row.get("parses_first") for row in rows),
        "parse_final": _share(row.get("parses_final") for row in rows),
        "refinement_lift_points": 100.0 * (final - first) if both else None,
        "mean_attempts": sum(generated) / len(generated) if generated else None,
        "gofmt_ok": _share(row.get("gofmt_ok") for row in rows),
        "vet_ok": _share(vetted),
        "vet_tasks": len(vetted),
        "n_tasks": len(rows),
    }
