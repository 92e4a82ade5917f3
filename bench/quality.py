"""Which family is better at equal tokens: trains `hrm` and `gpt` (`tiny`) on one dataset for the same
tokens, evaluates both on one suite with the evaluation code, and prints every metric side by side with
the time each stage took.

    .venv/bin/python bench/quality.py                                   # the sample corpus
    .venv/bin/python bench/quality.py --repo /work/.mirror/gin-gonic+gin/repo   # a real repository's history
    .venv/bin/python bench/quality.py --tokens 1000000 --tasks 40 --seeds 1,2

The pipeline is the dashboard's, without the database: PRs → plans and record parts → SentencePiece →
dataset (controller examples included, split by repository, or by merge time with one repository) →
evaluation.families' matched configs (gpt's SwiGLU width evens parameter counts; max_steps × tokens per
step equal; the same seed) → training.engine → evaluation.suites' tasks from the validation split →
evaluation.scoring.score_task through evaluation.scorers.TorchScorer → evaluation.metrics.aggregate.
`go vet` runs with --repo (the history is at hand); on the sample it is absent, never estimated.
With several seeds, each metric is the mean ± standard deviation across seeds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evaluation import families  # noqa: E402
from training.hrm.config import RunConfig  # noqa: E402
from training.hrm.model import build_model  # noqa: E402

FAMILIES = ("hrm", "gpt")
# (key, label, lower is better, a share shown in per cent) in the order the leaderboard shows them.
METRICS = (
    ("code_loss", "code loss (nats/token)", True, False),
    ("perplexity", "perplexity", True, False),
    ("token_accuracy", "token accuracy", False, True),
    ("exact_match", "exact match", False, True),
    ("edit_similarity", "edit similarity", False, True),
    ("parse_first", "parses at the first attempt", False, True),
    ("parse_final", "parses after refinement", False, True),
    ("refinement_lift_points", "refinement lift (points)", False, False),
    ("mean_attempts", "mean attempts", True, False),
    ("gofmt_ok", "gofmt accepts", False, True),
    ("vet_ok", "go vet passes", False, True),
)


def parameters(config: RunConfig) -> int:
    with torch.device("meta"):
        return int(build_model(config.model).num_parameters())


def load_prs(repo: str | None) -> tuple[str, list]:
    if repo is None:
        from corpus.sample.story import sample_story

        return "sample corpus", [pr for _, pulls in sample_story() for pr in pulls]
    from corpus.gitimport import iter_pull_requests

    path = Path(repo)
    name = path.name if path.name != "repo" else path.parent.name.replace("+", "/")
    return name, list(iter_pull_requests(path, name if "/" in name else f"local/{name}"))


def build_dataset_dir(prs: list, work: Path, vocab: int, seq_len: int) -> Path:
    from corpus.plans import extract_plan
    from corpus.serialize import build_parts, serialize
    from training.dataset import DatasetItem, build_dataset
    from training.record_index import write_record_index
    from training.tokenizer import VocabularyTooLarge, train_tokenizer

    texts = [serialize(pr).text for pr in prs]
    try:
        model = train_tokenizer(texts, work / "tok" / "tokenizer", vocab_size=vocab).model_path
    except VocabularyTooLarge as error:
        model = train_tokenizer(texts, work / "tok" / "tokenizer", vocab_size=error.max_size).model_path
    items = [
        DatasetItem(
            repo=pr.repo,
            parts=build_parts(pr, extract_plan(pr)),
            key=f"{pr.repo}#{pr.number}",
            merged_at=pr.merged_at.isoformat() if pr.merged_at else "",
            format_version=2,
        )
        for pr in prs
    ]
    out = work / "dataset"
    build_dataset(items, model, out, processes=2, seq_len=seq_len)
    write_record_index(out)
    return out


def train(config: RunConfig, dataset_dir: Path, out: Path) -> tuple[Path, float | None]:
    from training import engine

    result = engine.train(config, dataset_dir, out, report=lambda kind, payload: None, resume=False)
    return result.checkpoint_path, result.final_val_loss


def evaluate(checkpoint: Path, dataset_dir: Path, tasks: list, prs_by_title: dict, repo: str | None, args) -> dict:
    from evaluation.metrics import aggregate
    from evaluation.scorers import TorchScorer
    from evaluation.scoring import score_task

    if args.threads:
        torch.set_num_threads(args.threads)
    scorer = TorchScorer.from_checkpoint(checkpoint, dataset_dir / "tokenizer.model")
    rows = []
    for task in tasks:
        pr = prs_by_title.get((task.repo, task.title))
        vet = {}
        if repo and pr is not None and pr.base_commit and task.path:
            vet = {"git_dir": Path(repo), "base_commit": pr.base_commit, "path": task.path}
        rows.append(
            score_task(
                scorer,
                prompt=task.prompt,
                reference=task.reference,
                max_attempts=args.attempts,
                max_tokens=args.max_tokens,
                **vet,
            )
        )
    return aggregate(rows)


def cell(values: list[float], share: bool) -> str:
    if not values:
        return "—"
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
    if share:
        return f"{100 * mean:.1f} %" + (f" ± {100 * spread:.1f}" if spread is not None else "")
    return f"{mean:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", help="a git repository (bare or not) to train and evaluate on instead of the sample")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--tokens", type=int, default=None, help="training tokens per run (default: the preset's)")
    parser.add_argument("--seeds", default="1", help="comma-separated; one hrm and one gpt run per seed")
    parser.add_argument("--tasks", type=int, default=20, help="tasks of the suite")
    parser.add_argument("--vocab", type=int, default=None, help="tokenizer size (default 2000 sample, 8000 repo)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for training (0: torch's default)")
    parser.add_argument("--work", help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    work = Path(args.work or tempfile.mkdtemp(prefix="quality-"))
    work.mkdir(parents=True, exist_ok=True)
    stages: list[tuple[str, float]] = []

    def timed(label: str, fn, *a, **kw):
        started = time.perf_counter()
        value = fn(*a, **kw)
        stages.append((label, time.perf_counter() - started))
        print(f"  {label}: {stages[-1][1]:.1f} s", file=sys.stderr, flush=True)
        return value

    name, prs = timed("read pull requests", load_prs, args.repo)
    vocab = args.vocab or (8000 if args.repo else 2000)
    dataset_dir = timed("tokenizer + dataset", build_dataset_dir, prs, work, vocab, args.seq_len)
    from evaluation.suites import read_tasks
    from training.data import read_meta

    meta = read_meta(dataset_dir)
    tasks = timed("suite", read_tasks, dataset_dir, args.tasks)
    prs_by_title = {(pr.repo, pr.title): pr for pr in prs}
    tokens = args.tokens or families.default_tokens(args.preset, int(meta["vocab_size"]))
    results: dict[str, list[dict]] = {family: [] for family in FAMILIES}
    plan = None
    for seed in seeds:
        plan = families.plan_families(int(meta["vocab_size"]), args.preset, tokens=tokens, seed=seed, count=parameters)
        for family in FAMILIES:
            config = plan.configs[family].with_overrides({"num_threads": str(args.threads)})
            checkpoint, _ = timed(
                f"train {family} (seed {seed})", train, config, dataset_dir, work / f"{family}-{seed}"
            )
            metrics = timed(
                f"evaluate {family} (seed {seed})",
                evaluate,
                checkpoint,
                dataset_dir,
                tasks,
                prs_by_title,
                args.repo,
                args,
            )
            results[family].append(metrics)

    splits = meta.get("splits", {})
    print(f"\n## {name}: `{args.preset}` hrm vs gpt at {plan.tokens:,} training tokens each")
    print(
        f"\nParameters: hrm {plan.parameters['hrm']:,}, gpt {plan.parameters['gpt']:,} "
        f"({100 * plan.parameter_gap:.2f} % apart); {plan.max_steps:,} steps × {plan.tokens_per_step:,} tokens; "
        f"seeds {', '.join(map(str, seeds))}; vocabulary {int(meta['vocab_size']):,}; "
        f"dataset {splits.get('train', {}).get('tokens', 0):,} train / {splits.get('val', {}).get('tokens', 0):,} "
        f"validation tokens; suite of {len(tasks)} validation tasks; greedy, up to {args.attempts} attempts of "
        f"{args.max_tokens} tokens.\n"
    )
    rows = families.verdict(results, [(key, lower) for key, _, lower, _ in METRICS])
    print("| metric | hrm | gpt | better |")
    print("| --- | ---: | ---: | --- |")
    for (key, label, _, share), row in zip(METRICS, rows, strict=True):
        values = {family: [float(m[key]) for m in results[family] if m.get(key) is not None] for family in FAMILIES}
        better = row["winner"] or "—"
        if row["within_spread"]:
            better += " (within spread)"
        print(f"| {label} | {cell(values['hrm'], share)} | {cell(values['gpt'], share)} | {better} |")
    wins = {family: sum(row["winner"] == family for row in rows) for family in (*FAMILIES, "tie")}
    print(f"\nhrm better on {wins['hrm']} metric(s), gpt on {wins['gpt']}, tied on {wins['tie']}.\n")
    print("| stage | seconds |")
    print("| --- | ---: |")
    for label, seconds in stages:
        print(f"| {label} | {seconds:.1f} |")
    print(f"\nFiles: {work}")


if __name__ == "__main__":
    main()
