"""Benchmark dataset builds: tokens per second and peak memory with one and with two processes.

Run: .venv/bin/python bench/dataset.py [--records 3000] [--vocab 4000] [--no-augment]
Makes a synthetic corpus of serialized Go pull requests, trains a tokenizer once, then builds the
dataset with each process count and prints a table. Peak memory is the largest resident set of
the whole process tree (this process and its workers), sampled every 20 ms with psutil; without
psutil it falls back to getrusage peaks (this process plus the largest worker, over its lifetime).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus.records import SerializedRecord, Span
from training.dataset import build_dataset
from training.tokenizer import train_tokenizer

WORDS = (
    "server",
    "handler",
    "request",
    "cache",
    "store",
    "config",
    "client",
    "buffer",
    "reader",
    "token",
    "session",
    "queue",
    "worker",
    "route",
    "metric",
    "record",
    "stream",
    "batch",
    "index",
    "limit",
)
TYPES = ("string", "int", "[]byte", "error", "bool", "time.Duration", "map[string]int", "*Config")


def go_file(rng: random.Random) -> str:
    """A plausible Go file: package, imports, a struct, and a few methods with loops and errors."""
    noun = rng.choice(WORDS)
    kind = noun.title()
    fields = "".join(f"\t{rng.choice(WORDS).title()}{i} {rng.choice(TYPES)}\n" for i in range(rng.randint(2, 6)))
    methods = []
    for i in range(rng.randint(2, 6)):
        other = rng.choice(WORDS)
        methods.append(
            f"// {other.title()}{i} {rng.choice(('updates', 'checks', 'loads', 'closes'))} the {other}.\n"
            f"func (s *{kind}) {other.title()}{i}(ctx context.Context, {other} {rng.choice(TYPES)}) error {{\n"
            f'\tif s == nil {{\n\t\treturn fmt.Errorf("{noun}: nil receiver in {other.title()}{i}")\n\t}}\n'
            f"\tfor i := 0; i < {rng.randint(2, 64)}; i++ {{\n"
            f"\t\tif err := s.{rng.choice(WORDS)}(ctx, i); err != nil {{\n\t\t\treturn err\n\t\t}}\n\t}}\n"
            f"\treturn nil\n}}\n"
        )
    return (
        f'package {noun}\n\nimport (\n\t"context"\n\t"fmt"\n)\n\n'
        f"// {kind} holds the {noun} state.\ntype {kind} struct {{\n{fields}}}\n\n" + "\n".join(methods)
    )


def serialized_record(rng: random.Random, repo: str, number: int) -> SerializedRecord:
    before = go_file(rng)
    after = before.replace("return nil\n", "return s.flush(ctx)\n", 1)
    target = rng.choice(WORDS)
    pieces = [
        (
            "other",
            (
                f"<REPO> {repo}\n<PR_TITLE> Fix {target} handling (#{number})\n"
                f"<PR_BODY> This fixes a panic when the {target} is nil and flushes the {rng.choice(WORDS)}.\n\n"
            ),
        ),
        (
            "plan",
            (
                f"<PLAN>\n<STEP> <INTENT:FIX> Guard the {target}\n<STEP> <TARGET:func> {target}() in {target}.go\n"
                "<STEP> <INTENT:ADD> Flush before returning\n</PLAN>\n"
            ),
        ),
        ("other", f'\n<CONTEXT>\n<FILE path="{target}.go">\n<BEFORE>\n{before}</BEFORE>\n</FILE>\n\n'),
        ("code", f"<CODE>\n<AFTER>\n{after}</AFTER>\n</CODE>\n"),
        ("other", "\n"),
        ("validate", "<VALIDATE>\n<SYNTAX_OK> true\n<TEST_PASS> unknown\n</VALIDATE>\n"),
    ]
    spans, start = [], 0
    for section, text in pieces:
        spans.append(Span(section, start, start + len(text)))
        start += len(text)
    return SerializedRecord("".join(text for _, text in pieces), spans)


def synthetic_corpus(count: int, seed: int = 0) -> list[tuple[str, SerializedRecord]]:
    rng = random.Random(seed)
    repos = [f"bench/{rng.choice(WORDS)}-{i}" for i in range(max(2, count // 50))]
    return [(repo, serialized_record(rng, repo, n)) for n in range(count) for repo in [rng.choice(repos)]]


class PeakMemory:
    """Samples the resident memory of this process and all its descendants in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        try:
            import psutil
        except ImportError:
            self._process = None
        else:
            self._process = psutil.Process()
            self._gone = (psutil.NoSuchProcess, psutil.AccessDenied)

    def _tree_rss(self) -> int:
        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except self._gone:  # a worker that exited between listing and reading
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        if self._process:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._process:
            self._stop.set()
            self._thread.join()
        else:  # lifetime peaks in KiB on Linux
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            self.peak = (own + workers) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--vocab", type=int, default=4000)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-augment", action="store_true", help="skip the controller examples")
    args = parser.parse_args()

    records = synthetic_corpus(args.records)
    chars = sum(len(record.text) for _, record in records)
    with tempfile.TemporaryDirectory(prefix="hrgc-bench-") as work:
        work = Path(work)
        started = time.perf_counter()
        info = train_tokenizer((record.text for _, record in records), work / "tok", vocab_size=args.vocab)
        print(f"corpus: {len(records):,} records, {chars / 1e6:.1f} M characters")
        print(
            f"tokenizer: vocab {info.vocab_size:,} in {time.perf_counter() - started:.1f} s, "
            f"{info.chars_per_token_code:.2f} chars/token on code, {info.chars_per_token_prose:.2f} on prose\n"
        )
        print(f"{'processes':>9} {'records':>9} {'tokens':>12} {'seconds':>8} {'tokens/s':>11} {'peak RSS MiB':>13}")
        for processes in args.processes:
            with PeakMemory() as memory:
                started = time.perf_counter()
                stats = build_dataset(
                    records,
                    info.model_path,
                    work / f"ds{processes}",
                    processes=processes,
                    seq_len=args.seq_len,
                    augment=not args.no_augment,
                )
                seconds = time.perf_counter() - started
            tokens = stats.splits["train"].tokens + stats.splits["val"].tokens
            written = stats.splits["train"].records + stats.splits["val"].records
            print(
                f"{processes:>9} {written:>9,} {tokens:>12,} {seconds:>8.1f} {tokens / seconds:>11,.0f} "
                f"{memory.peak / 2**20:>13,.0f}"
            )


if __name__ == "__main__":
    main()
