"""Random training windows from a dataset directory's token file, with their section labels.

A dataset of layout "rows" (training.dataset, format 2) is read a row at a time: every window
starts at a row start, which is a record start. Older datasets (one flat stream) are read at
random offsets, as they were built for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def read_meta(dataset_dir: Path) -> dict[str, Any]:
    return json.loads((Path(dataset_dir) / "meta.json").read_text(encoding="utf-8"))


def record_starts(path: Path, dtype: np.dtype, bos_id: int, eos_id: int, block_size: int) -> np.ndarray:
    """Offsets where a window may start: each record's `<s>`, and every block_size tokens into a record
    longer than that (read in blocks, so a large split is never held in memory at once)."""
    tokens = np.memmap(path, dtype=dtype, mode="r")
    bos, eos = [], []
    for offset in range(0, len(tokens), 1 << 24):
        block = tokens[offset : offset + (1 << 24)]
        bos.append(np.flatnonzero(block == bos_id) + offset)
        eos.append(np.flatnonzero(block == eos_id) + offset)
    begins, ends = np.concatenate(bos), np.concatenate(eos)
    count = min(len(begins), len(ends))
    lengths = ends[:count] - begins[:count] + 1
    extra = [
        begins[i] + np.arange(block_size, lengths[i], block_size) for i in np.flatnonzero(lengths > block_size + 1)
    ]
    return np.sort(np.concatenate([begins, *extra])).astype(np.int64)


class TokenBatches:
    """Batches of (x, y, sections), each [batch_size, block_size], from random offsets of `split`.

    y is x shifted by one token and `sections` labels y (the token each position is trained to
    predict), so a per-token loss can be weighted by section. Padding targets are -1 (ignored by
    the loss) with section 0. Offsets come from a private torch
    Generator seeded by (seed, rank): each DDP rank reads different windows, and saving
    `state_dict()` in a checkpoint makes a resumed run read exactly the batches it would have."""

    def __init__(
        self,
        dataset_dir: Path,
        split: str,
        block_size: int,
        batch_size: int,
        device: torch.device,
        seed: int,
        rank: int = 0,
    ):
        self.dataset_dir = Path(dataset_dir)
        self.split = split
        self.block_size = block_size
        self.batch_size = batch_size
        self.device = torch.device(device)
        meta = read_meta(self.dataset_dir)
        self.dtype = np.dtype(meta["dtype"])
        self.tokens_path = self.dataset_dir / f"{split}.bin"
        self.labels_path = self.dataset_dir / f"{split}.labels.bin"
        for path in (self.tokens_path, self.labels_path):
            if not path.exists():
                raise FileNotFoundError(f"dataset file missing: {path}")
        self.num_tokens = self.tokens_path.stat().st_size // self.dtype.itemsize
        if self.labels_path.stat().st_size != self.num_tokens:
            raise ValueError(
                f"{self.labels_path.name} holds {self.labels_path.stat().st_size} labels for {self.num_tokens} tokens"
            )
        self.pad_label = meta.get("pad_label")
        self.row_len = meta["seq_len"] + 1 if meta.get("layout") == "rows" else None
        self.starts: np.ndarray | None = None
        if self.row_len is not None and block_size + 1 < self.row_len:
            # A window shorter than the dataset's rows: start at any record (and every block_size tokens into
            # a record longer than the window), so no record's code lies beyond every window.
            self.starts = record_starts(self.tokens_path, self.dtype, meta["bos_id"], meta["eos_id"], block_size)
            self.starts = self.starts[self.starts + block_size + 1 <= self.num_tokens]
            if not len(self.starts):
                raise ValueError(f"split {split!r} has no record start with a window of {block_size + 1} after it")
        elif self.row_len is not None:
            # Windows start at row starts; a window longer than a row reads on into the next rows.
            self.rows = self.num_tokens // self.row_len
            rows_per_window = -(-(block_size + 1) // self.row_len)
            self.start_rows = self.rows - rows_per_window + 1
            if self.start_rows < 1:
                raise ValueError(
                    f"split {split!r} has {self.rows} sequences of {self.row_len} tokens, fewer than one window "
                    f"of {block_size + 1}"
                )
        elif self.num_tokens < block_size + 2:
            raise ValueError(f"split {split!r} has {self.num_tokens} tokens, fewer than one window of {block_size + 1}")
        self.generator = torch.Generator()
        # A large odd stride keeps rank streams apart for any seed.
        self.generator.manual_seed(seed + 1_000_003 * rank)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Open the memmaps per batch: a long-lived np.memmap keeps growing resident memory (nanoGPT's note).
        tokens = np.memmap(self.tokens_path, dtype=self.dtype, mode="r")
        labels = np.memmap(self.labels_path, dtype=np.uint8, mode="r")
        if self.starts is not None:
            picks = torch.randint(len(self.starts), (self.batch_size,), generator=self.generator)
            starts = torch.from_numpy(self.starts[picks.numpy()])
        elif self.row_len is not None:
            rows = torch.randint(self.start_rows, (self.batch_size,), generator=self.generator)
            starts = rows * self.row_len
        else:
            starts = torch.randint(self.num_tokens - self.block_size - 1, (self.batch_size,), generator=self.generator)
        x = torch.stack([torch.from_numpy(tokens[i : i + self.block_size].astype(np.int64)) for i in starts.tolist()])
        y = torch.stack(
            [torch.from_numpy(tokens[i + 1 : i + 1 + self.block_size].astype(np.int64)) for i in starts.tolist()]
        )
        sections = torch.stack(
            [torch.from_numpy(labels[i + 1 : i + 1 + self.block_size].astype(np.int64)) for i in starts.tolist()]
        )
        if self.pad_label is not None:
            padding = sections == self.pad_label
            y = y.masked_fill(padding, -1)
            sections = sections.masked_fill(padding, 0)
        if self.device.type == "cuda":
            # Pinned host memory lets the copy overlap with the previous step's compute.
            return tuple(t.pin_memory().to(self.device, non_blocking=True) for t in (x, y, sections))
        return x.to(self.device), y.to(self.device), sections.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"split": self.split, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
