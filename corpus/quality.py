"""Quality filters for the code corpus: vendored/generated/binary files, line statistics, exact and near duplicates."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:  # datasketch pulls in scipy (1.5 s): imported where MinHash is used, not by every importer
    from datasketch import LeanMinHash

from corpus import golang
from corpus.records import PRRecord

Key = TypeVar("Key", bound=Hashable)

MAX_LINE_LENGTH = 1000
MAX_MEAN_LINE_LENGTH = 100
MIN_ALPHANUMERIC_FRACTION = 0.25
NUM_PERM = 256
MINHASH_SEED = 1
# datasketch 2.0's default, named so that stored signatures (uint32 values) stay valid if the default moves.
MINHASH_SCHEME = "affine32"
SHINGLE_SIZE = 5
NEAR_DUPLICATE_THRESHOLD = 0.7
LARGE_CHANGE_LINES = 5000
# Flags of a PR without hand-written Go of its own, and of one whose Go changes touch no declaration (the
# record's CODE section is empty: nothing to learn). Set at ingest, where the record is built.
NO_OWN_GO_CODE = {"no Go changes", "only vendored files", "only generated files"}
NO_DECLARATION_CHANGED = "no declaration changed (code moved or reformatted only)"

_VENDORED_DIRS = {"vendor", "third_party", "third-party", "node_modules", "godeps", "_vendor"}
_GENERATED_MARKER = re.compile(r"^// Code generated .* DO NOT EDIT\.$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BINARY_SAMPLE = 8192
# Control characters other than tab, newline, vertical tab, form feed, carriage return, escape.
_CONTROL = {c for c in range(32) if c not in (9, 10, 11, 12, 13, 27)} | {127}


def is_vendored(path: str) -> bool:
    """True for files under a vendored-dependency directory (`vendor/`, `third_party/`, ...) at any depth."""
    parts = path.replace("\\", "/").lower().split("/")
    return any(part in _VENDORED_DIRS for part in parts[:-1])


def is_go_path(path: str) -> bool:
    return path.lower().endswith(".go")


def is_test_path(path: str) -> bool:
    return path.endswith("_test.go")


def is_generated(text: str | None) -> bool:
    """True when the Go generated-code marker appears before the first non-comment, non-blank line."""
    if not text:
        return False
    in_block_comment = False
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        stripped = line.strip()
        if in_block_comment:
            if "*/" in stripped:
                in_block_comment = False
                if stripped.split("*/", 1)[1].strip():
                    return False
            continue
        if not stripped or stripped.startswith("//"):
            if _GENERATED_MARKER.match(line):
                return True
            continue
        if stripped.startswith("/*"):
            rest = stripped[2:]
            if "*/" not in rest:
                in_block_comment = True
            elif rest.split("*/", 1)[1].strip():
                return False
            continue
        return False
    return False


def looks_binary(data: bytes | str | None) -> bool:
    """True when the start of the data has a NUL byte or is mostly undecodable/control characters."""
    if not data:
        return False
    sample = data[:_BINARY_SAMPLE]
    if isinstance(sample, bytes):
        if b"\x00" in sample:
            return True
        text = sample.decode("utf-8", errors="replace")
        # The sample may end in the middle of a multi-byte character.
        bad = text[:-4].count("\ufffd") if len(text) > 4 else text.count("\ufffd")
    else:
        if "\x00" in sample:
            return True
        text = sample
        bad = sum(1 for ch in text if "\ud800" <= ch <= "\udfff")
    bad += sum(1 for ch in text if ord(ch) in _CONTROL)
    return bad / len(text) > 0.1


def cap_text(text: str, limit: int) -> tuple[str, int | None]:
    """(text, None) when it fits in `limit` characters, else (a prefix, limit).

    The prefix ends at a line break when one lies in the second half of the limit, so a
    reader never sees half a line."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if len(text) <= limit:
        return text, None
    cut = text.rfind("\n", 0, limit)
    end = cut + 1 if cut >= limit // 2 else limit
    return text[:end], limit


def line_stats_ok(text: str) -> tuple[bool, str]:
    """(True, "") when the text looks like hand-written code, else (False, the reason).

    Limits: longest line 1000 characters, mean line 100, alphanumeric fraction >= 0.25."""
    if not text.strip():
        return False, "empty text"
    lines = text.splitlines()
    longest = max(len(line) for line in lines)
    if longest > MAX_LINE_LENGTH:
        return False, f"longest line has {longest} characters (limit {MAX_LINE_LENGTH})"
    mean = sum(len(line) for line in lines) / len(lines)
    if mean > MAX_MEAN_LINE_LENGTH:
        return False, f"mean line length {mean:.0f} characters (limit {MAX_MEAN_LINE_LENGTH})"
    alphanumeric = sum(1 for ch in text if ch.isalnum()) / len(text)
    if alphanumeric < MIN_ALPHANUMERIC_FRACTION:
        return False, f"alphanumeric fraction {alphanumeric:.2f} (minimum {MIN_ALPHANUMERIC_FRACTION})"
    return True, ""


def content_hash(text: str) -> str:
    """sha256 hex digest of the text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def exact_duplicates(items: Mapping[Key, str]) -> dict[Key, Key]:
    """Maps each duplicate key to the key kept for its text: the first in `items`' order.

    Keys that are kept are not in the result. Pass items oldest first."""
    kept_by_hash: dict[str, Key] = {}
    duplicates: dict[Key, Key] = {}
    for key, text in items.items():
        kept = kept_by_hash.setdefault(content_hash(text), key)
        if kept != key:
            duplicates[key] = kept
    return duplicates


def shingles(text: str, size: int = SHINGLE_SIZE) -> set[bytes]:
    """5-grams of identifier tokens (a shorter text gives one shingle of all its tokens)."""
    tokens = _IDENTIFIER.findall(text)
    if len(tokens) < size:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)}


def minhash(text: str) -> LeanMinHash | None:
    """MinHash signature of the text's identifier 5-grams (None when it has no identifiers)."""
    from datasketch import LeanMinHash, MinHash

    grams = shingles(text)
    if not grams:
        return None
    signature = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme=MINHASH_SCHEME)
    signature.update_batch(sorted(grams))
    return LeanMinHash(signature)


def minhash_signature(text: str) -> list[int] | None:
    """The text's MinHash as NUM_PERM plain ints, each below 2**32 (None when it has no identifiers)."""
    signature = minhash(text)
    return None if signature is None else [int(value) for value in signature.hashvalues]


def signature_minhash(values: Sequence[int] | np.ndarray) -> LeanMinHash:
    """The MinHash that `minhash_signature` (or its stored copy) describes."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=MINHASH_SEED, hashvalues=values, scheme=MINHASH_SCHEME)


def near_duplicates(
    items: Mapping[Key, str],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    *,
    report: Callable[[int, int], None] | None = None,
) -> dict[Key, Key]:
    """Maps each near-duplicate key to the key kept for its cluster (the first in `items`' order).

    MinHash LSH (256 permutations) finds candidates; the estimated Jaccard similarity of the
    identifier 5-grams must reach `threshold`. Only kept records are indexed, so every cluster
    keeps exactly one record and each duplicate points at a kept one. Texts without
    identifiers are never duplicates. `report(done, total)` is called every 1000 items."""
    pairs = ((key, minhash(text)) for key, text in items.items())
    return _group_near_duplicates(pairs, len(items), threshold, report)


def near_duplicates_from_signatures(
    signatures: Mapping[Key, Sequence[int] | np.ndarray | LeanMinHash | None],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    *,
    report: Callable[[int, int], None] | None = None,
) -> dict[Key, Key]:
    """`near_duplicates` over precomputed signatures (`minhash_signature` values, None for no identifiers).

    Same order rules and the same result as `near_duplicates` on the texts the signatures came from."""
    from datasketch import LeanMinHash

    pairs = (
        (key, value if value is None or isinstance(value, LeanMinHash) else signature_minhash(value))
        for key, value in signatures.items()
    )
    return _group_near_duplicates(pairs, len(signatures), threshold, report)


def _group_near_duplicates(
    pairs: Iterable[tuple[Key, LeanMinHash | None]],
    total: int,
    threshold: float,
    report: Callable[[int, int], None] | None,
) -> dict[Key, Key]:
    from datasketch import MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    signatures: dict[Key, LeanMinHash] = {}
    kept_order: dict[Key, int] = {}
    duplicates: dict[Key, Key] = {}
    for done, (key, signature) in enumerate(pairs, start=1):
        if signature is not None:
            candidates = index.query(signature)
            # LSH candidates include false positives; keep the earliest that really is similar.
            similar = [c for c in candidates if signatures[c].jaccard(signature) >= threshold]
            if similar:
                duplicates[key] = min(similar, key=kept_order.__getitem__)
            else:
                kept_order[key] = len(kept_order)
                signatures[key] = signature
                index.insert(key, signature)
        if report is not None and (done % 1000 == 0 or done == total):
            report(done, total)
    return duplicates


def with_declaration_flag(flags: list[str], change: str) -> list[str]:
    """`flags` with NO_DECLARATION_CHANGED where the PR's change text (serialize.change_text without the
    title) is empty although it has Go code of its own, and without it where the change is not empty."""
    kept = [flag for flag in flags if flag != NO_DECLARATION_CHANGED]
    if not change and not set(kept) & NO_OWN_GO_CODE:
        kept.append(NO_DECLARATION_CHANGED)
    return kept


def _go_files(pr: PRRecord):
    return [f for f in pr.files if is_go_path(f.path)]


def quality_flags(pr: PRRecord) -> list[str]:
    """Human-readable reasons this PR may not belong in the training corpus (empty: none found)."""
    flags: list[str] = []
    if not pr.title.strip():
        flags.append("empty title")
    go_files = [f for f in _go_files(pr) if not f.is_binary]
    if not go_files:
        flags.append("no Go changes")
        return flags
    own = [f for f in go_files if not is_vendored(f.path)]
    if not own:
        flags.append("only vendored files")
        return flags
    handwritten = [f for f in own if not (is_generated(f.after) or is_generated(f.before))]
    if not handwritten:
        flags.append("only generated files")
        return flags
    changed_lines = sum(f.additions + f.deletions for f in pr.files)
    if changed_lines > LARGE_CHANGE_LINES:
        flags.append(f"very large change ({changed_lines} changed lines)")
    for file in handwritten:
        if file.truncated_at is not None:
            flags.append(f"{file.path}: truncated at {file.truncated_at} bytes")
        missing_side = (file.status != "added" and file.before is None) or (
            file.status != "removed" and file.after is None
        )
        if missing_side:
            flags.append(f"{file.path}: file text missing")
        if file.after is None:
            continue
        if looks_binary(file.after):
            flags.append(f"{file.path}: looks binary")
            continue
        ok, reason = line_stats_ok(file.after)
        if not ok:
            flags.append(f"{file.path}: {reason}")
        errors = golang.syntax_errors(file.after)
        if errors:
            flags.append(f"{file.path}: syntax error at {errors[0]}")
    return flags
