"""The two model families, nanoGPT-style: `hrm` (HRM-Text: planner H and generator L stacks) and `gpt` (llama).

Both compute exactly what the stock runtimes compute, so an export is a renaming of tensors.
Facts read from transformers 5.24 (`models/hrm_text`, `models/llama`) and from the llama.cpp
vendored by llama-cpp-python 0.3.36 (`src/models/hrm-text.cpp`, `src/llama-arch.cpp`,
`src/llama-model.cpp`, `conversion/hrm_text.py`, `conversion/llama.py`):

Family `hrm` (transformers `HrmTextForCausalLM`, llama.cpp architecture `hrm_text`)
  ours (state_dict)                              transformers                     GGUF
  embed_tokens.weight                            model.embed_tokens.weight        token_embd.weight
  lm_head.weight (left out when tied)            lm_head.weight                   output.weight (absent: tied)
  z_L_init                    [n_embd]           model.z_L_init                   hrm.z_l_init (no ".weight")
  L_module.layers.i.self_attn.q_proj.weight      model.L_module.layers.i....      blk.i.attn_q.weight
  ...self_attn.k_proj / v_proj / o_proj          same                             blk.i.attn_k / attn_v / attn_output
  ...self_attn.gate_proj.weight [n_embd, n_embd] same                             blk.i.attn_gate.weight
  ...mlp.gate_proj / up_proj / down_proj         same                             blk.i.ffn_gate / ffn_up / ffn_down
  H_module.layers.j.<same>                       model.H_module.layers.j.<same>   blk.(n_layer + j).<same>
  The L (generator) stack is blocks [0, n_layer), the H (planner) stack blocks [n_layer, 2 n_layer).
  Every RMSNorm is weightless (input_layernorm, post_attention_layernorm, each stack's final_norm),
  so no norm tensors exist; there is no extra output norm: logits = lm_head(zH), zH having just
  passed the H stack's final norm.
  Embedding scale: zH starts as embed_tokens(idx) * EMBEDDING_SCALE (= 1 / initializer_range = 50;
  transformers `embedding_scale`, GGUF `hrm_text.embedding_scale`).
  Attention gate: per channel, y = o_proj(sigmoid(gate_proj(x)) * attention(x)), x the normed input.
  RoPE: rotate-half (llama.cpp NEOX for hrm_text), so Q/K are written as they are, unpermuted.
  GGUF keys: hrm_text.hrm.layers_per_stack = n_layer, .hrm.h_cycles, .hrm.l_cycles,
  .hrm.prefix_lm = false, .block_count = n_layer * h_cycles * (l_cycles + 1) (KV slots aliasing the
  2 n_layer physical blocks), .context_length = block_size, .embedding_length, .feed_forward_length,
  .attention.head_count(_kv) = n_head, .rope.dimension_count = head size, .rope.freq_base = rope_theta,
  .attention.layer_norm_rms_epsilon = norm_eps.
  transformers config: `num_layers_per_stack` = n_layer and `num_hidden_layers` = the inflated slot
  count (the pair the library itself serialises), `head_dim` must be given (its default is 128).

Family `gpt` (transformers `LlamaForCausalLM`, llama.cpp architecture `llama`)
  ours                                  transformers                      GGUF
  embed_tokens.weight                   model.embed_tokens.weight         token_embd.weight
  layers.i.input_layernorm.weight       model.layers.i....                blk.i.attn_norm.weight
  layers.i.self_attn.q_proj / k_proj    same                              blk.i.attn_q / attn_k (PERMUTED, below)
  layers.i.self_attn.v_proj / o_proj    same                              blk.i.attn_v / attn_output
  layers.i.post_attention_layernorm     same                              blk.i.ffn_norm.weight
  layers.i.mlp.gate_proj/up_proj/down   same                              blk.i.ffn_gate / ffn_up / ffn_down
  norm.weight                           model.norm.weight                 output_norm.weight
  lm_head.weight                        lm_head.weight                    output.weight
  llama.cpp's `llama` RoPE rotates interleaved pairs, ours rotate-half: Q and K rows go to GGUF as
  w.reshape(n_head, 2, head_size // 2, n_embd).swapaxes(1, 2).reshape(n_embd, n_embd) (llama.cpp's
  converter `LlamaModel.permute`). No embedding scale.

Gradient routing (forward values never depend on it): transformers' HrmTextModel runs every H step
with gradient and, inside H cycle h, only the last `L_bp_cycles[h]` L steps (the list [2] left-padded
with 1s to h_cycles), the others under torch.no_grad(). We do the same. A literal "whole earlier
cycles under no_grad" would detach zH, and since HRM-Text feeds the token embedding in only as the
first zH, the embedding table would then get no gradient at all. `full_backprop` gives every step
gradient.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from training.hrm.config import ModelConfig
from training.hrm.loss import chunked_section_weighted_loss, linear_cross_entropy, section_weighted_loss

INIT_STD = 0.02
EMBEDDING_SCALE = 1.0 / INIT_STD  # transformers' HrmTextConfig default: 1 / initializer_range
L_BP_CYCLES = (2,)  # transformers' HrmTextConfig default, left-padded with 1s up to h_cycles


class RMSNorm(nn.Module):
    """RMSNorm computed in float32 like the references; `weight=False` is HRM-Text's parameterless norm."""

    def __init__(self, dim: int, eps: float, weight: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if weight else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return normed if self.weight is None else self.weight * normed


class Rotary(nn.Module):
    """cos/sin tables of rotate-half RoPE (transformers' default rope, llama.cpp NEOX)."""

    def __init__(self, head_size: int, theta: float, max_positions: int):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.float) / head_size))
        freqs = torch.outer(torch.arange(max_positions, dtype=torch.float), inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)
        # Not in the state_dict: the runtimes recompute them from rope_theta.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, length: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[start : start + length], self.sin[start : start + length]


class KVCache:
    """The keys and values of the positions a model has read, so that the next tokens are read without
    rereading the context (generation). One pair per attention call, in the order a forward makes them:
    per block for `gpt`; per block per H or L step for `hrm` (llama.cpp's KV slots), since each step sees
    other inputs. Rows are preallocated up to the model's block_size."""

    def __init__(self, block_size: int):
        self.block_size = block_size
        self.length = 0  # positions read
        self._keys: list[torch.Tensor] = []
        self._values: list[torch.Tensor] = []
        self._slot = 0

    def begin(self, new_positions: int) -> int:
        """Start a forward over `new_positions` more tokens; the first one's position."""
        if self.length + new_positions > self.block_size:
            raise ValueError(f"{self.length} cached + {new_positions} tokens exceed block_size {self.block_size}")
        self._slot = 0
        return self.length

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this attention call's new keys/values [B, H, n, D]; all of them so far [B, H, length + n, D]."""
        slot, start, stop = self._slot, self.length, self.length + k.size(2)
        self._slot += 1
        if slot == len(self._keys):
            shape = (k.size(0), k.size(1), self.block_size, k.size(3))
            self._keys.append(k.new_empty(shape))
            self._values.append(v.new_empty(shape))
        self._keys[slot][:, :, start:stop] = k
        self._values[slot][:, :, start:stop] = v
        return self._keys[slot][:, :, :stop], self._values[slot][:, :, :stop]

    def end(self, new_positions: int) -> None:
        self.length += new_positions

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on (the context changed there)."""
        self.length = min(self.length, length)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin. Eager: the same values from `_Rotary` (whose backward is one inverse
    rotation, without the concatenation, negation and zero-filled slice gradients autograd would add);
    under torch.compile the plain expression, which the compiler fuses itself."""
    if torch.compiler.is_compiling():
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)
    return _Rotary.apply(x, cos.to(x.dtype), sin.to(x.dtype))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, inverse: bool) -> torch.Tensor:
    """With x = [x1, x2] by halves and cos/sin repeating over the two halves (Rotary's tables):
    [x1 cos - x2 sin, x2 cos + x1 sin], or the inverse rotation [x1 cos + x2 sin, x2 cos - x1 sin].
    Forward these are the plain expression's operations in its order, so the values are the same bits."""
    half = x.shape[-1] // 2
    c, s = cos[..., :half], sin[..., :half]
    x1, x2 = x[..., :half], x[..., half:]
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    first, second = out[..., :half], out[..., half:]
    torch.mul(x1, c, out=first)
    torch.mul(x2, c, out=second)
    if inverse:
        first.add_(x2 * s)
        second.sub_(x1 * s)
    else:
        first.sub_(x2 * s)
        second.add_(x1 * s)
    return out


class _Rotary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin, inverse=False)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return _rotate(grad, cos, sin, inverse=True), None, None


class SelfAttention(nn.Module):
    """Causal multi-head attention with RoPE; `gated` adds HRM-Text's per-channel sigmoid output gate."""

    def __init__(self, config: ModelConfig, gated: bool):
        super().__init__()
        n_embd = config.n_embd
        self.n_head, self.dropout = config.n_head, config.dropout
        self.q_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.k_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.v_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.o_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.gate_proj = nn.Linear(n_embd, n_embd, bias=False) if gated else None

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (
            proj(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            k, v = cache.extend(k, v)
            # The new queries sit at the end of the keys: query i sees keys up to (cached + i). is_causal would
            # align them to the start instead; one new token sees every key.
            mask = None if T == 1 else torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(k.size(2) - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, C)
        if self.gate_proj is not None:
            y = torch.sigmoid(self.gate_proj(x)) * y
        return self.o_proj(y)


class MLP(nn.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm decoder block. HRM-Text: weightless norms and gated attention; llama: norm weights, no gate."""

    def __init__(self, config: ModelConfig, hrm: bool):
        super().__init__()
        self.input_layernorm = RMSNorm(config.n_embd, config.norm_eps, weight=not hrm)
        self.self_attn = SelfAttention(config, gated=hrm)
        self.post_attention_layernorm = RMSNorm(config.n_embd, config.norm_eps, weight=not hrm)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Stack(nn.Module):
    """One HRM-Text stack (the planner H or the generator L): n_layer blocks, then a weightless RMSNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(Block(config, hrm=True) for _ in range(config.n_layer))
        self.final_norm = RMSNorm(config.n_embd, config.norm_eps, weight=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, cos, sin, cache)
        return self.final_norm(x)


class LanguageModel(nn.Module):
    """What both families share: the head, the loss, optimiser groups and parameter counts."""

    config: ModelConfig
    embed_tokens: nn.Embedding
    lm_head: nn.Linear

    def _init_weights(self, n_blocks: int) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                # Residual-stream writers get GPT-2's depth-scaled init.
                residual = name.endswith(("o_proj", "down_proj"))
                std = INIT_STD / math.sqrt(2 * n_blocks) if residual else INIT_STD
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        if self.config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def hidden_states(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """The last hidden states [B, T, C] of idx; with a cache, idx holds the tokens after the cached ones."""
        start = 0 if cache is None else cache.begin(idx.size(1))
        cos, sin = self.rotary(idx.size(1), start)
        hidden = self._hidden_states(idx, cos, sin, cache)
        if cache is not None:
            cache.end(idx.size(1))
        return hidden

    def _hidden_states(
        self, idx: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def next_logits(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [B, V] after the tokens idx [B, n] that follow the cache's (which then holds them too)."""
        return self.lm_head(self.hidden_states(idx, cache)[:, -1])

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        sections: torch.Tensor | None = None,
        section_weights: dict[str, float] | None = None,
        all_logits: bool = False,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, dict[str, torch.Tensor]]:
        """With targets: the section-weighted loss and each present section's mean loss, computed in row
        chunks that never hold a batch's logits (logits None), unless `all_logits` asks for the logits
        [B, T, V] too (the plain computation). Without targets: the last position's logits [B, 1, V]
        (or all of them with `all_logits`), loss None and no section losses."""
        if idx.size(1) > self.config.block_size:
            raise ValueError(f"sequence of {idx.size(1)} tokens exceeds block_size {self.config.block_size}")
        hidden = self.hidden_states(idx)
        if targets is None:
            return self.lm_head(hidden if all_logits else hidden[:, -1:, :]), None, {}
        if all_logits:
            logits = self.lm_head(hidden)
            return logits, *section_weighted_loss(logits, targets, sections, section_weights)
        loss, section_losses = chunked_section_weighted_loss(
            hidden, self.lm_head.weight, targets, sections, section_weights
        )
        return None, loss, section_losses

    @torch.no_grad()
    def token_losses(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token cross-entropy [B, T] (0 where the target is -1), in chunks, without the logits."""
        hidden = self.hidden_states(idx)
        flat = hidden.reshape(-1, hidden.size(-1))
        coefficients = torch.zeros(flat.size(0), device=flat.device)
        return linear_cross_entropy(flat, self.lm_head.weight, targets, coefficients)[1].view_as(targets)

    def optim_groups(
        self, weight_decay: float, planner_lr_multiplier: float, generator_lr_multiplier: float
    ) -> list[dict]:
        """AdamW groups: decay on 2-D weights except embeddings; LR ×planner on H, ×generator on L, else ×1."""
        groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            part = (
                "planner" if name.startswith("H_module.") else "generator" if name.startswith("L_module.") else "shared"
            )
            decay = param.dim() >= 2 and not name.startswith("embed_tokens.")
            groups.setdefault((part, decay), []).append(param)
        multipliers = {"planner": planner_lr_multiplier, "generator": generator_lr_multiplier, "shared": 1.0}
        return [
            {
                "params": params,
                "weight_decay": weight_decay if decay else 0.0,
                "lr_multiplier": multipliers[part],
                "name": f"{part}/{'decay' if decay else 'no_decay'}",
            }
            for (part, decay), params in groups.items()
        ]

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Unique parameters (a tied head counts once); optionally without the token embedding table."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.embed_tokens.weight.numel() if exclude_embeddings else total


class HRMText(LanguageModel):
    """HRM-Text: the generator L refines zL from zH, then the planner H updates zH from zL, for h_cycles."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.L_module = Stack(config)  # the generator: detailed, fast
        self.H_module = Stack(config)  # the planner: abstract, slow
        # Zeros as in transformers. DDP needs every trainable parameter to receive a gradient, so it
        # trains only when the gradient routing reaches the very first L step (frozen otherwise, as in
        # transformers, which never trains it).
        self.z_L_init = nn.Parameter(torch.zeros(config.n_embd), requires_grad=self._grad_at(0, 0))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.rotary = Rotary(config.n_embd // config.n_head, config.rope_theta, config.block_size)
        self._init_weights(n_blocks=2 * config.n_layer)

    @property
    def planner(self) -> Stack:
        return self.H_module

    @property
    def generator(self) -> Stack:
        return self.L_module

    def _grad_at(self, h: int, l_step: int) -> bool:
        """Whether L step `l_step` of H cycle `h` carries gradient (transformers' L_bp_cycles routing)."""
        if self.config.full_backprop:
            return True
        h_cycles, l_cycles = self.config.h_cycles, self.config.l_cycles
        with_grad = [1] * max(0, h_cycles - len(L_BP_CYCLES)) + list(L_BP_CYCLES)
        return l_step >= l_cycles - with_grad[h]

    def _hidden_states(
        self, idx: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        z_H = self.embed_tokens(idx) * EMBEDDING_SCALE
        z_L = self.z_L_init.to(z_H.dtype).expand_as(z_H)
        for h in range(self.config.h_cycles):
            for l_step in range(self.config.l_cycles):
                with nullcontext() if self._grad_at(h, l_step) else torch.no_grad():
                    z_L = self.L_module(z_H + z_L, cos, sin, cache)
            z_H = self.H_module(z_H + z_L, cos, sin, cache)
        return z_H


class GPT(LanguageModel):
    """The llama-architecture baseline: n_layer blocks over the same token stream, final RMSNorm, head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.layers = nn.ModuleList(Block(config, hrm=False) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.rotary = Rotary(config.n_embd // config.n_head, config.rope_theta, config.block_size)
        self._init_weights(n_blocks=config.n_layer)

    def _hidden_states(
        self, idx: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        x = self.embed_tokens(idx)
        for layer in self.layers:
            x = layer(x, cos, sin, cache)
        return self.norm(x)


def estimate_flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward), counted per matmul as nanoGPT's estimate_mfu does.

    A matmul costs 2 FLOPs per multiply-add forward and twice that backward (input and weight gradients).
    Attention's two matmuls (QK^T, then AV) count the whole sequence as nanoGPT does, not the causal half.
    Elementwise work, norms, softmax and the embedding lookup are left out. hrm runs its stacks
    n_layer x h_cycles x (l_cycles + 1) times forward, and backward only the steps that carry gradient
    (transformers' L_bp_cycles routing: every H step, the last L_bp_cycles[h] L steps of H cycle h)."""
    c, i = config.n_embd, config.intermediate_size
    block = 4 * c * c + 3 * c * i + 2 * seq_len * c  # q, k, v, o projections; gate, up, down; QK^T and AV
    head = c * config.vocab_size  # lm_head, the largest single matmul at a 50K vocabulary
    if config.family == "hrm":
        block += c * c  # the attention output gate
        forward_blocks = config.n_layer * config.h_cycles * (config.l_cycles + 1)
        if config.full_backprop:
            backward_blocks = forward_blocks
        else:
            h, l_cycles = config.h_cycles, config.l_cycles
            with_grad = [1] * max(0, h - len(L_BP_CYCLES)) + list(L_BP_CYCLES)
            l_steps = sum(min(l_cycles, with_grad[cycle]) for cycle in range(h))
            backward_blocks = config.n_layer * (h + l_steps)
    else:
        forward_blocks = backward_blocks = config.n_layer
    forward_macs = forward_blocks * block + head
    backward_macs = 2 * (backward_blocks * block + head)
    return 2.0 * (forward_macs + backward_macs)


def build_model(cfg: ModelConfig) -> LanguageModel:
    if cfg.family == "hrm":
        return HRMText(cfg)
    if cfg.family == "gpt":
        return GPT(cfg)
    raise ValueError(f"unknown model family {cfg.family!r}")


# ------------------------------------------------------------------------ transformers / export mapping


def hf_state_dict(model: LanguageModel) -> dict[str, torch.Tensor]:
    """Our weights under transformers' names (HrmTextForCausalLM / LlamaForCausalLM), contiguous,
    float as stored. A tied head is left out: transformers re-ties it and llama.cpp falls back to
    token_embd when `output.weight` is absent (safetensors also refuses shared tensors)."""
    tensors = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_embeddings:
            continue
        hf_name = name if name.startswith("lm_head.") else f"model.{name}"
        tensors[hf_name] = tensor.detach().contiguous()
    return tensors


def hf_config(model_config: ModelConfig) -> dict:
    """The transformers `config.json` content for the family (also the llama.cpp converter's input)."""
    c = model_config
    common = {
        "vocab_size": c.vocab_size,
        "hidden_size": c.n_embd,
        "intermediate_size": c.intermediate_size,
        "num_attention_heads": c.n_head,
        "head_dim": c.n_embd // c.n_head,
        "hidden_act": "silu",
        "max_position_embeddings": c.block_size,
        "initializer_range": INIT_STD,
        "rms_norm_eps": c.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": c.tie_embeddings,
        "dtype": "float32",
    }
    if c.family == "hrm":
        return {
            "architectures": ["HrmTextForCausalLM"],
            "model_type": "hrm_text",
            **common,
            # transformers' own serialised pair: the per-stack count and the inflated KV-slot count.
            "num_layers_per_stack": c.n_layer,
            "num_hidden_layers": c.n_layer * c.h_cycles * (c.l_cycles + 1),
            "H_cycles": c.h_cycles,
            "L_cycles": c.l_cycles,
            "L_bp_cycles": list(L_BP_CYCLES),
            "embedding_scale": EMBEDDING_SCALE,
            "prefix_lm": False,
        }
    if c.family == "gpt":
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            **common,
            "num_hidden_layers": c.n_layer,
            "num_key_value_heads": c.n_head,
        }
    raise ValueError(f"unknown model family {c.family!r}")
