"""Fixtures the export and runtime tests share."""

from __future__ import annotations

import pytest

from tests.models_registry.support import train_small_tokenizer
from training.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory) -> Tokenizer:
    """A real SentencePiece model trained on records and the Go fixtures, once per session."""
    return train_small_tokenizer(tmp_path_factory.mktemp("tokenizer"))
