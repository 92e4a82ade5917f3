"""The dataset page finds record N through an index of record starts, not by reading the split from its start."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from training import record_index
from training.dataset import decode_sample, load_meta
from training.record_index import index_path, write_record_index


@pytest.fixture
def dataset(dataset_files, tmp_path):
    out = tmp_path / "dataset"
    shutil.copytree(dataset_files, out)
    for split in ("train", "val"):
        index_path(out, split).unlink(missing_ok=True)
    return out


def test_the_index_lists_every_record_start_and_reads_the_same_records(dataset):
    meta = load_meta(dataset)
    tokens = np.fromfile(dataset / "train.bin", dtype=meta["dtype"])
    starts = np.flatnonzero(tokens == meta["bos_id"])
    scanned = [decode_sample(dataset, "train", index, length=64) for index in (0, len(starts) // 2, len(starts) - 1)]

    found = write_record_index(dataset)
    assert found["train"] == len(starts) and found["val"] > 0
    assert np.array_equal(np.fromfile(index_path(dataset, "train"), dtype="<u8"), starts)
    indexed = [decode_sample(dataset, "train", index, length=64) for index in (0, len(starts) // 2, len(starts) - 1)]
    assert indexed == scanned
    with pytest.raises(IndexError):
        decode_sample(dataset, "train", len(starts))


def test_without_an_index_only_the_start_of_a_split_is_searched(dataset, monkeypatch):
    meta = load_meta(dataset)
    tokens = np.fromfile(dataset / "train.bin", dtype=meta["dtype"])
    last = int(np.count_nonzero(tokens == meta["bos_id"])) - 1
    monkeypatch.setattr(record_index, "SCAN_TOKENS", 200)  # stands in for a split of millions of tokens
    assert decode_sample(dataset, "train", 0, length=16)
    with pytest.raises(IndexError, match="no record index"):
        decode_sample(dataset, "train", last, length=16)
    write_record_index(dataset)
    assert decode_sample(dataset, "train", last, length=16)
