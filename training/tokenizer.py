"""Train and use the SentencePiece BPE tokenizer: lossless on Go code, one piece per format tag."""

from __future__ import annotations

import heapq
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm

from corpus.tags import (
    AFTER,
    AFTER_END,
    BASE_TOKENS,
    BEFORE,
    BEFORE_END,
    COMMENTS,
    COMMENTS_END,
    FORMAT_TAGS,
    PLAN,
    PR_BODY,
    PR_TITLE,
)

PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(BASE_TOKENS))

# SentencePiece escapes spaces as U+2581 and decodes every U+2581 back to a space, so a literal
# one in the input would not round-trip; the wrapper feeds it as its three UTF-8 byte pieces.
_WS_MARK = "\u2581"
_WS_MARK_BYTE_PIECES = tuple(f"<0x{b:02X}>" for b in _WS_MARK.encode())

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_TOO_LARGE = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")

# Code and prose regions of serialized records, for the chars-per-token figures.
_CODE_REGION = re.compile(
    f"(?:{re.escape(AFTER)}|{re.escape(BEFORE)})\n(.*?)(?:{re.escape(AFTER_END)}|{re.escape(BEFORE_END)})",
    re.DOTALL,
)
_PROSE_REGION = re.compile(
    f"(?:{re.escape(PR_TITLE)}|{re.escape(PR_BODY)}|{re.escape(COMMENTS)})(.*?)"
    f"(?=\n<[A-Z_/]|{re.escape(PLAN)}|{re.escape(COMMENTS_END)}|$)",
    re.DOTALL,
)
MEASURE_CHARS = 2_000_000  # enough text for a stable chars-per-token figure

Report = Callable[[str, float | None], None]


class VocabularyTooLarge(ValueError):
    """The corpus cannot supply as many distinct pieces as were requested."""

    def __init__(self, requested: int, max_size: int):
        self.requested = requested
        self.max_size = max_size
        super().__init__(
            f"vocabulary size {requested} is larger than this corpus supports; "
            f"the largest size that works is {max_size}"
        )


class VocabularyTooSmall(ValueError):
    """Every character, byte and tag needs a piece, and they do not fit in the requested size."""

    def __init__(self, requested: int, min_size: int):
        self.requested = requested
        self.min_size = min_size
        super().__init__(
            f"vocabulary size {requested} cannot hold the corpus's characters, the 256 byte pieces "
            f"and the format tags; the smallest size that works is {min_size}"
        )


@dataclass
class TokenizerInfo:
    vocab_size: int
    train_seconds: float
    chars_per_token_code: float | None  # None when the training texts had no code sections
    chars_per_token_prose: float | None
    model_path: Path
    vocab_path: Path
    input_chars: int  # characters offered for training
    trained_chars: int  # characters SentencePiece saw after sampling
    sentences: int


def trainer_options(vocab_size: int, max_sentence_chars: int) -> dict:
    """The SentencePiece options that make the tokenizer lossless on code."""
    return {
        "model_type": "bpe",
        "vocab_size": vocab_size,
        "character_coverage": 1.0,
        "byte_fallback": True,
        # Identity: no NFKC, so tabs, CRLF, full-width characters and the like stay as written.
        "normalization_rule_name": "identity",
        "remove_extra_whitespaces": False,
        "add_dummy_prefix": False,
        # Splitting at spaces keeps BPE's word table small on large corpora (a record would
        # otherwise be one "word"); newlines and tabs are not split on, so pieces like "{\n\t" form.
        "split_by_whitespace": True,
        "allow_whitespace_only_pieces": True,  # indentation runs become single pieces
        "split_digits": False,
        "user_defined_symbols": list(FORMAT_TAGS),
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "pad_piece": BASE_TOKENS[PAD_ID],
        "unk_piece": BASE_TOKENS[UNK_ID],
        "bos_piece": BASE_TOKENS[BOS_ID],
        "eos_piece": BASE_TOKENS[EOS_ID],
        # Bytes, not characters: 4 covers any UTF-8 character.
        "max_sentence_length": 4 * max_sentence_chars,
        "hard_vocab_limit": True,
        "num_threads": max(1, min(os.cpu_count() or 1, 16)),
        "minloglevel": 2,
    }


def split_long(text: str, max_chars: int) -> Iterator[str]:
    """Cut a record into pieces of at most max_chars, at line ends where possible."""
    start = 0
    while len(text) - start > max_chars:
        cut = text.rfind("\n", start, start + max_chars)
        cut = start + max_chars if cut <= start else cut + 1
        yield text[start:cut]
        start = cut
    if start < len(text):
        yield text[start:]


def sample_sentences(
    texts: Iterable[str], *, max_sentence_chars: int, sample_chars: int, seed: int
) -> tuple[list[str], int]:
    """A uniform, deterministic sample of the corpus's sentences totalling at most sample_chars.

    Each sentence gets a random key; the heap keeps the smallest keys that fit the budget, so
    memory stays near sample_chars however large the corpus is. Returns (sample, input chars)."""
    rng = random.Random(seed)
    heap: list[tuple[float, int, str]] = []  # (-key, order, sentence): a max-heap on key
    kept_chars = 0
    input_chars = 0
    order = 0
    for text in texts:
        input_chars += len(text)
        for sentence in split_long(text, max_sentence_chars):
            key = rng.random()
            heapq.heappush(heap, (-key, order, sentence))
            order += 1
            kept_chars += len(sentence)
            while kept_chars > sample_chars and heap:
                kept_chars -= len(heapq.heappop(heap)[2])
    # Corpus order, not key order: keeps the sample independent of heap internals.
    return [sentence for _, _, sentence in sorted(heap, key=lambda item: item[1])], input_chars


def _regions(texts: list[str], pattern: re.Pattern) -> list[str]:
    found, total = [], 0
    for text in texts:
        for match in pattern.finditer(text):
            region = match.group(1)
            if region.strip():
                found.append(region)
                total += len(region)
                if total >= MEASURE_CHARS:
                    return found
    return found


def _train(sentences: list[str], prefix: Path, vocab_size: int, max_sentence_chars: int) -> None:
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=str(prefix),
            **trainer_options(vocab_size, max_sentence_chars),
        )
    except RuntimeError as error:
        message = str(error)
        if match := _TOO_LARGE.search(message):
            raise VocabularyTooLarge(vocab_size, int(match[2])) from error
        if match := _TOO_SMALL.search(message):
            raise VocabularyTooSmall(vocab_size, int(match[2])) from error
        raise


_VOCAB_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _write_vocab(tokenizer: Tokenizer, path: Path) -> None:
    """`piece<TAB>score`, one line per id; SentencePiece's own file breaks lines inside "\\n\\t" pieces."""
    lines = (
        f"{tokenizer.piece(i).translate(_VOCAB_ESCAPES)}\t{tokenizer.sp.get_score(i):g}\n"
        for i in range(tokenizer.vocab_size)
    )
    path.write_text("".join(lines), encoding="utf-8")


def train_tokenizer(
    texts: Iterable[str],
    out_prefix: Path,
    *,
    vocab_size: int = 50_000,
    max_sentence_chars: int = 16_384,
    sample_chars: int = 200_000_000,
    seed: int = 0,
    report: Report | None = None,
    code_samples: Iterable[str] | None = None,
    prose_samples: Iterable[str] | None = None,
) -> TokenizerInfo:
    """Train a BPE tokenizer on serialized records; writes `<out_prefix>.model` and `.vocab`.

    Records longer than max_sentence_chars are cut at line ends for training; a corpus larger
    than sample_chars is sampled (deterministically for a seed). Chars per token are measured
    on the given samples, or on the code (BEFORE/AFTER) and PR text regions of the training text.
    `report(message, fraction)` hears about progress."""
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if report:
        report("sampling the corpus", 0.0)
    sentences, input_chars = sample_sentences(
        texts,
        max_sentence_chars=max_sentence_chars,
        sample_chars=sample_chars,
        seed=seed,
    )
    if not sentences:
        raise ValueError("no text to train a tokenizer on")
    trained_chars = sum(len(s) for s in sentences)
    if report:
        report(f"training on {trained_chars:,} characters ({len(sentences):,} sentences)", 0.1)
    spm.set_random_generator_seed(seed)
    # Train under a temporary prefix and rename, so a killed run leaves no half model behind.
    temporary = out_prefix.with_name(f".{out_prefix.name}.partial-{os.getpid()}")
    model_path, vocab_path = Path(f"{out_prefix}.model"), Path(f"{out_prefix}.vocab")
    try:
        _train(sentences, temporary, vocab_size, max_sentence_chars)
        _write_vocab(Tokenizer(Path(f"{temporary}.model")), Path(f"{temporary}.vocab"))
        os.replace(f"{temporary}.vocab", vocab_path)
        os.replace(f"{temporary}.model", model_path)
    finally:
        for suffix in (".model", ".vocab"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)
    train_seconds = time.monotonic() - started
    if report:
        report("measuring characters per token", 0.9)
    tokenizer = Tokenizer(model_path)
    code = list(code_samples) if code_samples is not None else _regions(sentences, _CODE_REGION)
    prose = list(prose_samples) if prose_samples is not None else _regions(sentences, _PROSE_REGION)
    info = TokenizerInfo(
        vocab_size=tokenizer.vocab_size,
        train_seconds=train_seconds,
        chars_per_token_code=tokenizer.chars_per_token(code) if code else None,
        chars_per_token_prose=tokenizer.chars_per_token(prose) if prose else None,
        model_path=model_path,
        vocab_path=vocab_path,
        input_chars=input_chars,
        trained_chars=trained_chars,
        sentences=len(sentences),
    )
    if report:
        report("done", 1.0)
    return info


class Tokenizer:
    """A trained model: encode/decode that round-trip any text exactly."""

    def __init__(self, model_path: Path | str | bytes):
        self.model_path: Path | None = None
        if isinstance(model_path, bytes):
            self.sp = spm.SentencePieceProcessor(model_proto=model_path)
        else:
            self.model_path = Path(model_path)
            self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        self.vocab_size: int = self.sp.get_piece_size()
        self.pad_id: int = self.sp.pad_id()
        self.unk_id: int = self.sp.unk_id()
        self.bos_id: int = self.sp.bos_id()
        self.eos_id: int = self.sp.eos_id()
        self.special_ids: dict[str, int] = {tag: self.sp.piece_to_id(tag) for tag in (*BASE_TOKENS, *FORMAT_TAGS)}
        self._ws_mark_ids = [self.sp.piece_to_id(piece) for piece in _WS_MARK_BYTE_PIECES]
        # Per id: characters the piece stands for (control pieces none), and which are byte pieces.
        self._piece_chars = np.zeros(self.vocab_size, dtype=np.int64)
        self._is_byte = np.zeros(self.vocab_size, dtype=bool)
        self._is_continuation_byte = np.zeros(self.vocab_size, dtype=bool)
        for token_id in range(self.vocab_size):
            if self.sp.is_byte(token_id):
                self._is_byte[token_id] = True
                self._is_continuation_byte[token_id] = 0x80 <= int(self.sp.id_to_piece(token_id)[3:5], 16) < 0xC0
            elif not self.sp.is_control(token_id):
                self._piece_chars[token_id] = 1 if self.sp.is_unknown(token_id) else len(self.sp.id_to_piece(token_id))

    def __getstate__(self):
        # Processes receive the serialized model, not a handle to a C++ object.
        return self.sp.serialized_model_proto()

    def __setstate__(self, state: bytes):
        self.__init__(state)

    def _encode_segment(self, text: str) -> list[int]:
        try:
            return self.sp.encode(text)
        except RuntimeError:
            # Lone surrogates (undecodable bytes kept by surrogateescape) have no UTF-8 form;
            # one U+FFFD each keeps every other character and all offsets where they were.
            if not _LONE_SURROGATE.search(text):
                raise
            return self.sp.encode(_LONE_SURROGATE.sub("\ufffd", text))

    def encode(self, text: str) -> list[int]:
        if _WS_MARK not in text:
            return self._encode_segment(text)
        ids: list[int] = []
        for index, segment in enumerate(text.split(_WS_MARK)):
            if index:
                ids.extend(self._ws_mark_ids)
            if segment:
                ids.extend(self._encode_segment(segment))
        return ids

    def token_offsets(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[start, end) character offsets of each token of an encoded text, as two arrays.

        Identity normalization makes every piece cover exactly its own characters; the byte
        pieces of one character all start at it and only the last one covers it."""
        ids = np.asarray(ids, dtype=np.int64)
        lengths = self._piece_chars[ids]
        is_byte = self._is_byte[ids]
        if is_byte.any():
            ends_character = np.ones(len(ids), dtype=bool)
            ends_character[:-1] = ~self._is_continuation_byte[ids[1:]]
            lengths = np.where(is_byte, ends_character, lengths)
        ends = np.cumsum(lengths)
        return ends - lengths, ends

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and each token's [start, end) character offsets into text."""
        ids = self.encode(text)
        starts, ends = self.token_offsets(ids)
        return ids, list(zip(starts.tolist(), ends.tolist(), strict=True))

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def pieces(self, text: str) -> list[str]:
        return [self.sp.id_to_piece(i) for i in self.encode(text)]

    def piece(self, token_id: int) -> str:
        return self.sp.id_to_piece(int(token_id))

    def is_byte(self, token_id: int) -> bool:
        return self.sp.is_byte(int(token_id))

    def chars_per_token(self, texts: Iterable[str]) -> float:
        chars = tokens = 0
        for text in texts:
            chars += len(text)
            tokens += len(self.encode(text))
        return chars / tokens if tokens else 0.0
