"""Held-out evaluation tasks cut from a dataset directory's validation split, and the hash that freezes them.

A task is one serialized record of the split, cut at its `<CODE>` tag:
- prompt: the record's text from its start (after `<s>`) up to and including `<CODE>`;
- reference: what follows, up to and including the record's first `</CODE>` (so it starts with the
  line break after `<CODE>` and holds the `<AFTER>` blocks, with `<FILE>` tags when several files change).
`prompt + reference` is a prefix of the record's text, so teacher forcing sees the tokens training saw,
and generation starts exactly where the model learnt to write code.

Records that are not tasks are skipped: those without a PR title or without a CODE section, and the
controller examples of training.augment (a CODE section holding `<CONTINUE>` or `<REFINE>`; its "done"
example has the original's text and is dropped as a duplicate). No Django here."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from corpus import tags
from training.data import read_meta
from training.dataset import TOKENIZER_FILE
from training.record_index import index_path
from training.tokenizer import Tokenizer

SPLIT = "val"
_REPO = re.compile(r"^<REPO> ([^\n]*)$", re.MULTILINE)
_TITLE = re.compile(r"^<PR_TITLE> ([^\n]*)$", re.MULTILINE)
_FILE = re.compile(r'<FILE path="([^"]*)"')
_TAG = re.compile(r"</?[A-Z_]+(?: [^>\n]*)?>")  # the format's tags, e.g. <AFTER>, <FILE path="x.go">
_BLOCK = 1 << 22


class SuiteError(ValueError):
    """The dataset cannot give the suite asked for (no validation records, no usable task)."""


@dataclass(frozen=True)
class SuiteTask:
    index: int  # position in the suite, from 0
    record_index: int  # the record's index in the split (training/record_index.py numbering)
    prompt: str
    reference: str
    prompt_tokens: int = 0
    reference_tokens: int = 0
    repo: str = ""
    title: str = ""
    path: str = ""
    meta: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def split_record(text: str) -> tuple[str, str] | None:
    """(prompt, reference) of one record's text as the module docstring defines them; None when the
    record is not a task (no title, no CODE section, or a controller example)."""
    if not _TITLE.search(text):
        return None
    start = text.find(tags.CODE)
    if start < 0:
        return None
    cut = start + len(tags.CODE)
    end = text.find(tags.CODE_END, cut)
    if end < 0:
        return None
    reference = text[cut : end + len(tags.CODE_END)]
    if tags.CONTINUE in text or tags.REFINE in text or not _TAG.sub("", reference).strip():
        return None
    return text[:cut], reference


def suite_hash(tasks: list[SuiteTask]) -> str:
    """sha256 over every task's prompt and reference, in order (each length-prefixed, so no two
    different suites can run together into the same bytes)."""
    digest = hashlib.sha256()
    for task in tasks:
        for text in (task.prompt, task.reference):
            data = text.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


def _tokens(dataset_dir: Path, split: str, dtype: str) -> np.ndarray:
    path = dataset_dir / f"{split}.bin"
    if not path.exists() or not path.stat().st_size:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def record_starts(dataset_dir: Path, split: str, meta: dict) -> np.ndarray:
    """Token offset of every record of the split: from the record index when the dataset has one, else a scan."""
    path = index_path(dataset_dir, split)
    if path.exists():
        return np.fromfile(path, dtype="<u8").astype(np.int64)
    tokens = _tokens(dataset_dir, split, meta["dtype"])
    parts = [
        np.flatnonzero(tokens[offset : offset + _BLOCK] == meta["bos_id"]) + offset
        for offset in range(0, len(tokens), _BLOCK)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _record_ids(tokens: np.ndarray, start: int, meta: dict) -> list[int]:
    """The record's token ids after its `<s>`, up to (not including) its `</s>`; padding left out."""
    ids: list[int] = []
    offset = start + 1
    while offset < len(tokens):
        block = np.asarray(tokens[offset : offset + 4096])
        ends = np.flatnonzero((block == meta["eos_id"]) | (block == meta["bos_id"]))
        stop = int(ends[0]) if len(ends) else len(block)
        ids += block[:stop].tolist()
        if len(ends):
            break
        offset += len(block)
    pad = meta.get("pad_id")
    return [token for token in ids if token != pad]


def _candidate_order(total: int, count: int) -> list[int]:
    """Record indexes to look at: `count` evenly spaced positions first, then every other record in order
    (used only when some of the spaced ones are not tasks)."""
    spaced = sorted({position * total // count for position in range(count)}) if count < total else list(range(total))
    chosen = set(spaced)
    return spaced + [index for index in range(total) if index not in chosen]


def read_tasks(dataset_dir: Path, count: int, *, split: str = SPLIT) -> list[SuiteTask]:
    """`count` tasks of the dataset's split, evenly spaced over its records (deterministic: the same
    dataset and count always give the same tasks), in record order. Fewer when the split holds fewer;
    SuiteError when it holds none."""
    if count < 1:
        raise SuiteError("a suite needs at least one task")
    dataset_dir = Path(dataset_dir)
    meta = read_meta(dataset_dir)
    starts = record_starts(dataset_dir, split, meta)
    if not len(starts):
        raise SuiteError(f"the dataset's {split} split holds no records")
    tokens = _tokens(dataset_dir, split, meta["dtype"])
    tokenizer = Tokenizer(dataset_dir / TOKENIZER_FILE)
    found: dict[int, tuple[str, str, str]] = {}
    seen: set[str] = set()
    for record_index in _candidate_order(len(starts), count):
        if len(found) >= count:
            break
        text = tokenizer.decode(_record_ids(tokens, int(starts[record_index]), meta))
        pair = split_record(text)
        if pair is None:
            continue
        key = hashlib.sha256("\0".join(pair).encode()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        found[record_index] = (*pair, text)
    if not found:
        raise SuiteError(
            f"none of the {len(starts)} records of the {split} split is a task (a PR title and a CODE section)"
        )
    tasks = []
    for index, record_index in enumerate(sorted(found)):
        prompt, reference, text = found[record_index]
        repo, title, path = _REPO.search(text), _TITLE.search(text), _FILE.search(prompt)
        tasks.append(
            SuiteTask(
                index=index,
                record_index=record_index,
                prompt=prompt,
                reference=reference,
                prompt_tokens=len(tokenizer.encode(prompt)),
                reference_tokens=len(tokenizer.encode(reference)),
                repo=repo.group(1).strip() if repo else "",
                title=title.group(1).strip() if title else "",
                path=path.group(1) if path else "",
                meta={"split": split},
            )
        )
    return tasks


def tokenizer_sha256(dataset_dir: Path) -> str:
    """sha256 of the dataset's tokenizer model file: two datasets share a vocabulary when these agree."""
    digest = hashlib.sha256()
    with open(Path(dataset_dir) / TOKENIZER_FILE, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
