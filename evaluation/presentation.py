"""How the evaluation metrics read, in the command's table and on the pages: labels and formatting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# (key of Evaluation.metrics as metrics.aggregate writes it, label)
METRIC_ROWS = (
    ("code_loss", "code loss (nats/token)"),
    ("perplexity", "perplexity"),
    ("token_accuracy", "next-token accuracy"),
    ("exact_match", "exact match"),
    ("edit_similarity", "edit similarity"),
    ("parse_first", "parses, first attempt"),
    ("parse_final", "parses, after refinement"),
    ("refinement_lift_points", "refinement lift (points)"),
    ("mean_attempts", "mean attempts"),
    ("gofmt_ok", "gofmt accepts"),
    ("vet_ok", "type-checks (go vet)"),
    ("n_tasks", "tasks"),
)
SHARES = {"token_accuracy", "exact_match", "parse_first", "parse_final", "gofmt_ok", "vet_ok"}


def metric_text(key: str, value) -> str:
    """A metric as the table shows it; "absent" when it could not be measured (never a made-up zero)."""
    if value is None:
        return "absent"
    if key in SHARES:
        return f"{100 * value:.1f}%"
    if key == "n_tasks":
        return f"{int(value)}"
    if key == "refinement_lift_points":
        return f"{value:+.1f}"
    if key == "perplexity":
        return f"{value:.2f}" if value < 1e6 else f"{value:.3g}"
    return f"{value:.3f}" if key != "mean_attempts" else f"{value:.2f}"


def vet_absent_note(reasons: Iterable[str], tasks: int) -> str:
    """Why `go vet` gave no verdict, from the reasons of the tasks it gave none: the commonest one's first line.
    Empty when every task had a verdict."""
    counts = Counter(reason.strip().splitlines()[0] for reason in reasons if reason.strip())
    if not counts:
        return ""
    reason, _ = counts.most_common(1)[0]
    return f"go vet absent for {counts.total()} of {tasks} tasks{': most often' if len(counts) > 1 else ':'} {reason}"


def diff_lines(reference: str, output: str) -> list[tuple[str, str]]:
    """A unified diff from the reference code to the model's output as (kind, line) pairs for the page:
    kind is "add", "del", "hunk" or "" (context)."""
    import difflib

    lines = []
    diff = difflib.unified_diff(reference.splitlines(), output.splitlines(), "reference", "output", lineterm="", n=3)
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "")
        lines.append((kind, line))
    return lines
