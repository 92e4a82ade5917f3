"""Tokenize serialized records into packed train/val token files with one section label per token.

The files are a contract with the train loop (all little-endian, np.memmap-able):
- `meta.json`: see DatasetStats; `dtype` is the token dtype of every `*.bin` except labels.
- `{split}.bin`: rows of `seq_len + 1` tokens (`layout` "rows"). Every row starts at a record
  (`<s>` + the record header); short records are packed whole, first fit, and the rest of a row is
  `<pad>`; only a record longer than a row runs on, over consecutive rows of its own. The train loop reads whole
  rows, so every training sequence starts at a record.
- `{split}.labels.bin`: uint8, one SECTION_LABELS value per token of `{split}.bin`; padding is
  PAD_LABEL (the train loop trains on none of it).
- `tokenizer.model`: the SentencePiece model the ids come from.

Records come from a snapshot: format 2 lines carry the PR's record parts, split here to the token
budget (by default `seq_len`) with the dataset's own tokenizer; format 1 lines are records as written.
The validation split is by repository when at least two repositories each give a window of tokens,
otherwise by merge time (the latest VAL_FRACTION of PRs); a near duplicate follows its kept PR.
"""

from __future__ import annotations

import hashlib
import json
import math
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
from corpus.serialize import FIT_WHOLE, OVER_BUDGET, RecordParts, split_records
from corpus.tags import PLAN_END
from training.augment import controller_examples
from training.record_index import record_start
from training.tokenizer import Tokenizer

META_FILE = "meta.json"
TOKENIZER_FILE = "tokenizer.model"
SPLITS = ("train", "val")
VAL_FRACTION = 0.05  # the validation share asked for: 95/5 by repository, or the latest 5 % of PRs
CHUNK_RECORDS = 64  # records per task handed to a worker process
CHUNK_CHARS = 1_000_000
OPEN_ROWS = 8  # rows kept open for first-fit packing before the fullest is written
PAD_LABEL = 255  # label of padding tokens: no section, no loss
DATASET_FORMAT = 2  # 1: one flat stream read at random offsets, plan/gen arrays; 2: rows starting at records
LONGER_THAN_WINDOW = "longer than the window"  # a record that runs on into the next row
EXAMPLE_DROPPED = "controller example over budget"  # left out rather than run on past its record's budget
OTHER = SECTION_LABELS["other"]
_SECTION_NAMES = {value: name for name, value in SECTION_LABELS.items()}
# A fixed Go text to measure the tokenizer's characters per token once per build (estimates only).
_CALIBRATION_TEXT = (
    '<CONTEXT>\n<FILE path="server/handler.go">\n<BEFORE>\npackage server\n\nimport (\n\t"context"\n'
    '\t"errors"\n\t"net/http"\n)\n\n// Handle serves one request.\nfunc (s *Server) Handle(w http.ResponseWriter, '
    'r *http.Request) error {\n\tif r == nil {\n\t\treturn errors.New("nil request")\n\t}\n\tctx, cancel := '
    "context.WithTimeout(r.Context(), s.timeout)\n\tdefer cancel()\n\tfor _, route := range s.routes {\n\t\tif "
    "route.Match(r.URL.Path) {\n\t\t\treturn route.Serve(ctx, w, r)\n\t\t}\n\t}\n\thttp.NotFound(w, r)\n\treturn "
    "nil\n}\n</BEFORE>\n</FILE>\n"
)

Report = Callable[[str, float | None], None]


class BuildStopped(Exception):
    """should_stop() said so; nothing was written."""


@dataclass
class SplitStats:
    tokens: int = 0  # record tokens, padding not counted
    records: int = 0
    sequences: int = 0  # rows of seq_len + 1 tokens
    repos: list[str] = field(default_factory=list)
    prs: int = 0
    padding: int = 0


@dataclass
class DatasetStats:
    """Everything meta.json holds, field for field."""

    vocab_size: int
    dtype: str
    seq_len: int
    bos_id: int
    eos_id: int
    pad_id: int
    section_labels: dict[str, int]
    splits: dict[str, SplitStats]
    section_share: dict[str, float]  # share of all record tokens (both splits) per section
    augmented_records: int  # controller examples among the records
    budget: int = 1024  # tokens per record, <s> and </s> included
    layout: str = "rows"
    dataset_format: int = DATASET_FORMAT
    record_formats: dict[str, int] = field(default_factory=dict)  # snapshot format version -> PRs
    split_method: str = "repository"  # "repository" | "merge time"
    split_note: str = ""
    prs: int = 0
    record_reasons: dict[str, int] = field(default_factory=dict)  # serialize's reasons, and LONGER_THAN_WINDOW
    fit_whole_share: float = 0.0  # share of PRs whose change fit one record of the budget
    duplicates_moved_to_val: int = 0
    pad_label: int = PAD_LABEL

    def to_meta(self) -> dict:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict) -> DatasetStats:
        fields = {key: value for key, value in meta.items() if key in cls.__dataclass_fields__}
        fields["splits"] = {
            name: SplitStats(**{k: v for k, v in split.items() if k in SplitStats.__dataclass_fields__})
            for name, split in meta["splits"].items()
        }
        return cls(**fields)


@dataclass
class DatasetItem:
    """One line of a snapshot: a PR's record parts (format 2) or its finished record (format 1)."""

    repo: str
    record: SerializedRecord | None = None
    parts: RecordParts | None = None
    key: str = ""  # "owner/name#number"
    merged_at: str = ""  # ISO time; "" sorts first
    duplicate_of: str = ""  # key of the PR this one duplicates ("" none)
    format_version: int = 1

    def chars(self) -> int:
        if self.record is not None:
            return len(self.record.text)
        parts = self.parts
        return sum(len(u.before) + len(u.after) for f in parts.files for u in f.units) + len(parts.body) + 200


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


def calibrated_chars_per_token(tokenizer: Tokenizer) -> float:
    """Characters per token of the tokenizer on a fixed Go text: the budget's first estimate."""
    return len(_CALIBRATION_TEXT) / max(1, len(tokenizer.encode(_CALIBRATION_TEXT)))


def fit_records(
    tokenizer: Tokenizer, parts: RecordParts, budget: int, chars_per_token: float
) -> tuple[list[tuple[SerializedRecord, EncodedRecord]], dict[str, int]]:
    """A PR's records within `budget` tokens, each encoded once in the usual case.

    The split is planned on an estimate (characters per token, 10 % to spare); when the tokenizer
    finds a record longer than the budget after all, the PR is planned again with the ratio it
    showed, and as a last resort with exact counts."""
    ratio = chars_per_token / 1.1
    for _ in range(3):
        fitted = split_records(parts, budget, lambda text, ratio=ratio: math.ceil(len(text) / ratio))
        pairs = [(record, encode_record(tokenizer, record)) for record in fitted.records]
        longest = max(len(encoded.ids) for _, encoded in pairs)
        if longest <= budget or OVER_BUDGET in fitted.reasons:
            return pairs, fitted.reasons
        # This PR's text is denser than the estimate: plan again with the ratio it showed.
        ratio *= 0.95 * budget / longest
    fitted = split_records(parts, budget, lambda text: len(tokenizer.encode(text)))
    return [(record, encode_record(tokenizer, record)) for record in fitted.records], fitted.reasons


# Worker-process state, set once per process by _start_worker.
_worker: dict = {}


def _start_worker(tokenizer: Tokenizer, augment_fraction: float, budget: int, chars_per_token: float) -> None:
    _worker["tokenizer"] = tokenizer
    _worker["augment_fraction"] = augment_fraction
    _worker["budget"] = budget
    _worker["chars_per_token"] = chars_per_token
    if augment_fraction > 0:
        from corpus.golang import syntax_ok  # only augmentation needs the parser

        _worker["syntax_ok"] = syntax_ok


def _encode_chunk(chunk: list[tuple[int, DatasetItem]]) -> list[tuple[list[EncodedRecord], dict[str, int]]]:
    """Per PR: its records, each followed by its controller examples (an rng seeded with the PR's index)."""
    tokenizer, fraction = _worker["tokenizer"], _worker["augment_fraction"]
    results = []
    for index, item in chunk:
        if item.parts is not None:
            pairs, reasons = fit_records(tokenizer, item.parts, _worker["budget"], _worker["chars_per_token"])
        else:
            pairs, reasons = [(item.record, encode_record(tokenizer, item.record))], {}
        reasons = dict(reasons)
        group: list[EncodedRecord] = []
        rng = random.Random(index)
        for record, encoded in pairs:
            group.append(encoded)
            if fraction > 0 and rng.random() < fraction:
                for example in controller_examples(record, rng=rng, syntax_ok=_worker["syntax_ok"]):
                    augmented = encode_record(tokenizer, example)
                    if len(augmented.ids) > _worker["budget"] >= len(encoded.ids):
                        # A refine example holds two attempts; one that no longer fits would start mid-record.
                        reasons[EXAMPLE_DROPPED] = reasons.get(EXAMPLE_DROPPED, 0) + 1
                        continue
                    augmented.augmented = True
                    group.append(augmented)
        results.append((group, reasons))
    return results


def val_score(repo: str) -> float:
    """A repository's stable place in [0, 1); below val_fraction means validation."""
    return int.from_bytes(hashlib.sha256(repo.encode()).digest()[:8], "big") / 2**64


class _RowWriter:
    """Packs one split's records into rows of `row_len` tokens, first fit over a few open rows."""

    def __init__(self, directory: Path, split: str, *, dtype: str, row_len: int, pad_id: int):
        self.split, self.dtype, self.row_len, self.pad_id = split, np.dtype(dtype), row_len, pad_id
        # Closed by close(): the writer outlives any one block.
        self.tokens_file = open(directory / f"{split}.bin", "wb")  # noqa: SIM115
        self.labels_file = open(directory / f"{split}.labels.bin", "wb")  # noqa: SIM115
        self.open_rows: list[list[EncodedRecord]] = []
        self.open_used: list[int] = []
        self.rows = 0
        self.tokens = 0
        self.records = 0
        self.augmented = 0
        self.longer = 0
        self.section_counts = np.zeros(len(SECTION_LABELS), dtype=np.int64)
        self.repos: set[str] = set()
        self.prs = 0

    def _write_row(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> None:
        ids = np.full(self.row_len, self.pad_id, dtype=self.dtype)
        labels = np.full(self.row_len, PAD_LABEL, dtype=np.uint8)
        offset = 0
        for piece_ids, piece_labels in pieces:
            ids[offset : offset + len(piece_ids)] = piece_ids
            labels[offset : offset + len(piece_ids)] = piece_labels
            offset += len(piece_ids)
        self.tokens_file.write(ids.tobytes())
        self.labels_file.write(labels.tobytes())
        self.rows += 1

    def _flush_fullest(self) -> None:
        fullest = max(range(len(self.open_rows)), key=lambda i: (self.open_used[i], -i))
        records = self.open_rows.pop(fullest)
        self.open_used.pop(fullest)
        self._write_row([(r.ids, r.labels) for r in records])

    def add(self, record: EncodedRecord) -> None:
        length = len(record.ids)
        self.records += 1
        self.augmented += record.augmented
        self.tokens += length
        counts = np.bincount(record.labels, minlength=len(SECTION_LABELS))[: len(SECTION_LABELS)]
        self.section_counts += counts
        if length > self.row_len:
            # Longer than a window: consecutive rows of its own, the last one padded.
            self.longer += 1
            for start in range(0, length, self.row_len):
                part = slice(start, start + self.row_len)
                self._write_row([(record.ids[part], record.labels[part])])
            return
        for index, used in enumerate(self.open_used):
            if used + length <= self.row_len:
                self.open_rows[index].append(record)
                self.open_used[index] += length
                return
        self._open(record, length)

    def _open(self, record: EncodedRecord, length: int) -> None:
        if len(self.open_rows) >= OPEN_ROWS:
            self._flush_fullest()
        self.open_rows.append([record])
        self.open_used.append(length)

    def finish(self) -> None:
        while self.open_rows:
            records = self.open_rows.pop(0)
            self.open_used.pop(0)
            self._write_row([(r.ids, r.labels) for r in records])
        self.close()

    def close(self) -> None:
        self.tokens_file.close()
        self.labels_file.close()

    def stats(self) -> SplitStats:
        return SplitStats(
            tokens=self.tokens,
            records=self.records,
            sequences=self.rows,
            repos=sorted(self.repos),
            prs=self.prs,
            padding=self.rows * self.row_len - self.tokens,
        )


def choose_splits(items: list[DatasetItem], *, seq_len: int, val_fraction: float) -> tuple[list[str], str, str, int]:
    """Per item "train" or "val", the method used, a note for the dataset page, and how many near
    duplicates were moved to validation with their kept PR.

    By repository when at least two repositories each hold about a window of tokens (estimated
    from characters): a repository's val_score decides, and each side gets one when needed. Else
    by merge time: the latest `val_fraction` of PRs (at least one). A PR and its near duplicates
    (`duplicate_of`) always land on the same side: validation, if any of them is there."""
    window_chars = 3 * (seq_len + 1)
    chars: dict[str, int] = {}
    for item in items:
        chars[item.repo] = chars.get(item.repo, 0) + item.chars()
    big = sorted(repo for repo, total in chars.items() if total >= window_chars)
    note = ""
    if len(big) >= 2:
        method = "repository"
        in_val = {repo for repo in chars if val_score(repo) < val_fraction}
        if not in_val & set(big):
            total = sum(chars.values()) or 1
            in_val.add(min(big, key=lambda repo: (abs(chars[repo] / total - val_fraction), repo)))
        if not set(chars) - in_val:
            in_val.discard(max(in_val, key=val_score))
        sides = ["val" if item.repo in in_val else "train" for item in items]
        note = f"{len(in_val)} of {len(chars)} repositories in validation"
    else:
        method = "merge time"
        order = sorted(range(len(items)), key=lambda i: (items[i].merged_at or "", i))
        count = max(1, round(len(items) * val_fraction))
        count = min(count, len(items) - 1)
        sides = ["train"] * len(items)
        for index in order[len(order) - count :]:
            sides[index] = "val"
        reason = (
            f"{len(chars)} repository" if len(chars) == 1 else f"only {len(big)} repositories hold a window of tokens"
        )
        note = f"latest {count} of {len(items)} pull requests by merge time ({reason})"
    moved = 0
    roots = [item.duplicate_of or item.key for item in items]
    val_roots = {root for root, side in zip(roots, sides, strict=True) if side == "val" and root}
    for index, root in enumerate(roots):
        if sides[index] == "train" and root and root in val_roots:
            sides[index] = "val"
            moved += 1
    return sides, method, note, moved


def _chunks(items: list[DatasetItem]) -> Iterator[list[tuple[int, DatasetItem]]]:
    chunk, chars = [], 0
    for index, item in enumerate(items):
        chunk.append((index, item))
        chars += item.chars()
        if len(chunk) >= CHUNK_RECORDS or chars >= CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _publish(staging: Path, out_dir: Path) -> None:
    """Swap the finished directory into place; an old dataset there is replaced whole."""
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _as_item(entry: DatasetItem | tuple[str, SerializedRecord]) -> DatasetItem:
    if isinstance(entry, DatasetItem):
        return entry
    repo, record = entry
    return DatasetItem(repo=repo, record=record)


def build_dataset(
    records: Iterable[DatasetItem | tuple[str, SerializedRecord]],
    tokenizer_model: Path,
    out_dir: Path,
    *,
    processes: int = 2,
    seq_len: int = 1024,
    budget: int | None = None,
    val_fraction: float = VAL_FRACTION,
    augment: bool = True,
    augment_fraction: float = 1.0,
    total_records: int | None = None,
    report: Report | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DatasetStats:
    """Tokenize snapshot items (or (repo full name, record) pairs) into out_dir (format: module docstring).

    `budget` (default seq_len + 1, a row) bounds each record in tokens. With `augment`, each record
    (a fraction `augment_fraction` of them, chosen deterministically) is followed by its controller
    examples in the same split. The output is identical for any number of processes. Everything is
    written to a hidden sibling directory and swapped in at the end, so a killed or stopped build
    leaves no half dataset behind. `report(message, fraction)` hears about progress."""
    if min(processes, seq_len) < 1:
        raise ValueError("processes and seq_len must be at least 1")
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    row_len = seq_len + 1
    budget = row_len if budget is None else budget
    if budget < 64:
        raise ValueError("the record budget must be at least 64 tokens")
    tokenizer = Tokenizer(tokenizer_model)
    dtype = token_dtype(tokenizer.vocab_size)
    chars_per_token = calibrated_chars_per_token(tokenizer)
    fraction = augment_fraction if augment else 0.0
    reasons: dict[str, int] = {}
    formats: dict[str, int] = {}
    fit_whole = 0
    pool = None
    staging: Path | None = None
    writers: dict[str, _RowWriter] = {}
    try:
        if processes > 1:
            # spawn, not fork: a forked Django worker would share its database connections and locks.
            # Started first, so the workers load while this process reads the snapshot.
            pool = multiprocessing.get_context("spawn").Pool(
                processes, initializer=_start_worker, initargs=(tokenizer, fraction, budget, chars_per_token)
            )
        else:
            _start_worker(tokenizer, fraction, budget, chars_per_token)
        items = [_as_item(entry) for entry in records]
        if not items:
            raise ValueError("no records to build a dataset from")
        sides, method, note, moved = choose_splits(items, seq_len=seq_len, val_fraction=val_fraction)
        if len(items) == 1:
            note = "one pull request: validation repeats it"
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        writers = {
            split: _RowWriter(staging, split, dtype=dtype, row_len=row_len, pad_id=tokenizer.pad_id) for split in SPLITS
        }
        pending: deque = deque()
        done = 0

        def write_oldest() -> None:
            nonlocal done, fit_whole
            indexes, result = pending.popleft()
            groups = result.get() if pool else result
            for index, (group, item_reasons) in zip(indexes, groups, strict=True):
                item = items[index]
                targets = ["train", "val"] if len(items) == 1 else [sides[index]]
                for split in targets:
                    writer = writers[split]
                    writer.repos.add(item.repo)
                    writer.prs += 1
                    for encoded in group:
                        writer.add(encoded)
                for reason, amount in item_reasons.items():
                    reasons[reason] = reasons.get(reason, 0) + amount
                fit_whole += item.parts is None or FIT_WHOLE in item_reasons
                version = str(item.format_version)
                formats[version] = formats.get(version, 0) + 1
            done += len(indexes)
            if report:
                tokens = sum(writer.tokens for writer in writers.values())
                report(
                    f"{done:,} pull requests, {tokens:,} tokens",
                    min(1.0, done / (total_records or len(items))),
                )

        for chunk in _chunks(items):
            if should_stop and should_stop():
                raise BuildStopped("dataset build stopped")
            payload = list(chunk)
            indexes = [index for index, _ in chunk]
            # At most two chunks per process in flight keeps memory bounded however large the input.
            pending.append((indexes, pool.apply_async(_encode_chunk, (payload,)) if pool else _encode_chunk(payload)))
            if len(pending) >= 2 * processes:
                write_oldest()
        while pending:
            write_oldest()
        for writer in writers.values():
            writer.finish()
        longer = sum(writer.longer for writer in writers.values())
        if longer:
            reasons[LONGER_THAN_WINDOW] = longer
        counts = sum(writer.section_counts for writer in writers.values())
        total = int(counts.sum()) or 1
        stats = DatasetStats(
            vocab_size=tokenizer.vocab_size,
            dtype=dtype,
            seq_len=seq_len,
            bos_id=tokenizer.bos_id,
            eos_id=tokenizer.eos_id,
            pad_id=tokenizer.pad_id,
            section_labels=dict(SECTION_LABELS),
            splits={split: writer.stats() for split, writer in writers.items()},
            section_share={name: float(counts[value]) / total for name, value in SECTION_LABELS.items()},
            augmented_records=sum(writer.augmented for writer in writers.values()),
            budget=budget,
            record_formats=formats,
            split_method=method,
            split_note=note,
            prs=len(items),
            record_reasons=reasons,
            fit_whole_share=fit_whole / len(items),
            duplicates_moved_to_val=moved,
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
        if staging is not None:
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
    # The record index finds it without reading the split from its start (training/record_index.py).
    start = record_start(out_dir, split, tokens, meta["bos_id"], index)
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


def item_from_line(line: dict) -> DatasetItem:
    """A snapshot JSONL line as a dataset item: format 2 lines bring their record parts, format 1
    lines (snapshots frozen before declaration scoping) their finished record."""
    from corpus.records import Span

    repo = line["repo"]
    version = int(line.get("format_version", 1))
    key = f"{repo}#{line['number']}" if "number" in line else ""
    parts = RecordParts.from_json(line["parts"]) if version >= 2 and line.get("parts") else None
    record = None
    if parts is None:
        spans = [Span(section, start, end) for section, start, end in line["spans"]]
        record = SerializedRecord(text=line["text"], spans=spans)
    return DatasetItem(
        repo=repo,
        record=record,
        parts=parts,
        key=key,
        merged_at=line.get("merged_at") or "",
        duplicate_of=line.get("duplicate_of") or "",
        format_version=version,
    )
