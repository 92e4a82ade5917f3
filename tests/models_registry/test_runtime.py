"""Running a GGUF in llama.cpp: tokenization, cached next-token logits, sampling and the refinement loop."""

from __future__ import annotations

import numpy as np
import pytest

from models_registry.export.gguf_export import export_gguf
from models_registry.export.verify import default_prompts, torch_logits
from models_registry.runtime import GGUFModel, GGUFTokenSource
from tests.llama import require_llama_cpp
from tests.models_registry.support import (
    fixture_sources,
    tiny_model,
)
from training.hrm.generate import TorchTokenSource, generate_with_refinement

llama_cpp = require_llama_cpp()


@pytest.fixture(scope="module", params=["gpt", "hrm"])
def exported(request, tokenizer, tmp_path_factory):
    model, config = tiny_model(request.param, tokenizer.vocab_size)
    path = tmp_path_factory.mktemp(request.param) / "model.gguf"
    export_gguf((model, config), tokenizer.model_path, path, quant="f32", verify=False)
    runtime = GGUFModel(path, float32_kv_cache=True)
    yield model, runtime
    runtime.close()


def test_tokenize_and_detokenize_match_sentencepiece(tokenizer, exported):
    _, runtime = exported
    texts = (
        fixture_sources()
        + default_prompts()
        + ['bars := "▁▂▃" // U+2581 is SentencePiece\'s own space mark\n', "  lead\r\n\ttab", "😀 中文"]
    )
    for text in texts:
        ids = runtime.tokenize(text)
        assert ids == tokenizer.encode(text)
        assert runtime.detokenize(ids) == tokenizer.decode(ids) == text
    assert runtime.special_ids["</PLAN>"] == tokenizer.special_ids["</PLAN>"]
    assert runtime.special_ids["</s>"] == tokenizer.eos_id
    assert runtime.context_length >= 256


def test_cached_logits_equal_a_fresh_evaluation_and_pytorch(tokenizer, exported):
    model, runtime = exported
    ids = [tokenizer.bos_id] + tokenizer.encode(default_prompts()[0])[:120]
    expected = torch_logits(model, ids)
    # One token at a time (reusing the KV cache), then a branch off an earlier prefix, then all at once.
    for n in range(100, 110):
        assert np.abs(runtime.logits(ids[:n]) - expected[n - 1]).max() <= 1e-3
    assert np.abs(runtime.logits(ids[:50]) - expected[49]).max() <= 1e-3
    assert np.abs(runtime.logits(ids[:50] + [7, 8]) - torch_logits(model, ids[:50] + [7, 8])[-1]).max() <= 1e-3
    assert np.abs(runtime.logits(ids) - expected[-1]).max() <= 1e-3


def test_sampling_is_greedy_at_zero_temperature_and_reproducible_with_a_seed(tokenizer, exported):
    model, runtime = exported
    ids = [tokenizer.bos_id] + tokenizer.encode(default_prompts()[1])
    assert runtime.next_token(ids, temperature=0) == int(np.argmax(torch_logits(model, ids)[-1]))
    assert runtime.next_token(ids, temperature=1.0, top_k=1) == runtime.next_token(ids, temperature=0)
    draws = [[runtime.next_token(ids, 1.0, 20, np.random.default_rng(5)) for _ in range(3)] for _ in range(2)]
    assert draws[0] == draws[1]
    top20 = set(np.argsort(torch_logits(model, ids)[-1])[-20:].tolist())
    rng = np.random.default_rng(0)
    assert {runtime.next_token(ids, 1.0, 20, rng) for _ in range(30)} <= top20


def test_refinement_loop_on_the_gguf_follows_the_pytorch_model(tokenizer, exported):
    model, runtime = exported
    kwargs = {
        "title": "Fix the nil map",
        "body": "Writes panic.",
        "code_before": "package main\n",
        "max_iterations": 2,
        "max_plan_tokens": 12,
        "max_code_tokens": 20,
    }
    theirs = list(generate_with_refinement(GGUFTokenSource(runtime, temperature=0), **kwargs))
    ours = list(generate_with_refinement(TorchTokenSource(model, tokenizer, temperature=0), **kwargs))
    assert theirs == ours
    assert theirs[-1]["type"] == "done"
    assert [event["n"] for event in theirs if event["type"] == "iteration"] == list(
        range(1, theirs[-1]["iterations"] + 1)
    )


def test_the_playground_loads_models_on_a_bounded_number_of_threads(exported, tmp_path):
    """The playground runs llama.cpp in the web process: on PLAYGROUND_THREADS (half the CPUs by default),
    never on every CPU of the machine."""
    import os

    from models_registry import services

    _, runtime = exported
    loaded = services._gguf_model(str(runtime.path))
    try:
        assert loaded._llm.n_threads == services.PLAYGROUND_THREADS
        if not os.environ.get("HRGC_PLAYGROUND_THREADS"):
            assert services.PLAYGROUND_THREADS == max(1, (os.cpu_count() or 2) // 2)
    finally:
        services._loaded.pop(str(runtime.path), None)
