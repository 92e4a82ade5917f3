"""The section-weighted cross-entropy, computed from the last hidden states in row chunks without full logits.

At the seed preset the head dominates: a batch of 8 x 256 tokens over a 50K vocabulary has 410 MB of
float32 logits, and the plain loss writes and reads that several times (logits, log-softmax, their
gradients). Here the loss is a weighted sum over tokens, sum_t c_t * CE_t, whose per-token
coefficients c_t depend only on targets, sections and section weights (`token_coefficients`). So
one pass over row chunks computes each chunk's logits, its losses and, while the chunk is hot, its
gradients into the hidden states and the head weight (the method of Liger-Kernel's fused linear
cross-entropy). Backward then only scales the gradients already computed by the incoming scalar.
No more than one chunk of logits exists at any time, forward or backward, and the head costs the same
three matmuls as the plain computation (none recomputed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from corpus.records import SECTION_LABELS

# Logits computed at once, rounded down to a power of two of rows: 256 rows of a 50K vocabulary (51 MB in
# float32). Each chunk also reads and writes the whole head-weight gradient (V x C), so much smaller chunks
# turn that into the bottleneck (64 rows were 1.7x slower than 512 on CPU); larger ones only add memory.
CHUNK_BYTES = 64 * 2**20
# On a GPU a 256-row chunk's matmul takes microseconds and kernel launches would dominate: 2,048 rows at 50K.
CUDA_CHUNK_BYTES = 512 * 2**20
SECTION_NAMES = {index: name for name, index in SECTION_LABELS.items()}
# -log of float32's smallest normal number is 87.3: above 80 nats a loss is taken from the logits instead.
LOSS_FROM_PROBABILITY_UP_TO = 80.0


def chunk_rows(vocab_size: int, device_type: str = "cpu") -> int:
    budget = CUDA_CHUNK_BYTES if device_type == "cuda" else CHUNK_BYTES
    return 2 ** max(4, (budget // (4 * vocab_size)).bit_length() - 1)


def token_coefficients(
    targets: torch.Tensor, sections: torch.Tensor | None, section_weights: dict[str, float] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-token coefficients c (float32, flat) with loss = sum(c * CE): the weighted mean of the per-section
    mean cross-entropies. Also the flat valid mask and the per-section token counts (None without sections).

    Targets of -1 get 0. A section absent from the batch (or missing from the weights) drops out and the
    remaining weights renormalise. Without sections or weights, or with only zero-weighted sections
    present: the plain token mean."""
    flat_targets = targets.reshape(-1)
    valid = flat_targets != -1
    token_mean = valid.float() / valid.sum().clamp(min=1)
    if sections is None:
        return token_mean, valid, None
    n_labels = len(SECTION_LABELS)
    labels = sections.reshape(-1).long().clamp(0, n_labels - 1)
    counts = torch.bincount(labels[valid], minlength=n_labels)
    if section_weights is None:
        return token_mean, valid, counts
    unknown = set(section_weights) - set(SECTION_LABELS)
    if unknown:
        raise ValueError(f"unknown sections in loss weights: {sorted(unknown)}")
    weights = torch.tensor(
        [float(section_weights.get(SECTION_NAMES[i], 0.0)) for i in range(n_labels)], device=targets.device
    ) * (counts > 0)
    total = weights.sum()
    # One host sync: only zero-weighted sections present falls back to the token mean.
    if float(total) == 0.0:
        return token_mean, valid, counts
    per_section = weights / (counts.clamp(min=1) * total)
    return per_section[labels] * valid, valid, counts


def section_means(
    token_losses: torch.Tensor, sections: torch.Tensor | None, valid: torch.Tensor, counts: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """Each present section's mean cross-entropy (detached), from flat per-token losses."""
    if sections is None or counts is None:
        return {}
    n_labels = len(SECTION_LABELS)
    labels = sections.reshape(-1).long().clamp(0, n_labels - 1)[valid]
    sums = torch.zeros(n_labels, device=token_losses.device).index_add_(0, labels, token_losses.detach()[valid])
    means = sums / counts.clamp(min=1)
    # One host sync per call: which sections are present decides the dict's keys.
    return {SECTION_NAMES[i]: means[i] for i, count in enumerate(counts.tolist()) if count}


def section_weighted_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    sections: torch.Tensor | None,
    section_weights: dict[str, float] | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The plain computation from full logits [..., V]: the loss and each present section's mean (detached)."""
    token_losses = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1, reduction="none"
    )
    coefficients, valid, counts = token_coefficients(targets, sections, section_weights)
    return (coefficients * token_losses).sum(), section_means(token_losses, sections, valid, counts)


@torch.compiler.disable  # host syncs (which sections are present) and a chunk loop: eager under torch.compile
def chunked_section_weighted_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    sections: torch.Tensor | None,
    section_weights: dict[str, float] | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Same value and gradients as section_weighted_loss(hidden @ weight.T, ...), without full logits."""
    coefficients, valid, counts = token_coefficients(targets, sections, section_weights)
    loss, token_losses = linear_cross_entropy(hidden.reshape(-1, hidden.size(-1)), weight, targets, coefficients)
    return loss, section_means(token_losses, sections, valid, counts)


@torch.compiler.disable  # a Python loop over chunks; torch.compile keeps the model body and calls this as is
def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, coefficients: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """sum(coefficients * CE(hidden @ weight.T, targets)) and the detached per-token losses (0 where target -1).

    hidden [N, C], weight [V, C], targets [N] or any shape with N elements, coefficients [N] float32."""
    targets = targets.reshape(-1)
    device_type = hidden.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else hidden.dtype
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(hidden, weight, targets, coefficients, dtype)
    token_losses, _, _ = _chunked_pass(hidden.detach(), weight.detach(), targets, coefficients, dtype, False, False)
    return (coefficients * token_losses).sum(), token_losses


def _chunked_pass(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    coefficients: torch.Tensor,
    dtype: torch.dtype,
    grad_hidden_wanted: bool,
    grad_weight_wanted: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Per-token losses and, as asked, d(sum c*CE)/d hidden [N, C] and d/d weight [V, C] (float32)."""
    n_rows, vocab = hidden.size(0), weight.size(0)
    with torch.autocast(hidden.device.type, enabled=False):
        h, w = hidden.to(dtype), weight.to(dtype)
        token_losses = torch.empty(n_rows, dtype=torch.float32, device=hidden.device)
        grad_hidden = grad_weight = None
        if grad_hidden_wanted:
            grad_hidden = torch.empty(n_rows, hidden.size(1), dtype=torch.float32, device=hidden.device)
        if grad_weight_wanted:
            # Written by the first chunk's matmul, then accumulated into: no pass that only writes zeros.
            grad_weight = torch.empty(weight.shape, dtype=torch.float32, device=hidden.device)
            if n_rows == 0:
                grad_weight.zero_()
        # In float16 a token's gradient row (coefficient ~1/N times probabilities ~1/V) is below the smallest
        # subnormal and would flush to zero before the matmuls (the plain path has the GradScaler's factor in
        # it by then; here that factor only arrives in backward). So low-precision rows are taken relative to
        # the largest coefficient and the float32 results scaled back.
        low_precision = dtype != torch.float32
        wants_grad = grad_hidden is not None or grad_weight is not None
        # A Python number (one host sync a pass): it scales float32 results, as an `alpha` too.
        coefficient_scale = float(coefficients.abs().max().clamp(min=1e-30)) if low_precision and wants_grad else 1.0
        step = chunk_rows(vocab, hidden.device.type)
        logits_buffer = torch.empty(min(step, n_rows), vocab, dtype=dtype, device=hidden.device)
        # In float32 the probabilities overwrite the logits in place (one chunk-sized buffer, not two); in low
        # precision they are float32 beside the logits, and the scaled logit gradients low precision again.
        probs_buffer, grad_buffer = logits_buffer, None
        if low_precision:
            probs_buffer = torch.empty_like(logits_buffer, dtype=torch.float32)
            grad_buffer = torch.empty_like(logits_buffer) if wants_grad else None
        for start in range(0, n_rows, step):
            stop = min(start + step, n_rows)
            h_chunk, t_chunk = h[start:stop], targets[start:stop]
            logits = torch.mm(h_chunk, w.t(), out=logits_buffer[: stop - start])
            scores = probs_buffer[: stop - start].copy_(logits) if low_precision else logits
            safe_targets = t_chunk.clamp(min=0).unsqueeze(1)
            if not wants_grad:
                log_probs = torch.log_softmax(scores, dim=1, out=scores)
                losses = log_probs.gather(1, safe_targets).squeeze(1).neg_()
                token_losses[start:stop] = losses.masked_fill_(t_chunk == -1, 0.0)
                continue
            # One fused kernel, and the gradient needs the probabilities: softmax, not log_softmax then exp (one
            # pass over the chunk fewer). The loss is -log p(target); where that lost its digits, see below.
            probs = torch.softmax(scores, dim=1, out=scores)
            losses = probs.gather(1, safe_targets).squeeze(1).log_().neg_()
            token_losses[start:stop] = losses.masked_fill_(t_chunk == -1, 0.0)
            # d CE / d logits = softmax - onehot, scaled per row by the token's coefficient (0 where ignored).
            grad_logits = probs
            grad_logits.scatter_add_(1, safe_targets, torch.full_like(losses, -1.0).unsqueeze(1))
            chunk_coefficients = coefficients[start:stop].unsqueeze(1)
            if low_precision:
                # One pass: scaled and rounded to low precision together; each product then goes to float32
                # in the one pass that scales it back (into the [V, C] accumulator: add_ with alpha).
                grad_logits = torch.mul(
                    grad_logits, chunk_coefficients / coefficient_scale, out=grad_buffer[: stop - start]
                )
                # (A low-precision tensor times a Python number multiplies in low precision, where these small
                # products underflow: each is widened to float32 before it is scaled.)
                if grad_hidden is not None:
                    torch.mul((grad_logits @ w).float(), coefficient_scale, out=grad_hidden[start:stop])
                if grad_weight is not None:
                    chunk_grad_weight = grad_logits.t() @ h_chunk
                    if start == 0:
                        grad_weight.copy_(chunk_grad_weight).mul_(coefficient_scale)
                    else:
                        grad_weight.add_(chunk_grad_weight, alpha=coefficient_scale)
                continue
            # float32: a row's coefficient scales that row of the gradient, so it goes on the small side of each
            # matmul (a chunk's [rows, C] hidden states and input gradients), not on the [rows, V] logit gradients:
            # diag(c) (P - Y) W and (P - Y)^T (diag(c) H) are the same products, with one pass over V fewer.
            if grad_hidden is not None:
                rows = torch.mm(grad_logits, w, out=grad_hidden[start:stop])
                rows.mul_(chunk_coefficients)
            if grad_weight is not None:
                scaled_hidden = h_chunk * chunk_coefficients
                if start == 0:
                    torch.mm(grad_logits.t(), scaled_hidden, out=grad_weight)
                else:
                    grad_weight.addmm_(grad_logits.t(), scaled_hidden)
        if wants_grad:
            _recompute_large_losses(token_losses, h, w, targets)
    return token_losses, grad_hidden, grad_weight


def _recompute_large_losses(
    token_losses: torch.Tensor, h: torch.Tensor, w: torch.Tensor, targets: torch.Tensor
) -> None:
    """-log p(target) from a float32 probability is exact while p is a normal float; below (a loss above ~87 nats)
    it loses digits or is inf. Such rows are rare (a confidently wrong prediction): their losses are computed again
    from the logits, exactly. One host sync per pass, not one per chunk."""
    rows = (token_losses > LOSS_FROM_PROBABILITY_UP_TO).nonzero().squeeze(1)
    if rows.numel() == 0:
        return
    logits = (h[rows] @ w.t()).float()
    target_logits = logits.gather(1, targets[rows].unsqueeze(1)).squeeze(1)
    token_losses[rows] = torch.logsumexp(logits, dim=1) - target_logits


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, coefficients, dtype):
        token_losses, grad_hidden, grad_weight = _chunked_pass(
            hidden, weight, targets, coefficients, dtype, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        )
        ctx.grads = (grad_hidden, grad_weight)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        ctx.mark_non_differentiable(token_losses)
        return (coefficients * token_losses).sum(), token_losses

    @staticmethod
    def backward(ctx, grad_loss, _grad_token_losses):
        if ctx.grads is None:
            raise RuntimeError("the chunked loss computed its gradients once: backward through it only once")
        grad_hidden, grad_weight = ctx.grads
        ctx.grads = None  # the gradients leave with no other reference: the weight's may become its .grad as is
        hidden_dtype, weight_dtype = ctx.dtypes
        # A CPU step without loss scaling or accumulation passes exactly 1: no pass over the [V, C] weight gradient.
        unit = grad_loss.device.type == "cpu" and float(grad_loss) == 1.0
        if grad_hidden is not None and not (unit and grad_hidden.dtype == hidden_dtype):
            grad_hidden = (grad_hidden * grad_loss).to(hidden_dtype)
        if grad_weight is not None and not (unit and grad_weight.dtype == weight_dtype):
            grad_weight = (grad_weight * grad_loss).to(weight_dtype)
        return grad_hidden, grad_weight, None, None, None
