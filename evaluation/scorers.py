"""One model scored on one task, the same way for both backends: a training checkpoint run by PyTorch
(`TorchScorer`) and an exported GGUF run by llama.cpp (`GGUFScorer`), so the cost of export and
quantization shows in the same numbers.

- `teacher_forced(prompt, reference)`: the model reads `<s>` + prompt + reference, tokenized as the
  dataset tokenized records (`<s>` then the text as one piece), and is scored on the reference's
  tokens only: (summed cross-entropy in nats, reference tokens, tokens whose argmax was right).
- `generate(prompt, max_attempts=, max_tokens=)`: greedy (temperature 0) refinement loop from the
  prompt (`training.hrm.generate.generate_from_prompt`): [{code, parses, errors, decision}] per attempt.

Longer than the model's context: the prompt is cropped from the left (its start, `<s>` included, is
dropped) so that prompt and reference fit; a reference longer than the context itself is scored in
windows of half the context, each target token seeing at least half a context before it.
Domain code: no Django here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from corpus import golang
from training.hrm.generate import TokenSource, TorchTokenSource, generate_from_prompt
from training.tokenizer import Tokenizer


def reference_windows(total: int, n_reference: int, context: int) -> list[tuple[int, int, int]]:
    """How to score the last `n_reference` of `total` tokens with a model that reads `context` at once:
    (start, first_target, end) per forward pass, which reads tokens [start, end - 1) and scores the
    targets [first_target, end). Every target is scored once, with as much context as fits."""
    first = total - n_reference
    step = max(1, n_reference if n_reference <= context else context // 2)
    windows = []
    for begin in range(first, total, step):
        end = min(total, begin + step)
        windows.append((max(0, end - 1 - context), begin, end))
    return windows


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def score_logits(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """(summed cross-entropy in nats, argmax hits) of logits [T, V] against targets [T], in float64."""
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    loss = -log_probs.gather(1, targets.view(-1, 1)).sum()
    return float(loss), int((logits.argmax(-1) == targets).sum())


class _Scorer:
    """What both backends share; a backend gives tokenize, bos_id, context_length, logits_at, token_source."""

    bos_id: int
    context_length: int

    def tokenize(self, text: str) -> list[int]:
        raise NotImplementedError

    def logits_at(self, ids: list[int]) -> torch.Tensor:
        """Logits [len(ids), V] at every position of `ids` (at most context_length of them)."""
        raise NotImplementedError

    def token_source(self) -> TokenSource:
        raise NotImplementedError

    def token_ids(self, prompt: str, reference: str) -> tuple[list[int], int]:
        """`<s>` + the tokens of prompt + reference as one text (as the dataset tokenized the record), and
        how many of them belong to the reference: those past the prompt's own tokens. A prompt ending in a
        tag (`<CODE>`, a single piece) always ends on a token boundary."""
        full = [self.bos_id, *self.tokenize(prompt + reference)]
        prompt_ids = [self.bos_id, *self.tokenize(prompt)]
        return full, len(full) - common_prefix(prompt_ids, full)

    def teacher_forced(self, prompt: str, reference: str) -> tuple[float, int, int]:
        """(loss summed over the reference tokens in nats, reference tokens, tokens predicted by argmax)."""
        ids, n_reference = self.token_ids(prompt, reference)
        loss_sum, correct = 0.0, 0
        for start, first, end in reference_windows(len(ids), n_reference, self.context_length):
            logits = self.logits_at(ids[start : end - 1])[first - 1 - start :]
            loss, hits = score_logits(logits, torch.tensor(ids[first:end], dtype=torch.long))
            loss_sum, correct = loss_sum + loss, correct + hits
        return loss_sum, n_reference, correct

    def generate(self, prompt: str, *, max_attempts: int, max_tokens: int) -> list[dict]:
        """Greedy refinement loop from the prompt (a record up to and including `<CODE>`): per attempt its
        code (tags removed), whether it parses (`golang.attempt_parses`), the errors and the model's decision
        after it (`</CODE>`, `<REFINE>`, or None when cut by the token limit)."""
        events = generate_from_prompt(
            self.token_source(),
            prompt,
            max_iterations=max_attempts,
            max_code_tokens=max_tokens,
            validate=golang.attempt_errors,
        )
        return [
            {"code": e["code"], "parses": e["syntax_ok"], "errors": e["errors"], "decision": e["decision"]}
            for e in events
            if e["type"] == "iteration"
        ]


class TorchScorer(_Scorer):
    """A PyTorch model of either family (`hrm`, `gpt`) with the tokenizer of its dataset."""

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.bos_id = tokenizer.bos_id
        self.context_length = model.config.block_size
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(
        cls, checkpoint_path: Path | str, tokenizer_path: Path | str, *, device: str | torch.device = "cpu"
    ) -> TorchScorer:
        """A checkpoint the train loop wrote, built for its family from the run configuration it stores
        (as export does), float32 in eval mode on `device`."""
        from models_registry.export import load_source

        model, _ = load_source(Path(checkpoint_path))
        return cls(model.to(device), Tokenizer(tokenizer_path))

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    @torch.no_grad()
    def logits_at(self, ids: list[int]) -> torch.Tensor:
        idx = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.model(idx, all_logits=True)[0][0].float().cpu()

    def token_source(self) -> TokenSource:
        return TorchTokenSource(self.model, self.tokenizer, temperature=0.0)


class GGUFScorer(_Scorer):
    """An exported GGUF in llama.cpp (`models_registry.runtime.GGUFModel`), with the tokenizer it embeds.

    `float32_kv_cache` False keeps llama.cpp's default float16 cache, what a user's deployment runs."""

    def __init__(self, gguf_path: Path | str, *, n_threads: int | None = None, float32_kv_cache: bool = False):
        from models_registry.runtime import GGUFModel

        self.model = GGUFModel(gguf_path, n_threads=n_threads, all_logits=True, float32_kv_cache=float32_kv_cache)
        self.bos_id = self.model.bos_id
        self.context_length = self.model.context_length

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text)

    def logits_at(self, ids: list[int]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.model.all_logits(ids)))

    def token_source(self) -> TokenSource:
        from models_registry.runtime import GGUFTokenSource

        return GGUFTokenSource(self.model, temperature=0.0)

    def close(self) -> None:
        self.model.close()
