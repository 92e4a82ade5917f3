"""Reload an export in the runtime users will run it in and compare it with the PyTorch model it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.hrm.model import LanguageModel
from training.tokenizer import Tokenizer

# Max abs logit difference allowed. F32: the file holds PyTorch's exact weights; what remains is
# summation order (llama.cpp runs with a float32 KV cache here; measured: under 1e-5). F16: each
# weight is rounded to 11 significant bits and llama.cpp also rounds activations to F16 for F16
# matmuls, so the error grows with the logits' own range: the bound is 1e-2 x max |logit| (measured
# on briefly trained tiny models of both families: about 4e-4 x max |logit|).
F32_TOLERANCE = 1e-3
F16_RELATIVE_TOLERANCE = 1e-2
# Q8_0 keeps 8 bits per weight: logits move too much for a fixed bound, so the check is the argmax.
Q8_0_MIN_TOP1_AGREEMENT = 0.95
SAFETENSORS_TOLERANCE = 1e-4

_GO_SAMPLE = (
    'package cache\n\nimport (\n\t"sync"\n\t"time"\n)\n\n'
    "// Cache keeps values for a while. Größe ist begrenzt — 容量 is bounded.\n"
    "type Cache struct {\n\tmu    sync.Mutex\n\titems map[string]entry\n}\n\n"
    "func (c *Cache) Get(key string) (string, bool) {\n\tc.mu.Lock()\n\tdefer c.mu.Unlock()\n"
    '\te, ok := c.items[key]\n\tif !ok || time.Now().After(e.expires) {\n\t\treturn "", false\n\t}\n'
    "\treturn e.value, true\n}\n"
)


def default_prompts() -> list[str]:
    """Fixed prompts in the training format (serialized record starts), with Go code, tabs and Unicode."""
    from training.hrm.generate import task_prompt

    prompts = []
    for title, body, code in (
        ("Fix expired entries returned by Get", "Get returned values past their expiry.\n", _GO_SAMPLE),
        ("Add a Len method", "", 'package main\n\nfunc main() {\n\tprintln("héllo")\n}\n'),
    ):
        header, context = task_prompt(repo="owner/repo", title=title, body=body, path="cache.go", code_before=code)
        prompts.append(header + "<STEP> <INTENT:FIX> <TARGET:func> Get\n</PLAN>\n" + context + "<CODE>\n<AFTER>\n")
    return prompts


def default_parity_texts() -> list[str]:
    """Go sources for the tokenization check: the prompts, plus the repository's Go fixtures when present."""
    texts = [
        *default_prompts(),
        _GO_SAMPLE,
        "x := 1   \n\n\n    y := 2  \r\n\t\t// tabs\t\n",
        's := "😀 中文 Ελληνικά"\n',
    ]
    fixtures = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "go"
    # Bytes, not read_text(): universal newlines would turn a CRLF file into LF.
    texts += [path.read_bytes().decode("utf-8") for path in sorted(fixtures.glob("*.go"))]
    return texts


def _sequences(tokenizer: Tokenizer, prompts: list[str], max_tokens: int) -> list[list[int]]:
    # Records start with <s> in training, so the comparison does too.
    return [([tokenizer.bos_id] + tokenizer.encode(prompt))[:max_tokens] for prompt in prompts]


@torch.no_grad()
def torch_logits(model: LanguageModel, ids: list[int]) -> np.ndarray:
    idx = torch.tensor([ids], dtype=torch.long)
    return model.eval()(idx, all_logits=True)[0][0].float().numpy()


def compare_logits(expected: list[np.ndarray], actual: list[np.ndarray]) -> dict[str, Any]:
    diffs = [np.abs(e - a) for e, a in zip(expected, actual, strict=True)]
    agree = np.concatenate([e.argmax(-1) == a.argmax(-1) for e, a in zip(expected, actual, strict=True)])
    return {
        "positions": int(agree.size),
        "max_abs_diff": float(max(d.max() for d in diffs)),
        "mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
        "max_abs_logit": float(max(np.abs(e).max() for e in expected)),
        "top1_agreement": float(agree.mean()),
    }


def logits_pass(result: dict[str, Any], quant: str) -> tuple[bool, str]:
    """Whether a comparison meets the bound for `quant`, and the bound in words."""
    if quant == "f32":
        return result["max_abs_diff"] <= F32_TOLERANCE, f"max abs diff <= {F32_TOLERANCE}"
    if quant == "f16":
        bound = F16_RELATIVE_TOLERANCE * max(1.0, result["max_abs_logit"])
        return result["max_abs_diff"] <= bound, f"max abs diff <= {bound:.3g} ({F16_RELATIVE_TOLERANCE} x max |logit|)"
    if quant == "q8_0":
        return (
            result["top1_agreement"] >= Q8_0_MIN_TOP1_AGREEMENT,
            f"top-1 agreement >= {Q8_0_MIN_TOP1_AGREEMENT:.0%}",
        )
    raise ValueError(f"unknown quant {quant!r}")


def verify_gguf(
    gguf_path: Path | str,
    model: LanguageModel,
    tokenizer: Tokenizer,
    prompts: list[str] | None = None,
    *,
    quant: str | None = None,
    parity_texts: list[str] | None = None,
) -> dict[str, Any]:
    """Load the GGUF in llama.cpp, compare next-token logits with PyTorch at every position of each prompt,
    and check that llama.cpp tokenizes Go sources exactly as our SentencePiece tokenizer does.

    Returns {"ok", "quant", "architecture", "logits": {...}, "tokenization": {...}}; "ok" is None (with
    "skipped") when llama-cpp-python is not installed."""
    from models_registry.runtime import GGUFModel, llama_cpp_available

    if not llama_cpp_available():
        return {"ok": None, "skipped": "llama-cpp-python is not installed"}
    quant = quant or _gguf_quant(Path(gguf_path))
    sequences = _sequences(tokenizer, prompts or default_prompts(), model.config.block_size)
    n_ctx = max(len(ids) for ids in sequences)
    runtime = GGUFModel(gguf_path, n_ctx=n_ctx, all_logits=True, float32_kv_cache=True)
    try:
        logits = compare_logits(
            [torch_logits(model, ids) for ids in sequences], [runtime.all_logits(ids) for ids in sequences]
        )
        logits["ok"], logits["bound"] = logits_pass(logits, quant)
        tokenization = tokenization_parity(runtime, tokenizer, parity_texts or default_parity_texts())
        architecture = runtime.architecture
    finally:
        runtime.close()
    return {
        "ok": bool(logits["ok"] and tokenization["ok"]),
        "quant": quant,
        "architecture": architecture,
        "logits": logits,
        "tokenization": tokenization,
    }


def tokenization_parity(runtime: Any, tokenizer: Tokenizer, texts: list[str]) -> dict[str, Any]:
    """Texts on which llama.cpp's ids (and its decoding of them) differ from SentencePiece's."""
    mismatches = []
    tokens = 0
    for index, text in enumerate(texts):
        expected, actual = tokenizer.encode(text), runtime.tokenize(text)
        tokens += len(expected)
        if expected != actual:
            first = next(
                (i for i, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a),
                min(len(expected), len(actual)),
            )
            mismatches.append(
                {
                    "text": index,
                    "first_difference": first,
                    "expected": expected[first : first + 5],
                    "actual": actual[first : first + 5],
                }
            )
        elif runtime.detokenize(actual) != tokenizer.decode(expected):
            mismatches.append({"text": index, "decode": True})
    return {"ok": not mismatches, "texts": len(texts), "tokens": tokens, "mismatches": mismatches[:10]}


def _gguf_quant(path: Path) -> str:
    import gguf

    field = gguf.GGUFReader(path).fields["general.file_type"]
    file_type = gguf.LlamaFileType(int(field.parts[field.data[0]][0]))
    return {
        gguf.LlamaFileType.ALL_F32: "f32",
        gguf.LlamaFileType.MOSTLY_F16: "f16",
        gguf.LlamaFileType.MOSTLY_Q8_0: "q8_0",
    }[file_type]


@torch.no_grad()
def verify_safetensors(folder: Path | str, model: LanguageModel, ids: list[list[int]] | None = None) -> dict[str, Any]:
    """Load the folder with transformers' AutoModelForCausalLM and compare its logits with PyTorch's.

    Without `ids`, two fixed pseudo-random sequences are used (the logits do not care whether the
    tokens form text). "ok" is None (with "skipped") when transformers is not installed."""
    try:
        from transformers import AutoModelForCausalLM
    except ImportError:
        return {"ok": None, "skipped": "transformers is not installed"}
    if ids is None:
        generator = torch.Generator().manual_seed(0)
        length = min(model.config.block_size, 48)
        ids = torch.randint(0, model.config.vocab_size, (2, length), generator=generator).tolist()
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    expected = [torch_logits(model, sequence) for sequence in ids]
    actual = [loaded(torch.tensor([sequence])).logits[0].float().numpy() for sequence in ids]
    result = compare_logits(expected, actual)
    result["ok"] = result["max_abs_diff"] <= SAFETENSORS_TOLERANCE
    result["bound"] = f"max abs diff <= {SAFETENSORS_TOLERANCE}"
    result["class"] = type(loaded).__name__
    return result
