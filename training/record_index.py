"""Where each record of a dataset split starts: `{split}.starts.u64`, uint64 token offsets of every `<s>`.

Written once after a build (by the worker), so the dataset page shows record N by reading a few bytes of
the index and N's own tokens, never the token file from its start. A dataset without the index (built
before it existed) is searched only within its first SCAN_TOKENS tokens. No Django here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

INDEX_SUFFIX = ".starts.u64"  # not .bin: every *.bin of a dataset holds tokens or labels
SCAN_TOKENS = 8 << 20  # without an index: how far into a split a record is looked for
_BLOCK = 1 << 22


def index_path(out_dir: Path, split: str) -> Path:
    return Path(out_dir) / f"{split}{INDEX_SUFFIX}"


def _tokens(out_dir: Path, split: str, dtype: str) -> np.ndarray:
    path = Path(out_dir) / f"{split}.bin"
    return np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else np.zeros(0, dtype)


def write_record_index(out_dir: Path, splits: tuple[str, ...] = ("train", "val")) -> dict[str, int]:
    """Write each split's index (atomically); returns the number of records found per split."""
    out_dir = Path(out_dir)
    meta = json.loads((out_dir / "meta.json").read_text())
    found = {}
    for split in splits:
        if not (out_dir / f"{split}.bin").exists():
            continue
        tokens = _tokens(out_dir, split, meta["dtype"])
        parts = [
            np.flatnonzero(tokens[offset : offset + _BLOCK] == meta["bos_id"]).astype(np.uint64) + offset
            for offset in range(0, len(tokens), _BLOCK)
        ]
        starts = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        target = index_path(out_dir, split)
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        starts.astype("<u8").tofile(partial)
        os.replace(partial, target)
        found[split] = len(starts)
    return found


def record_start(out_dir: Path, split: str, tokens: np.ndarray, bos_id: int, index: int) -> int | None:
    """Token offset of the split's index-th record, or None when there is no such record.

    IndexError when the split has no index and the record lies beyond the first SCAN_TOKENS tokens."""
    if index < 0:
        return None
    path = index_path(out_dir, split)
    if path.exists():
        starts = np.memmap(path, dtype="<u8", mode="r") if path.stat().st_size else np.zeros(0, "<u8")
        return int(starts[index]) if index < len(starts) else None
    seen = 0
    for offset in range(0, min(len(tokens), SCAN_TOKENS), _BLOCK):
        block = tokens[offset : min(offset + _BLOCK, SCAN_TOKENS)]
        hits = np.flatnonzero(block == bos_id)
        if seen + len(hits) > index:
            return offset + int(hits[index - seen])
        seen += len(hits)
    if len(tokens) > SCAN_TOKENS:
        raise IndexError(
            f"{split} has no record index ({path.name}; datasets built since have one), and record {index} is not "
            f"within its first {SCAN_TOKENS:,} tokens"
        )
    return None
