"""Generation with a KV cache reads the same logits as rereading the whole context, for both families."""

from dataclasses import replace

import pytest
import torch

from training.hrm.config import preset
from training.hrm.generate import TorchTokenSource, context_window
from training.hrm.model import KVCache, build_model

VOCAB = 61


def tiny_model(family: str, block_size: int = 48):
    config = replace(preset(family, "tiny", vocab_size=VOCAB).model, block_size=block_size)
    torch.manual_seed(0)
    return build_model(config).eval()


def full_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids]), all_logits=True)[0][0]


@pytest.mark.parametrize("family", ["hrm", "gpt"])
def test_cached_logits_equal_the_whole_context_reread(family):
    model = tiny_model(family)
    ids = torch.randint(0, VOCAB, (40,), generator=torch.Generator().manual_seed(1)).tolist()
    expected = full_logits(model, ids)
    cache = KVCache(model.config.block_size)

    def read(tokens: list[int]) -> torch.Tensor:  # every position's logits, as the cache reads them
        with torch.no_grad():
            return model.lm_head(model.hidden_states(torch.tensor([tokens]), cache))[0]

    got = [read(ids[:7])]  # a prompt of several tokens at once
    got += [read([token]) for token in ids[7:30]]  # then one at a time
    got += [read(ids[30:])]  # and several again, after cached ones
    assert cache.length == 40
    assert torch.allclose(torch.cat(got), expected, atol=1e-5)
    assert torch.allclose(model.next_logits(torch.tensor([ids[39:]]), KVCache(48)), full_logits(model, ids[39:]))

    # A context that changed at position 25 keeps the first 25 positions and reads on from there.
    cache.truncate(25)
    other = ids[:25] + [(token + 1) % VOCAB for token in ids[25:33]]
    changed = model.next_logits(torch.tensor([other[25:]]), cache)[0]
    assert torch.allclose(changed, full_logits(model, other)[-1], atol=1e-5)

    with pytest.raises(ValueError, match="block_size"):
        model.next_logits(torch.tensor([ids[:20]]), cache)  # 33 cached + 20 > 48


@pytest.mark.parametrize("family", ["hrm", "gpt"])
def test_greedy_tokens_with_the_cache_follow_the_model_through_edits_and_crops(family):
    model = tiny_model(family, block_size=32)
    source = TorchTokenSource(model, tokenizer=type("NoText", (), {"special_ids": {}})(), temperature=0)
    ids = torch.randint(0, VOCAB, (10,), generator=torch.Generator().manual_seed(2)).tolist()
    contexts, tokens = [], []
    for step in range(50):  # 10 + 50 tokens: past the 32 of context, so the window is cropped on the way
        if step == 15:
            ids = ids[:12] + [3, 4, 5]  # the transcript re-tokenized differently after an attempt
        contexts.append(list(ids))
        tokens.append(source.next_token(ids))
        ids.append(tokens[-1])
    for context, token in zip(contexts, tokens, strict=True):
        assert token == int(full_logits(model, context_window(context, 32))[-1].argmax()), len(context)
    assert source.cache.length <= 32
