"""The chunked linear + cross-entropy: same loss, section losses and gradients as the plain computation."""

from dataclasses import replace

import pytest
import torch

from corpus.records import SECTION_LABELS
from training.hrm import loss as loss_module
from training.hrm.config import preset
from training.hrm.loss import chunked_section_weighted_loss, linear_cross_entropy, section_weighted_loss
from training.hrm.model import build_model

VOCAB = 97
WEIGHTS = {"plan": 0.4, "code": 0.4, "refine": 0.2, "other": 0.1, "validate": 0.1}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # 16 rows of 97 logits per chunk: several chunks and a short last one for the 3 x 29 tokens below.
    monkeypatch.setattr(loss_module, "CHUNK_BYTES", 16 * 4 * VOCAB)


def batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, VOCAB, (3, 29), generator=generator)
    targets[0, :5] = -1  # ignored positions, as the dataset pads
    targets[2, 17] = -1
    sections = torch.randint(0, len(SECTION_LABELS), (3, 29), generator=generator)
    return targets, sections


@pytest.mark.parametrize(
    "weights", [WEIGHTS, None, {"plan": 1.0, "code": 3.0}, {"validate": 1.0}], ids=["seed", "none", "two", "absent"]
)
@pytest.mark.parametrize("with_sections", [True, False])
def test_chunked_loss_and_gradients_match_the_plain_computation(weights, with_sections):
    assert loss_module.chunk_rows(VOCAB) == 16
    targets, sections = batch()
    sections = sections if with_sections else None
    torch.manual_seed(0)
    hidden = torch.randn(3, 29, 24, requires_grad=True)
    weight = torch.randn(VOCAB, 24, requires_grad=True)

    plain, plain_sections = section_weighted_loss(hidden @ weight.t(), targets, sections, weights)
    plain_grads = torch.autograd.grad(plain * 3.0, (hidden, weight))  # an outer factor, as loss scaling does
    chunked, chunked_sections = chunked_section_weighted_loss(hidden, weight, targets, sections, weights)
    assert chunked.requires_grad and chunked.dim() == 0
    chunked_grads = torch.autograd.grad(chunked * 3.0, (hidden, weight))

    assert torch.allclose(chunked, plain, rtol=1e-5, atol=1e-6)
    assert set(chunked_sections) == set(plain_sections) == (set(SECTION_LABELS) if with_sections else set())
    for name, value in plain_sections.items():
        assert not chunked_sections[name].requires_grad
        assert torch.allclose(chunked_sections[name], value, rtol=1e-5, atol=1e-6), name
    for got, expected in zip(chunked_grads, plain_grads, strict=True):
        assert got.dtype == expected.dtype
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)
    # Ignored positions get no gradient at all.
    assert torch.count_nonzero(chunked_grads[0][0, :5]) == 0


def test_per_token_losses_without_gradient():
    targets, _ = batch(1)
    hidden, weight = torch.randn(87, 24), torch.randn(VOCAB, 24)
    with torch.no_grad():
        _, token_losses = linear_cross_entropy(hidden, weight, targets, torch.zeros(87))
    plain = torch.nn.functional.cross_entropy(
        hidden @ weight.t(), targets.reshape(-1), ignore_index=-1, reduction="none"
    )
    assert torch.allclose(token_losses, plain, atol=1e-5)
    assert torch.all(token_losses[:5] == 0)


@pytest.mark.parametrize("family,tied", [("hrm", False), ("gpt", False), ("hrm", True)])
def test_models_train_on_the_chunked_loss_with_the_plain_gradients(family, tied):
    config = replace(preset(family, "tiny", vocab_size=VOCAB).model, block_size=32, tie_embeddings=tied)
    torch.manual_seed(0)
    model = build_model(config)
    idx = torch.randint(0, VOCAB, (3, 29))
    targets, sections = batch(2)

    logits, plain, _ = model(idx, targets, sections, WEIGHTS, all_logits=True)
    assert logits.shape == (3, 29, VOCAB)
    plain.backward()
    plain_grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    logits, chunked, section_losses = model(idx, targets, sections, WEIGHTS)
    assert logits is None and set(section_losses) == set(SECTION_LABELS)
    chunked.backward()

    assert torch.allclose(chunked, plain, rtol=1e-5)
    assert plain_grads.keys() == {name for name, p in model.named_parameters() if p.grad is not None}
    for name, param in model.named_parameters():
        if name in plain_grads:
            assert torch.allclose(param.grad, plain_grads[name], rtol=1e-4, atol=1e-7), name

    plain_tokens = torch.nn.functional.cross_entropy(
        model(idx, all_logits=True)[0].transpose(1, 2), targets, ignore_index=-1, reduction="none"
    )
    assert torch.allclose(model.token_losses(idx, targets), plain_tokens, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_autocast_keeps_the_small_gradients(dtype):
    """Under fp16 autocast a token's gradient row (1/N x 1/V) is below fp16's range: it must not flush to zero."""
    torch.manual_seed(0)
    vocab, rows = 4096, 512
    hidden = torch.randn(rows, 32, requires_grad=True)
    weight = (torch.randn(vocab, 32) * 0.02).requires_grad_()
    targets = torch.randint(0, vocab // 2, (rows,))  # the upper half's rows get only the softmax's small share
    # As in a batch of 64 x 512 tokens: coefficient x probability ~ 7e-9, below fp16's smallest subnormal.
    coefficients = torch.full((rows,), 1.0 / (64 * rows))
    reference = torch.autograd.grad(
        torch.nn.functional.cross_entropy(hidden @ weight.t(), targets) / 64, (hidden, weight)
    )
    with torch.autocast("cpu", dtype=dtype):
        loss, _ = linear_cross_entropy(hidden, weight, targets, coefficients)
    grads = torch.autograd.grad(loss, (hidden, weight))
    never_targets = (grads[1][vocab // 2 :], reference[1][vocab // 2 :])
    for got, expected in [*zip(grads, reference, strict=True), never_targets]:
        assert got.dtype == torch.float32
        error = (got - expected).norm() / expected.norm()
        assert error < 0.05, error


def test_a_confidently_wrong_token_keeps_its_exact_loss():
    """A target probability below float32's normal range (a loss over ~87 nats) is 0 or lost digits as a
    probability; its loss comes from the logits, and its gradient is still softmax - onehot."""
    torch.manual_seed(0)
    hidden = torch.randn(40, 24)
    hidden[7] *= 60.0  # far from every other row: its logits spread by hundreds
    hidden.requires_grad_()
    weight = torch.randn(VOCAB, 24, requires_grad=True)
    targets = torch.randint(0, VOCAB, (40,))
    targets[7] = int((hidden[7] @ weight.t()).argmin())  # the least likely token: a loss of hundreds of nats
    coefficients = torch.full((40,), 1.0 / 40)

    plain_losses = torch.nn.functional.cross_entropy(hidden @ weight.t(), targets, reduction="none")
    assert plain_losses[7] > 200
    plain_grads = torch.autograd.grad((plain_losses * coefficients).sum(), (hidden, weight))
    loss, token_losses = linear_cross_entropy(hidden, weight, targets, coefficients)
    grads = torch.autograd.grad(loss, (hidden, weight))

    assert torch.isfinite(token_losses).all()
    assert torch.allclose(token_losses, plain_losses, rtol=1e-5, atol=1e-5)
    assert torch.allclose(loss, (plain_losses * coefficients).sum(), rtol=1e-5)
    for got, expected in zip(grads, plain_grads, strict=True):
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)
