"""Run an exported GGUF in stock llama.cpp (llama-cpp-python): tokenize, next-token logits, sampling.

`GGUFModel` keeps llama.cpp's KV cache between calls and evaluates only the tokens past the longest
prefix it has already seen, so asking for one token after another (streaming) costs one token each.
`GGUFTokenSource` is what `training.hrm.generate.generate_with_refinement` needs, so the playground
runs the exact file a user downloads.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

from training.hrm.generate import context_window

WS_MARK = "\u2581"  # SentencePiece's space mark; see GGUFModel.tokenize
_PIECE_BUFFER = 256  # bytes: longer than any piece (16 characters of at most 4 bytes, or a tag)


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def trained_context_length(path: Path) -> int:
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields["general.architecture"]
    architecture = bytes(field.parts[field.data[0]]).decode()
    field = reader.fields[f"{architecture}.context_length"]
    return int(field.parts[field.data[0]][0])


class GGUFModel:
    """One GGUF file loaded in llama.cpp on the CPU. Not for concurrent use from several threads at once
    (calls are serialised by a lock); load one per playground session."""

    def __init__(
        self,
        path: Path | str,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        all_logits: bool = False,
        float32_kv_cache: bool = False,
    ):
        """`n_ctx` defaults to the model's context length. `all_logits` keeps every position's logits
        (`all_logits()`; n_ctx x vocab floats of memory). `float32_kv_cache` stores keys and values in
        float32 instead of llama.cpp's default float16, so a float32 export reproduces PyTorch exactly."""
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(self.path)
        # llama-cpp-python sizes its token buffer from the n_ctx it is given: 0 ("the model's") leaves
        # it empty, so ask the file for its trained context length.
        n_ctx = n_ctx or trained_context_length(self.path)
        kv_type = llama_cpp.GGML_TYPE_F32 if float32_kv_cache else None
        self._llm = llama_cpp.Llama(
            model_path=str(self.path),
            n_ctx=n_ctx or 0,
            n_batch=n_ctx or 512,
            n_ubatch=n_ctx or 512,
            n_threads=n_threads or max(1, os.cpu_count() or 1),
            logits_all=all_logits,
            type_k=kv_type,
            type_v=kv_type,
            verbose=False,
        )
        self._all_logits = all_logits
        self._lock = threading.Lock()
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        # llama.cpp may round its context up (to 256); the token buffer keeps the size asked for.
        self.context_length: int = min(self._llm.n_ctx(), len(self._llm.input_ids))
        self.vocab_size: int = self._llm.n_vocab()
        self.bos_id: int = self._llm.token_bos()
        self.eos_id: int = self._llm.token_eos()
        self.metadata: dict[str, str] = dict(self._llm.metadata)
        self.architecture: str = self.metadata.get("general.architecture", "")
        # Control tokens and user-defined tags by their text, and the byte pieces (<0xE2> ...).
        self.special_ids: dict[str, int] = {}
        self._byte_ids: dict[int, int] = {}
        special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        for token_id in range(self.vocab_size):
            attr = llama_cpp.llama_vocab_get_attr(self._vocab, token_id)
            if attr & special or attr & llama_cpp.LLAMA_TOKEN_ATTR_BYTE:
                text = llama_cpp.llama_vocab_get_text(self._vocab, token_id).decode("utf-8")
                if attr & special:
                    self.special_ids.setdefault(text, token_id)
                elif text.startswith("<0x") and text.endswith(">"):
                    self._byte_ids[int(text[3:-1], 16)] = token_id
        self._ws_mark_ids = [self._byte_ids[b] for b in WS_MARK.encode()] if len(self._byte_ids) == 256 else None

    # ------------------------------------------------------------------------------------ text

    def tokenize(self, text: str) -> list[int]:
        """llama.cpp's tokenization without BOS; tags (user-defined tokens) become their single ids,
        control tokens like `</s>` written in the text stay text, as in SentencePiece.

        A literal U+2581 is SentencePiece's own space mark, which both tokenizers would read as a
        space; like training.tokenizer.Tokenizer, it is fed as its three UTF-8 byte pieces instead."""
        if WS_MARK not in text or self._ws_mark_ids is None:
            return self._tokenize(text)
        ids: list[int] = []
        for index, segment in enumerate(text.split(WS_MARK)):
            if index:
                ids.extend(self._ws_mark_ids)
            ids.extend(self._tokenize(segment))
        return ids

    def _tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def piece_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (control tokens: none), by llama.cpp's own token_to_piece."""
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER)
        n = self._llama_cpp.llama_token_to_piece(self._vocab, int(token_id), buffer, _PIECE_BUFFER, 0, False)
        if n < 0:
            raise ValueError(f"token {token_id} is longer than {_PIECE_BUFFER} bytes")
        return buffer.raw[:n]

    def detokenize(self, ids: list[int]) -> str:
        """Text of the ids; half a UTF-8 character (from byte pieces) shows as U+FFFD, as SentencePiece does."""
        return b"".join(self.piece_bytes(i) for i in ids).decode("utf-8", errors="replace")

    # ---------------------------------------------------------------------------------- logits

    def logits(self, ids: list[int]) -> np.ndarray:
        """Next-token logits after `ids` (float32, [vocab]); only tokens past the cached prefix are evaluated."""
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError("need at least one token")
        if len(ids) > self.context_length:
            raise ValueError(f"{len(ids)} tokens exceed the context length {self.context_length}")
        with self._lock:
            llm = self._llm
            cached = llm.input_ids[: llm.n_tokens].tolist()
            prefix = 0
            for cached_id, new_id in zip(cached, ids, strict=False):
                if cached_id != new_id:
                    break
                prefix += 1
            # The last token is always evaluated again: its logits are what is asked for.
            llm.n_tokens = min(prefix, len(ids) - 1)
            llm.eval(ids[llm.n_tokens :])
            pointer = self._llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            return np.ctypeslib.as_array(pointer, shape=(self.vocab_size,)).copy()

    def all_logits(self, ids: list[int]) -> np.ndarray:
        """Logits at every position of `ids` ([len(ids), vocab]); needs `all_logits=True` at load."""
        if not self._all_logits:
            raise RuntimeError("load the model with all_logits=True")
        ids = [int(i) for i in ids]
        if not ids or len(ids) > self.context_length:
            raise ValueError(f"need 1 to {self.context_length} tokens, got {len(ids)}")
        with self._lock:
            self._llm.reset()
            self._llm.eval(ids)
            return np.array(self._llm.scores[: len(ids)], dtype=np.float32)

    def next_token(
        self, ids: list[int], temperature: float = 0.8, top_k: int | None = 50, rng: np.random.Generator | None = None
    ) -> int:
        """Greedy at temperature 0, else a sample from the top-k softmax at `temperature`."""
        logits = self.logits(ids).astype(np.float64)
        if temperature <= 0:
            return int(np.argmax(logits))
        logits /= temperature
        if top_k and top_k < logits.size:
            kth = np.partition(logits, -top_k)[-top_k]
            logits[logits < kth] = -np.inf
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        rng = rng if rng is not None else np.random.default_rng()
        return int(rng.choice(probs.size, p=probs))

    def close(self) -> None:
        self._llm.close()


class GGUFTokenSource:
    """`training.hrm.generate.TokenSource` over a GGUF: same sampling rules as its TorchTokenSource,
    and like it, a context longer than the model's is cropped to its most recent tokens by
    `training.hrm.generate.context_window`, in steps that let llama.cpp reuse its cache."""

    def __init__(self, model: GGUFModel, *, temperature: float = 0.8, top_k: int | None = 50, seed: int | None = None):
        self.model = model
        self.special_ids = model.special_ids
        self.temperature, self.top_k = temperature, top_k
        self.rng = np.random.default_rng(seed)

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text)

    def detokenize(self, ids: list[int]) -> str:
        return self.model.detokenize(ids)

    def next_token(self, ids: list[int]) -> int:
        context = context_window(ids, self.model.context_length)
        return self.model.next_token(context, self.temperature, self.top_k, self.rng)
