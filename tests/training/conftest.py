"""Fixtures the training tests share (dataset_files, the built dataset, is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.training.support import make_dataset


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def dataset(data_dir, dataset_files):
    """Rows of a finished dataset (snapshot, tokenizer, build) whose directory holds `dataset_files`."""
    return make_dataset(dataset_files)
