"""Scoring a tiny trained model by PyTorch and by llama.cpp on a float32 GGUF export: the same loss, equal
to a plain PyTorch cross-entropy; greedy generation through the refinement loop from an evaluation prompt."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from corpus import tags
from evaluation.scorers import GGUFScorer, TorchScorer, reference_windows
from models_registry.export.gguf_export import export_gguf
from tests.llama import require_llama_cpp
from tests.models_registry.support import briefly_trained, serialized_record, train_small_tokenizer


def test_reference_windows_crop_the_prompt_from_the_left_and_split_long_references():
    assert reference_windows(10, 4, 20) == [(0, 6, 10)]  # everything fits: read tokens 0..8, score 6..9
    assert reference_windows(10, 4, 5) == [(4, 6, 10)]  # the prompt's first 4 tokens (<s> too) are dropped
    assert reference_windows(10, 8, 4) == [(0, 2, 4), (1, 4, 6), (3, 6, 8), (5, 8, 10)]  # half a context each
    for start, first, end in reference_windows(100, 90, 16):
        assert end - 1 - start <= 16 and start <= first - 1
    assert [t for _, first, end in reference_windows(100, 90, 16) for t in range(first, end)] == list(range(10, 100))
    assert reference_windows(10, 0, 5) == []


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_small_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module", params=["gpt", "hrm"])
def trained(request, tokenizer, tmp_path_factory):
    """A tiny model of each family after 40 steps, saved as the train loop saves checkpoints (config + weights)."""
    model, config = briefly_trained(request.param, tokenizer)
    folder = tmp_path_factory.mktemp(request.param)
    torch.save({"config": config.to_dict(), "model": model.state_dict(), "step": 40}, folder / "step_40.pt")
    return model, config, folder / "step_40.pt"


def task(index: int) -> tuple[str, str]:
    """(prompt, reference) of a held-out record, cut at `<CODE>` as a suite cuts it."""
    text = serialized_record(random.Random(100 + index), 1000 + index)
    cut = text.index(tags.CODE) + len(tags.CODE)
    return text[:cut], text[cut : text.index(tags.CODE_END) + len(tags.CODE_END)]


def plain_cross_entropy(model, tokenizer, prompt: str, reference: str, keep: int | None = None):
    """The reference's summed loss and argmax hits by hand: one forward over `<s>` + text (only its last
    `keep` + 1 tokens when given), cross-entropy on the reference's tokens."""
    ids = [tokenizer.bos_id, *tokenizer.encode(prompt + reference)]
    n = len(ids) - 1 - len(tokenizer.encode(prompt))
    if keep is not None:
        ids = ids[-(keep + 1) :]
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]), all_logits=True)[0][0][-n:]
    targets = torch.tensor(ids[-n:])
    return F.cross_entropy(logits, targets, reduction="sum").item(), n, int((logits.argmax(-1) == targets).sum())


def test_torch_scorer_loss_is_the_plain_cross_entropy_on_the_reference_tokens(tokenizer, trained):
    model, _, checkpoint = trained
    scorer = TorchScorer.from_checkpoint(checkpoint, tokenizer.model_path)
    prompt, reference = task(0)
    loss, n, correct = scorer.teacher_forced(prompt, reference)
    expected_loss, expected_n, expected_correct = plain_cross_entropy(model, tokenizer, prompt, reference)
    assert n == expected_n == len(tokenizer.encode(reference)) > 10  # `<CODE>` ends on a token boundary
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert correct == expected_correct and 0 < correct <= n
    assert loss / n < 5.0  # it has learnt something: uniform over 700 pieces would be 6.55

    # A context shorter than the record: the prompt is cropped from the left, the reference scored whole.
    scorer.context_length = n + 8
    cropped = scorer.teacher_forced(prompt, reference)
    by_hand = plain_cross_entropy(model, tokenizer, prompt, reference, keep=n + 8)
    assert cropped[1] == n and cropped[0] == pytest.approx(by_hand[0], rel=1e-5) and cropped[2] == by_hand[2]
    assert cropped[0] != pytest.approx(loss, rel=1e-6)  # less context, another loss


def test_gguf_scorer_on_a_float32_export_matches_pytorch(tokenizer, trained, tmp_path):
    require_llama_cpp()
    model, config, checkpoint = trained
    path = tmp_path / "model.gguf"
    export_gguf((model, config), tokenizer.model_path, path, quant="f32", verify=False)
    torch_scorer = TorchScorer.from_checkpoint(checkpoint, tokenizer.model_path)
    deployed = GGUFScorer(path)  # llama.cpp's default float16 KV cache
    exact = GGUFScorer(path, float32_kv_cache=True)
    try:
        for index in range(3):
            prompt, reference = task(index)
            loss, n, correct = torch_scorer.teacher_forced(prompt, reference)
            for scorer, tolerance in ((exact, 1e-4), (deployed, 2e-3)):
                other_loss, other_n, other_correct = scorer.teacher_forced(prompt, reference)
                assert other_n == n
                assert abs(other_loss - loss) / n <= tolerance  # per token, in nats
                assert abs(other_correct - correct) <= (0 if scorer is exact else 1)

        prompt, _ = task(0)
        ours = torch_scorer.generate(prompt, max_attempts=2, max_tokens=24)
        theirs = exact.generate(prompt, max_attempts=2, max_tokens=24)
        assert ours == theirs  # greedy: the same tokens from the same weights
        assert 1 <= len(ours) <= 2
        for attempt in ours:
            assert set(attempt) == {"code", "parses", "errors", "decision"}
            assert attempt["parses"] == (attempt["errors"] == [])
            assert "<AFTER>" not in attempt["code"] and "<CODE>" not in attempt["code"]
            assert attempt["decision"] in ("</CODE>", "<REFINE>", None)
    finally:
        deployed.close()
        exact.close()
