"""Training records before and after declaration scoping: size, budget fit, section shares, duplicates, speed.

Usage: .venv/bin/python bench/records.py [--corpus sample] [--corpus PRS.pkl | --corpus CLONE_DIR ...]
                                        [--budget 1024] [--processes 2] [--vocab 8000] [--before 8309861]

For each corpus (the bundled sample story, a pickle of PRRecords, or a git clone read with the git
import's own reader, corpus.gitimport.iter_pull_requests), PRs the quality rules block are dropped,
then both serializers run on the same PRs with the same tokenizer:
- "before" is the code at git commit `--before` (whole changed files), run from a git worktree of
  that commit in a subprocess (its own corpus/ and training/ modules); its near-duplicate text is
  that commit's `dedupe_text` (the PR's Go files' paths and texts), copied here because it lived in
  a Django module;
- "after" is this tree: records cut to the budget at dataset build, near duplicates on the change.
Figures: tokens per record (p50/p95, records as the dataset writes them, `<s>`/`</s>` included), the
share of PRs whose record fits the budget whole, the plan and code shares of all tokens, the share of
PRs excluded as exact or near duplicates, the build's records/s, and its tokens/s as a share of raw
SentencePiece encoding of the same record texts with the same number of processes (started and
loading the model, as a build's are; and, second figure, already warm). Both builds run
without controller examples, so they tokenize the same kind of text. The tokenizer is trained once
on a sample of both formats' texts. This machine's CPUs are shared: throughput is measured under
contention, so compare the two columns of one run rather than runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


def _project(root: Path) -> None:
    sys.path.insert(0, str(root))


# --- shared helpers (each run imports the project modules of its own tree) -------------------------


def _percentile(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_encoder = {}


def _start_encoder(model: str) -> None:
    from training.tokenizer import Tokenizer

    _encoder["t"] = Tokenizer(Path(model))


def _encode_count(texts: list[str]) -> int:
    return sum(len(_encoder["t"].encode(text)) for text in texts)


def raw_encode_seconds(model: Path, texts: list[str], processes: int) -> tuple[float, float, int]:
    """Seconds to encode `texts` with bare SentencePiece calls on `processes` processes, counting the
    processes' start and model load (as a build must) and without it (warm), and the tokens."""
    chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    cold_start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes, _start_encoder, (str(model),)) as pool:
        tokens = sum(pool.map(_encode_count, chunks))
        cold = time.perf_counter() - cold_start
        started = time.perf_counter()
        pool.map(_encode_count, chunks)
        warm = time.perf_counter() - started
    return cold, warm, tokens


def blocked(pr) -> bool:
    from corpus import quality

    blocking = ("empty title", "no Go changes", "only vendored files", "only generated files", "very large change")
    return any(flag.startswith(blocking) for flag in quality.quality_flags(pr))


def duplicates(keys: list[str], texts: list[str]) -> set[str]:
    """Keys excluded as exact or near duplicates (oldest kept), as the corpus rules judge them."""
    from corpus import quality

    items = {key: text for key, text in zip(keys, texts, strict=True) if text}
    exact = quality.exact_duplicates(items)
    near = quality.near_duplicates({key: text for key, text in items.items() if key not in exact})
    return set(exact) | set(near)


# --- one side's run ----------------------------------------------------------------------------------


def run_side(mode: str, prs_path: Path, model: Path, out: Path, budget: int, processes: int) -> dict:
    """Serialize, judge duplicates, build the dataset and measure; "before" runs inside the old tree."""
    from training.dataset import build_dataset, encode_record
    from training.tokenizer import Tokenizer

    prs = pickle.loads(prs_path.read_bytes())
    prs.sort(key=lambda pr: (pr.merged_at.isoformat() if pr.merged_at else "", pr.repo, pr.number))
    keys = [f"{pr.repo}#{pr.number}" for pr in prs]
    tokenizer = Tokenizer(model)
    started = time.perf_counter()
    if mode == "before":
        from corpus.serialize import code_files, serialize

        records = [serialize(pr) for pr in prs]
        dedupe = ["\n".join(f"{f.path}\n{f.before or ''}\n{f.after or ''}" for f in code_files(pr)) for pr in prs]
    else:
        from corpus.plans import extract_plan
        from corpus.serialize import build_parts, change_text

        parts = [build_parts(pr, extract_plan(pr)) for pr in prs]
        dedupe = [change_text(p) for p in parts]
    ingest_seconds = time.perf_counter() - started
    excluded = duplicates(keys, dedupe)
    kept = [i for i, key in enumerate(keys) if key not in excluded]

    if mode == "before":
        items = [(prs[i].repo, records[i]) for i in kept]
        texts = [records[i].text for i in kept]
        lengths = [len(encode_record(tokenizer, records[i]).ids) for i in kept]
        fit_whole = sum(length <= budget for length in lengths) / max(1, len(lengths))
    else:
        from training.dataset import DatasetItem, calibrated_chars_per_token, fit_records

        items = [
            DatasetItem(
                repo=prs[i].repo,
                parts=parts[i],
                key=keys[i],
                merged_at=prs[i].merged_at.isoformat() if prs[i].merged_at else "",
                format_version=2,
            )
            for i in kept
        ]
        ratio = calibrated_chars_per_token(tokenizer)
        texts, lengths, whole = [], [], 0
        for i in kept:
            pairs, reasons = fit_records(tokenizer, parts[i], budget, ratio)
            texts += [record.text for record, _ in pairs]
            lengths += [len(encoded.ids) for _, encoded in pairs]
            whole += "fit whole" in reasons
        fit_whole = whole / max(1, len(kept))
    build_args = {"processes": processes, "seq_len": budget - 1, "augment": False}
    if mode != "before":
        build_args["budget"] = budget
    started = time.perf_counter()
    stats = build_dataset(items, model, out, **build_args)
    build_seconds = time.perf_counter() - started
    build_tokens = sum(split.tokens for split in stats.splits.values())
    build_records = sum(split.records for split in stats.splits.values())
    raw_seconds, warm_seconds, raw_tokens = raw_encode_seconds(model, texts, processes)
    return {
        "prs": len(prs),
        "near_duplicate_share": len(excluded) / max(1, len(prs)),
        "ingest_prs_per_s": len(prs) / ingest_seconds,
        "records": len(lengths),
        "tokens_p50": _percentile(lengths, 0.5),
        "tokens_p95": _percentile(lengths, 0.95),
        "fit_share": sum(length <= budget for length in lengths) / max(1, len(lengths)),
        "fit_whole_share": fit_whole,
        "plan_share": stats.section_share["plan"],
        "code_share": stats.section_share["code"],
        "build_records_per_s": build_records / build_seconds,
        "build_tokens_per_s": build_tokens / build_seconds,
        "raw_tokens_per_s": raw_tokens / raw_seconds,
        "speed_share": (build_tokens / build_seconds) / (raw_tokens / raw_seconds),
        "warm_raw_tokens_per_s": raw_tokens / warm_seconds,
        "warm_speed_share": (build_tokens / build_seconds) / (raw_tokens / warm_seconds),
    }


# --- orchestration -------------------------------------------------------------------------------------


def load_prs(spec: str) -> tuple[str, list]:
    if spec == "sample":
        from corpus.sample.story import sample_story

        return "sample", [pr for _, pulls in sample_story() for pr in pulls]
    path = Path(spec)
    if path.suffix == ".pkl":
        return path.stem, pickle.loads(path.read_bytes())
    from corpus.gitimport import iter_pull_requests

    return path.name, list(iter_pull_requests(path, f"local/{path.name}"))


def before_tree(commit: str) -> Path:
    tree = Path(tempfile.gettempdir()) / f"hrgc-records-before-{commit[:12]}"
    if not (tree / "corpus" / "serialize.py").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True)
    return tree


def hostile_timings() -> list[tuple[str, float]]:
    """Seconds to plan and cut a PR that adds one `func init()` to a file of N of them (issue 14 item 8:
    numbering repeated names and pairing renames used to be quadratic: 75 s at 16,000)."""
    from corpus.plans import extract_plan
    from corpus.records import FileRecord, PRRecord
    from corpus.serialize import build_parts

    rows = []
    for count in (16_000, 70_000):
        before = "package p\n\n" + "func init() {}\n" * count
        after = before + "func init() { println(1) }\n"
        pr = PRRecord(repo="o/r", number=1, title="x", files=[FileRecord(path="p.go", before=before, after=after)])
        started = time.perf_counter()
        build_parts(pr, extract_plan(pr))
        rows.append((f"{count:,} func init() ({len(after) / 1e6:.2f} MB)", time.perf_counter() - started))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", help="sample, a .pkl of PRRecords, or a git clone")
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--before", default="8309861", help="git commit of the whole-file serializer")
    parser.add_argument("--side", choices=("before", "after"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--prs", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # a child: one side, in its own tree
        _project(Path(args.root))
        result = run_side(args.side, Path(args.prs), Path(args.model), Path(args.out), args.budget, args.processes)
        print(json.dumps(result))
        return

    _project(ROOT)
    from corpus.serialize import code_files, serialize
    from training.tokenizer import VocabularyTooLarge, train_tokenizer

    old_tree = before_tree(args.before)
    rows = []
    for spec in args.corpus or ["sample"]:
        name, prs = load_prs(spec)
        prs = [pr for pr in prs if not blocked(pr)]
        work = Path(tempfile.mkdtemp(prefix=f"records-{name}-"))
        prs_path = work / "prs.pkl"
        prs_path.write_bytes(pickle.dumps(prs))
        # Both formats' text: scoped records and the whole files the old records held.
        texts = [serialize(pr).text for pr in prs][:3000]
        texts += [f.after for pr in prs[:3000] for f in code_files(pr) if f.after]
        try:
            model = train_tokenizer(texts, work / "tok", vocab_size=args.vocab).model_path
        except VocabularyTooLarge as error:
            model = train_tokenizer(texts, work / "tok", vocab_size=error.max_size).model_path
        results = {}
        for side, root in (("before", old_tree), ("after", ROOT)):
            command = [
                sys.executable,
                str(HERE),
                "--side",
                side,
                "--root",
                str(root),
                "--prs",
                str(prs_path),
                "--model",
                str(model),
                "--out",
                str(work / f"ds-{side}"),
                "--budget",
                str(args.budget),
                "--processes",
                str(args.processes),
            ]
            env = {**os.environ, "PYTHONPATH": str(root)}
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, check=False)
            if done.returncode:
                sys.exit(f"{side} failed:\n{done.stderr[-3000:]}")
            results[side] = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((name, len(prs), results))

    print("hostile file, plan + record parts of a PR adding one func init():")
    for label, seconds in hostile_timings():
        print(f"  {label:40} {seconds:6.2f} s")
    print(f"budget {args.budget} tokens, {args.processes} processes, vocabulary {args.vocab} (CPU shared: contended)")
    figures = [
        ("records", "records", "{:,}"),
        ("tokens/record p50", "tokens_p50", "{:,}"),
        ("tokens/record p95", "tokens_p95", "{:,}"),
        ("records within budget", "fit_share", "{:.1%}"),
        ("PRs fit whole", "fit_whole_share", "{:.1%}"),
        ("plan share of tokens", "plan_share", "{:.1%}"),
        ("code share of tokens", "code_share", "{:.1%}"),
        ("PRs excluded as duplicates", "near_duplicate_share", "{:.1%}"),
        ("ingest PRs/s (plan+record)", "ingest_prs_per_s", "{:,.1f}"),
        ("build records/s", "build_records_per_s", "{:,.1f}"),
        ("build tokens/s", "build_tokens_per_s", "{:,.0f}"),
        ("raw SentencePiece tokens/s", "raw_tokens_per_s", "{:,.0f}"),
        ("build / raw tokens/s", "speed_share", "{:.0%}"),
        ("raw, processes already warm", "warm_raw_tokens_per_s", "{:,.0f}"),
        ("build / warm raw tokens/s", "warm_speed_share", "{:.0%}"),
    ]
    for name, count, results in rows:
        print(f"\n{name}: {count} pull requests after the quality rules")
        print(f"  {'':30} {'before':>12} {'after':>12}")
        for label, key, fmt in figures:
            print(f"  {label:30} {fmt.format(results['before'][key]):>12} {fmt.format(results['after'][key]):>12}")


if __name__ == "__main__":
    main()
