"""Tokenize serialized records into packed train/val token files with one section label per token.

The files are a contract with the train loop (all little-endian, np.memmap-able):
- `meta.json`: see DatasetStats; `dtype` is the token dtype of every `*.bin` except labels.
- `{split}.bin`: every record as `<s>` + tokens + `</s>`, concatenated; the `gpt` family reads
  windows of seq_len + 1 tokens (`sequences` counts the non-overlapping ones).
- `{split}.labels.bin`: uint8, one SECTION_LABELS value per token of `{split}.bin`.
- `{split}.plan.bin` / `{split}.gen.bin`: [records, plan_len] / [records, gen_len] for the `hrm`
  family: a record's tokens up to and including `</PLAN>` (just `<s>` when it has no plan) and
  the rest, each padded with pad_id and cut at its length; `*.plan.labels.bin` and
  `*.gen.labels.bin` label them (padding is "other").
- `tokenizer.model`: the SentencePiece model the ids come from.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from corpus.records import SECTION_LABELS, SerializedRecord
from corpus.tags import PLAN_END
from training.augment import controller_examples
from training.tokenizer import Tokenizer

META_FILE = "meta.json"
TOKENIZER_FILE = "tokenizer.model"
SPLITS = ("train", "val")
VAL_FRACTION = 0.05  # the validation share asked for: a 95/5 split by repository
CHUNK_RECORDS = 64  # records per task handed to a worker process
CHUNK_CHARS = 1_000_000
OTHER = SECTION_LABELS["other"]
_SECTION_NAMES = {value: name for name, value in SECTION_LABELS.items()}

Report = Callable[[str, float | None], None]


class BuildStopped(Exception):
    """should_stop() said so; nothing was written."""


@dataclass
class SplitStats:
    tokens: int = 0
    records: int = 0
    sequences: int = 0
    repos: list[str] = field(default_factory=list)


@dataclass
class DatasetStats:
    """Everything meta.json holds, field for field."""

    vocab_size: int
    dtype: str
    seq_len: int
    plan_len: int
    gen_len: int
    bos_id: int
    eos_id: int
    pad_id: int
    section_labels: dict[str, int]
    splits: dict[str, SplitStats]
    records_cut: dict[str, int]  # records longer than plan_len ("plan") / gen_len ("gen")
    section_share: dict[str, float]  # share of all tokens (both splits) per section
    augmented_records: int  # controller examples among the records

    def to_meta(self) -> dict:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict) -> DatasetStats:
        fields = dict(meta)
        fields["splits"] = {name: SplitStats(**split) for name, split in meta["splits"].items()}
        return cls(**fields)


@dataclass
class EncodedRecord:
    ids: np.ndarray  # int64, with <s> and </s>
    labels: np.ndarray  # uint8
    plan_end: int  # ids[:plan_end] is the plan part
    augmented: bool = False


def token_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 65536 else "uint32"


def encode_record(tokenizer: Tokenizer, record: SerializedRecord) -> EncodedRecord:
    """Token ids of one record, each labelled with the section of its first character."""
    ids = tokenizer.encode(record.text)
    starts, _ = tokenizer.token_offsets(ids)
    char_labels = np.full(len(record.text) + 1, OTHER, dtype=np.uint8)
    for span in record.spans:
        if span.section not in SECTION_LABELS:
            raise ValueError(f"unknown section {span.section!r}; expected one of {sorted(SECTION_LABELS)}")
        char_labels[span.start : span.end] = SECTION_LABELS[span.section]
    token_ids = np.empty(len(ids) + 2, dtype=np.int64)
    token_ids[0], token_ids[1:-1], token_ids[-1] = tokenizer.bos_id, ids, tokenizer.eos_id
    labels = np.full(len(ids) + 2, OTHER, dtype=np.uint8)
    labels[1:-1] = char_labels[starts]
    plan_end_id = tokenizer.special_ids[PLAN_END]
    plan_ends = np.flatnonzero(token_ids == plan_end_id)
    plan_end = int(plan_ends[0]) + 1 if len(plan_ends) else 1
    return EncodedRecord(token_ids, labels, plan_end)


# Worker-process state, set once per process by _start_worker.
_worker: dict = {}


def _start_worker(tokenizer: Tokenizer, augment_fraction: float) -> None:
    _worker["tokenizer"] = tokenizer
    _worker["augment_fraction"] = augment_fraction
    if augment_fraction > 0:
        from corpus.golang import (
            syntax_ok,  # another engineer's module; only augmentation needs it
        )

        _worker["syntax_ok"] = syntax_ok


def _encode_chunk(chunk: list[tuple[int, SerializedRecord]]) -> list[list[EncodedRecord]]:
    """Each record followed by its controller examples (chosen by an rng seeded with its index)."""
    tokenizer, fraction = _worker["tokenizer"], _worker["augment_fraction"]
    encoded = []
    for index, record in chunk:
        group = [encode_record(tokenizer, record)]
        rng = random.Random(index)
        if fraction > 0 and rng.random() < fraction:
            for example in controller_examples(record, rng=rng, syntax_ok=_worker["syntax_ok"]):
                augmented = encode_record(tokenizer, example)
                augmented.augmented = True
                group.append(augmented)
        encoded.append(group)
    return encoded


def val_score(repo: str) -> float:
    """A repository's stable place in [0, 1); below val_fraction means validation."""
    return int.from_bytes(hashlib.sha256(repo.encode()).digest()[:8], "big") / 2**64


class _SplitWriter:
    """Appends encoded records to one split's files and remembers where each record went."""

    def __init__(self, directory: Path, split: str, *, dtype: str, plan_len: int, gen_len: int, pad_id: int):
        self.directory, self.split, self.dtype = directory, split, np.dtype(dtype)
        self.plan_len, self.gen_len, self.pad_id = plan_len, gen_len, pad_id
        # Closed by close(): the writer outlives any one block.
        self.files = {part: open(directory / self.file_name(part), "wb") for part in self.parts()}  # noqa: SIM115
        self.index: list[tuple[str, int, int, int, bool]] = []  # repo, offset, length, plan_end, augmented
        self.tokens = 0
        self.cut = {"plan": 0, "gen": 0}

    @staticmethod
    def parts() -> tuple[str, ...]:
        return ("", ".labels", ".plan", ".plan.labels", ".gen", ".gen.labels")

    def file_name(self, part: str) -> str:
        return f"{self.split}{part}.bin"

    def _row(self, values: np.ndarray, length: int, fill: int, dtype: np.dtype) -> bytes:
        row = np.full(length, fill, dtype=dtype)
        row[: min(length, len(values))] = values[:length]
        return row.tobytes()

    def add(self, record: EncodedRecord, repo: str) -> None:
        ids, labels, plan_end = record.ids, record.labels, record.plan_end
        self.files[""].write(ids.astype(self.dtype).tobytes())
        self.files[".labels"].write(labels.tobytes())
        self.files[".plan"].write(self._row(ids[:plan_end], self.plan_len, self.pad_id, self.dtype))
        self.files[".plan.labels"].write(self._row(labels[:plan_end], self.plan_len, OTHER, np.uint8))
        self.files[".gen"].write(self._row(ids[plan_end:], self.gen_len, self.pad_id, self.dtype))
        self.files[".gen.labels"].write(self._row(labels[plan_end:], self.gen_len, OTHER, np.uint8))
        self.cut["plan"] += plan_end > self.plan_len
        self.cut["gen"] += len(ids) - plan_end > self.gen_len
        self.index.append((repo, self.tokens, len(ids), plan_end, record.augmented))
        self.tokens += len(ids)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def records(self) -> Iterator[tuple[str, EncodedRecord]]:
        """Read back what was written (after close)."""
        if not self.tokens:
            return
        ids = np.memmap(self.directory / self.file_name(""), dtype=self.dtype, mode="r")
        labels = np.memmap(self.directory / self.file_name(".labels"), dtype=np.uint8, mode="r")
        for repo, offset, length, plan_end, augmented in self.index:
            yield (
                repo,
                EncodedRecord(
                    ids[offset : offset + length].astype(np.int64),
                    np.array(labels[offset : offset + length]),
                    plan_end,
                    augmented,
                ),
            )

    def stats(self, seq_len: int) -> SplitStats:
        return SplitStats(
            tokens=self.tokens,
            records=len(self.index),
            sequences=max(0, self.tokens - 1) // seq_len,
            repos=sorted({entry[0] for entry in self.index}),
        )


def _move_repo(writers: dict[str, _SplitWriter], repo: str, source: str, target: str) -> None:
    """Move one repository's records between splits by rewriting the source split's files."""
    old = writers[source]
    old.close()
    aside = old.directory / f".{source}.moving"
    aside.mkdir()
    for part in old.parts():
        os.replace(old.directory / old.file_name(part), aside / old.file_name(part))
    old.directory = aside
    writers[source] = _SplitWriter(
        aside.parent,
        source,
        dtype=old.dtype.name,
        plan_len=old.plan_len,
        gen_len=old.gen_len,
        pad_id=old.pad_id,
    )
    for record_repo, record in old.records():
        writers[target if record_repo == repo else source].add(record, record_repo)
    shutil.rmtree(aside)


def _balance_splits(writers: dict[str, _SplitWriter], val_fraction: float) -> None:
    """Train always gets a repository; validation gets one too when there are at least two.

    The repository forced into validation is the one whose share of the tokens is closest to
    val_fraction (ties by name), so a small corpus's split comes as near the asked one as a split by
    repository can."""
    repos = {split: {entry[0] for entry in writer.index} for split, writer in writers.items()}
    if not repos["train"] and repos["val"]:
        _move_repo(writers, max(repos["val"], key=val_score), "val", "train")
    elif not repos["val"] and len(repos["train"]) >= 2:
        tokens: dict[str, int] = {}
        for repo, _, length, _, _ in writers["train"].index:
            tokens[repo] = tokens.get(repo, 0) + length
        total = sum(tokens.values()) or 1
        chosen = min(sorted(tokens), key=lambda repo: abs(tokens[repo] / total - val_fraction))
        _move_repo(writers, chosen, "train", "val")


def _chunks(records: Iterable[tuple[str, SerializedRecord]]) -> Iterator[list[tuple[int, str, SerializedRecord]]]:
    chunk, chars = [], 0
    for index, (repo, record) in enumerate(records):
        chunk.append((index, repo, record))
        chars += len(record.text)
        if len(chunk) >= CHUNK_RECORDS or chars >= CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _section_share(directory: Path) -> dict[str, float]:
    counts = np.zeros(len(SECTION_LABELS), dtype=np.int64)
    for split in SPLITS:
        path = directory / f"{split}.labels.bin"
        if path.stat().st_size:
            counts += np.bincount(np.memmap(path, dtype=np.uint8, mode="r"), minlength=len(counts))[: len(counts)]
    total = int(counts.sum()) or 1
    return {name: float(counts[value]) / total for name, value in SECTION_LABELS.items()}


def _publish(staging: Path, out_dir: Path) -> None:
    """Swap the finished directory into place; an old dataset there is replaced whole."""
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def build_dataset(
    records: Iterable[tuple[str, SerializedRecord]],
    tokenizer_model: Path,
    out_dir: Path,
    *,
    processes: int = 2,
    seq_len: int = 1024,
    plan_len: int = 512,
    gen_len: int = 1024,
    val_fraction: float = VAL_FRACTION,
    augment: bool = True,
    augment_fraction: float = 1.0,
    total_records: int | None = None,
    report: Report | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DatasetStats:
    """Tokenize (repo full name, record) pairs into out_dir (format: this module's docstring).

    Repositories are split by val_score; train always gets one and validation too when there
    are two or more. With `augment`, each record (a fraction `augment_fraction` of them, chosen
    deterministically) is followed by its controller examples in the same split. The output is
    identical for any number of processes. Everything is written to a hidden sibling directory
    and swapped in at the end, so a killed or stopped build leaves no half dataset behind.
    `report(message, fraction)` hears about progress (fraction needs total_records)."""
    if min(processes, seq_len, plan_len, gen_len) < 1:
        raise ValueError("processes, seq_len, plan_len and gen_len must be at least 1")
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    tokenizer = Tokenizer(tokenizer_model)
    dtype = token_dtype(tokenizer.vocab_size)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    writers = {
        split: _SplitWriter(staging, split, dtype=dtype, plan_len=plan_len, gen_len=gen_len, pad_id=tokenizer.pad_id)
        for split in SPLITS
    }
    split_of: dict[str, str] = {}
    fraction = augment_fraction if augment else 0.0
    pool = None
    try:
        if processes > 1:
            # spawn, not fork: a forked Django worker would share its database connections and locks.
            pool = multiprocessing.get_context("spawn").Pool(
                processes,
                initializer=_start_worker,
                initargs=(tokenizer, fraction),
            )
        else:
            _start_worker(tokenizer, fraction)
        pending: deque = deque()
        done = 0

        def write_oldest() -> None:
            nonlocal done
            repos, result = pending.popleft()
            groups = result.get() if pool else result
            for repo, group in zip(repos, groups, strict=True):
                if repo not in split_of:
                    split_of[repo] = "val" if val_score(repo) < val_fraction else "train"
                for encoded in group:
                    writers[split_of[repo]].add(encoded, repo)
            done += len(repos)
            if report:
                tokens = sum(writer.tokens for writer in writers.values())
                report(
                    f"{done:,} records, {tokens:,} tokens", min(1.0, done / total_records) if total_records else None
                )

        for chunk in _chunks(records):
            if should_stop and should_stop():
                raise BuildStopped("dataset build stopped")
            payload = [(index, record) for index, _, record in chunk]
            repos = [repo for _, repo, _ in chunk]
            # At most two chunks per process in flight keeps memory bounded however large the input.
            pending.append((repos, pool.apply_async(_encode_chunk, (payload,)) if pool else _encode_chunk(payload)))
            if len(pending) >= 2 * processes:
                write_oldest()
        while pending:
            write_oldest()
        if not split_of:
            raise ValueError("no records to build a dataset from")
        _balance_splits(writers, val_fraction)
        for writer in writers.values():
            writer.close()
        stats = DatasetStats(
            vocab_size=tokenizer.vocab_size,
            dtype=dtype,
            seq_len=seq_len,
            plan_len=plan_len,
            gen_len=gen_len,
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
            pad_id=tokenizer.pad_id,
            section_labels=dict(SECTION_LABELS),
            splits={split: writer.stats(seq_len) for split, writer in writers.items()},
            records_cut={part: sum(writer.cut[part] for writer in writers.values()) for part in ("plan", "gen")},
            section_share=_section_share(staging),
            augmented_records=sum(entry[4] for writer in writers.values() for entry in writer.index),
        )
        shutil.copyfile(tokenizer_model, staging / TOKENIZER_FILE)
        (staging / META_FILE).write_text(json.dumps(stats.to_meta(), indent=2))
        _publish(staging, out_dir)
        return stats
    finally:
        if pool:
            pool.terminate()
            pool.join()
        for writer in writers.values():
            writer.close()
        shutil.rmtree(staging, ignore_errors=True)


def load_meta(out_dir: Path) -> dict:
    """meta.json of a finished dataset (FileNotFoundError when there is none)."""
    return json.loads((Path(out_dir) / META_FILE).read_text())


def _find(tokens: np.ndarray, value: int, start: int, nth: int = 0) -> int | None:
    """Offset of the nth occurrence of value at or after start, reading the memmap in blocks."""
    seen, block = 0, 1 << 22
    for offset in range(start, len(tokens), block):
        found = np.flatnonzero(tokens[offset : offset + block] == value)
        if seen + len(found) > nth:
            return offset + int(found[nth - seen])
        seen += len(found)
    return None


def decode_sample(
    out_dir: Path, split: str = "train", index: int = 0, length: int | None = None
) -> list[tuple[str, str]]:
    """The index-th record of a split as (text, section name) per token, for a coloured view.

    Consecutive byte pieces of one character are decoded together; control tokens show as
    their piece (`<s>`, `</s>`). `length` caps the number of tokens read."""
    out_dir = Path(out_dir)
    meta = load_meta(out_dir)
    path = out_dir / f"{split}.bin"
    tokens = np.memmap(path, dtype=meta["dtype"], mode="r") if path.stat().st_size else np.zeros(0, meta["dtype"])
    # Each record starts with the only <s> it holds and ends with its only </s>.
    start = _find(tokens, meta["bos_id"], 0, nth=index) if index >= 0 else None
    if start is None:
        raise IndexError(f"{split} has no record {index}")
    eos = _find(tokens[: start + length] if length else tokens, meta["eos_id"], start)
    end = len(tokens) if eos is None else eos + 1
    if length is not None:
        end = min(end, start + length)
    labels = np.memmap(out_dir / f"{split}.labels.bin", dtype=np.uint8, mode="r")[start:end]
    tokenizer = Tokenizer(out_dir / TOKENIZER_FILE)
    sample: list[tuple[str, str]] = []
    pending_bytes: list[int] = []
    for token_id, label in zip(tokens[start:end].tolist(), labels.tolist(), strict=True):
        section = _SECTION_NAMES.get(label, "other")
        if tokenizer.is_byte(token_id):
            pending_bytes.append(token_id)
            text = tokenizer.decode(pending_bytes)
            if "\ufffd" in text and len(pending_bytes) < 4:
                continue  # the character's remaining bytes follow
            pending_bytes = []
        elif tokenizer.sp.is_control(token_id):
            text = tokenizer.piece(token_id)
        else:
            text = tokenizer.decode([token_id])
        sample.append((text, section))
    if pending_bytes:
        sample.append((tokenizer.decode(pending_bytes), _SECTION_NAMES.get(int(labels[-1]), "other")))
    return sample
