"""Plan, write code, check it with the Go parser, refine: the inference loop, streamed as events."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol

import torch

from corpus import golang, tags
from corpus.code_section import code_of, files_of
from corpus.plans import Plan
from corpus.records import FileRecord, PRRecord
from corpus.serialize import serialize
from training.hrm.model import KVCache

BOS, EOS = "<s>", "</s>"
# After an attempt's code: done (`</CODE>`) or, mid-code, give up on it (`<REFINE>`). `<CONTINUE>`
# marks unfinished code that goes on (training.augment), so it stays in the context, not in the code.
CODE_STOPS = (tags.AFTER_END, tags.CODE_END, tags.REFINE, EOS)
CODE_SKIPS = (tags.CONTINUE,)
PLAN_STOPS = (tags.PLAN_END, EOS)
# A whole CODE section (evaluation prompts end at `<CODE>`): `</CODE>` is the done decision, `<REFINE>` gives up.
SECTION_STOPS = (tags.CODE_END, tags.REFINE, EOS)

Event = dict[str, Any]


class TextTokenizer(Protocol):
    """What the loop needs of a tokenizer (training.tokenizer.Tokenizer is one)."""

    special_ids: dict[str, int]

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class TokenSource(Protocol):
    """A model that proposes the next token; PyTorch here, llama.cpp (GGUF) elsewhere."""

    special_ids: dict[str, int]  # tag text -> token id, e.g. "</PLAN>" -> 17

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, ids: list[int]) -> str: ...

    def next_token(self, ids: list[int]) -> int: ...


def context_window(ids: list[int], length: int) -> list[int]:
    """The most recent tokens of `ids` that a model of `length` tokens of context reads next.

    A context that overflows is cropped from the left in steps of a quarter context, not one token at a
    time: with a one-token slide no prefix ever repeats and llama.cpp re-reads the whole window for each
    new token (0.4-1.2 s a token for a `tiny` GGUF on a shared 2-core machine, against 5-50 ms with its
    cache). So it reads between three quarters of a context and a whole one, the same for both backends."""
    if len(ids) <= length:
        return ids
    step = max(1, length // 4)
    start = -(-(len(ids) - length) // step) * step  # the first token past the overflow, rounded up to a step
    return ids[start:]


class TorchTokenSource:
    """Next tokens from one of our PyTorch models: temperature/top-k sampling, greedy at temperature 0.

    A KV cache keeps what the model read, as llama.cpp does: the next call reads only the tokens past the
    longest prefix it shares with the last context (one token while generating; all of it after a crop)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: TextTokenizer,
        *,
        temperature: float = 0.8,
        top_k: int | None = 50,
        seed: int | None = None,
    ):
        self.model = model.eval()  # dropout off: sampling must not depend on training-mode noise
        self.tokenizer = tokenizer
        self.special_ids = tokenizer.special_ids
        self.temperature, self.top_k = temperature, top_k
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        if seed is not None:
            self.generator.manual_seed(seed)
        self.cache = KVCache(model.config.block_size)
        self._cached_ids: list[int] = []  # the context the cache holds

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    @torch.no_grad()
    def next_token(self, ids: list[int]) -> int:
        context = context_window(ids, self.model.config.block_size)
        logits = self._logits_after(context)
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        logits = logits / self.temperature
        if self.top_k:
            kth = torch.topk(logits, min(self.top_k, logits.size(-1))).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def _logits_after(self, context: list[int]) -> torch.Tensor:
        """The next token's logits [V] after `context`, reading only what the cache does not hold yet."""
        shared = 0
        for cached, new in zip(self._cached_ids, context, strict=False):
            if cached != new:
                break
            shared += 1
        shared = max(0, min(shared, len(context) - 1))  # the last token is read again: its logits are needed
        self.cache.truncate(shared)
        idx = torch.tensor([context[shared:]], dtype=torch.long, device=self.device)
        logits = self.model.next_logits(idx, self.cache)[0].float()
        self._cached_ids = context  # only once the cache holds it: a failed read leaves the two in step
        return logits


def task_prompt(*, repo: str, title: str, body: str, path: str, code_before: str) -> tuple[str, str]:
    """The serialized record's text before the plan steps (ending `<PLAN>\\n`) and its CONTEXT block,
    cut from `corpus.serialize.serialize` itself so the prompt is byte for byte the training format."""
    pr = PRRecord(
        repo=repo,
        number=0,
        title=title,
        body=body,
        files=[FileRecord(path=path, status="modified", before=code_before)],
    )
    record = serialize(pr, Plan(intent=None))
    plan_index = next(i for i, span in enumerate(record.spans) if span.section == "plan")
    plan, context = record.spans[plan_index], record.spans[plan_index + 1]
    return record.text[: plan.start] + f"{tags.PLAN}\n", record.text[context.start : context.end]


def section_feedback(syntax_ok: bool) -> str:
    """What follows a rejected attempt's `</CODE>`: the parser's verdict, `<REFINE>` and a fresh `<CODE>`,
    as training.augment writes refinement records (`</CODE>` + VALIDATE block + `<REFINE>` + `\\n<CODE>`)."""
    verdict = "true" if syntax_ok else "false"
    return f"\n{tags.VALIDATE}\n{tags.SYNTAX_OK} {verdict}\n{tags.VALIDATE_END}\n{tags.REFINE}\n{tags.CODE}"


def attempt_feedback(syntax_ok: bool) -> str:
    """What follows a rejected attempt's `</AFTER>\\n`: `</CODE>`, the parser's verdict, `<REFINE>` and a
    fresh attempt, the text training.augment writes into refinement records."""
    return f"{tags.CODE_END}{section_feedback(syntax_ok)}\n{tags.AFTER}\n"


def context_ids(source: TokenSource, transcript: str) -> list[int]:
    """The transcript's token ids after `<s>`: every training record starts with it, so the model
    predicts best from the same start."""
    bos = source.special_ids.get(BOS)
    return ([bos] if bos is not None else []) + source.tokenize(transcript)


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _generate_stage(
    source: TokenSource,
    transcript: str,
    stage: str,
    stops: tuple[str, ...],
    max_tokens: int,
    skips: tuple[str, ...] = (),
) -> Iterator[Event]:
    """Sample after `transcript` until a stop tag (or `max_tokens`), streaming text deltas as token events.

    Tokens of `skips` stay in the model's context but not in the text. Returns (via StopIteration)
    the generated text and the stop tag met (None at the token limit)."""
    stop_ids = {source.special_ids[tag]: tag for tag in stops if tag in source.special_ids}
    skip_ids = {source.special_ids[tag] for tag in skips if tag in source.special_ids}
    # Re-tokenizing the whole transcript gives the model the tokens training would have produced.
    ids, generated, kept, shown = context_ids(source, transcript), [], [], ""
    for _ in range(max_tokens):
        token = source.next_token(ids + generated)
        if token in stop_ids:
            return source.detokenize(kept), stop_ids[token]
        generated.append(token)
        if token in skip_ids:
            continue
        kept.append(token)
        text = source.detokenize(kept)
        # Decoding the whole stage each time keeps SentencePiece's spaces right; a trailing U+FFFD is
        # half a UTF-8 character from byte pieces, so wait for the rest of it.
        if text.startswith(shown) and len(text) > len(shown) and not text.endswith("\ufffd"):
            yield {"type": "token", "stage": stage, "text": text[len(shown) :]}
            shown = text
    return source.detokenize(kept), None


# An attempt: (code, the files to validate as (path, code), the controller's decision, the transcript after it).
Attempt = tuple[str, list[tuple[str, str]], str | None, str]
AttemptStage = Callable[[str], Generator[Event, None, Attempt]]


def _after_attempt(source: TokenSource, max_tokens: int) -> AttemptStage:
    """One attempt written after `<AFTER>\\n` (the playground's one-file prompt): it ends at `</AFTER>`,
    `</CODE>` or `<REFINE>`; after `</AFTER>` the next token is the controller's decision."""

    def attempt(transcript: str) -> Generator[Event, None, Attempt]:
        code, stop = yield from _generate_stage(source, transcript, "code", CODE_STOPS, max_tokens, CODE_SKIPS)
        transcript += _with_newline(code) + f"{tags.AFTER_END}\n"
        decision = stop if stop in (tags.CODE_END, tags.REFINE) else None
        if stop == tags.AFTER_END:
            # The controller speaks right after the attempt: `</CODE>` is done.
            token = source.next_token(context_ids(source, transcript))
            decision = next((tag for tag in (tags.CODE_END, tags.REFINE) if source.special_ids.get(tag) == token), None)
        return code, [("", code)], decision, transcript + tags.CODE_END

    return attempt


def _closed(section: str) -> str:
    """A CODE section cut short (token limit, `<REFINE>` mid-code) with its open blocks closed, so the
    transcript the model sees next stays in the training format."""
    section = _with_newline(section)
    if section.rfind(tags.AFTER) > section.rfind(tags.AFTER_END):
        section += f"{tags.AFTER_END}\n"
    if section.rfind(tags.FILE) > section.rfind(tags.FILE_END):
        section += f"{tags.FILE_END}\n"
    return section


def _section_attempt(source: TokenSource, max_tokens: int) -> AttemptStage:
    """One attempt written right after `<CODE>`: the whole CODE section, `<AFTER>` blocks and, for
    several files, `<FILE>` tags included, as in training records. It ends at `</CODE>` (the "done"
    decision augment teaches), `<REFINE>`, `</s>` or the token limit; each file is validated apart."""

    def attempt(transcript: str) -> Generator[Event, None, Attempt]:
        section, stop = yield from _generate_stage(source, transcript, "code", SECTION_STOPS, max_tokens, CODE_SKIPS)
        decision = stop if stop in (tags.CODE_END, tags.REFINE) else None
        transcript += (section if stop == tags.CODE_END else _closed(section)) + tags.CODE_END
        return code_of(section), files_of(section), decision, transcript

    return attempt


def _refinement_loop(
    transcript: str,
    attempt: AttemptStage,
    feedback: Callable[[bool], str],
    *,
    max_iterations: int,
    validate: Callable[[str], list[str]],
) -> Generator[Event, None, tuple[str, bool, int, str]]:
    """Up to `max_iterations` attempts, each checked by `validate` (errors; [] = valid), file by file.

    It stops early when an attempt parses and the model says done (`</CODE>`); otherwise the parser's
    verdict and `<REFINE>` (`feedback`) follow the attempt's `</CODE>` and the model tries again. Yields
    the attempt's token events and one "iteration" event per attempt; returns the code to keep (the
    last attempt that parsed, else the last), whether it parsed, the attempts made and why it stopped."""
    final_code, final_ok, stopped, n = "", False, "max_iterations", 0
    for n in range(1, max_iterations + 1):
        code, files, decision, transcript = yield from attempt(transcript)
        errors = [f"{path}: {error}" if path else error for path, text in files for error in validate(text)]
        syntax_ok = not errors
        yield {
            "type": "iteration",
            "n": n,
            "code": code,
            "syntax_ok": syntax_ok,
            "errors": errors,
            "decision": decision,
        }
        if syntax_ok or not final_ok:
            final_code, final_ok = code, syntax_ok
        if syntax_ok and decision == tags.CODE_END:
            stopped = "done"
            break
        transcript += feedback(syntax_ok)
    return final_code, final_ok, n, stopped


def generate_with_refinement(
    source: TokenSource,
    *,
    title: str,
    body: str,
    code_before: str = "",
    repo: str = "",
    path: str = "main.go",
    max_iterations: int = 5,
    max_plan_tokens: int = 128,
    max_code_tokens: int = 512,
    validate: Callable[[str], list[str]] = golang.attempt_errors,
) -> Iterator[Event]:
    """Plan, then up to `max_iterations` code attempts through `_refinement_loop`.

    The prompt is the serialized record up to `<PLAN>\\n`; after the plan come `</PLAN>`, the CONTEXT
    block and `<CODE>\\n<AFTER>\\n`. An attempt ends at `</AFTER>` (the next token is the model's
    decision), `</CODE>` or `<REFINE>`; a rejected one is followed by `attempt_feedback`. Yields token
    events, one "iteration" event per attempt and a final "done" event with the code to keep."""
    header, context = task_prompt(repo=repo, title=title, body=body, path=path, code_before=code_before)
    plan, _ = yield from _generate_stage(source, header, "plan", PLAN_STOPS, max_plan_tokens)
    transcript = header + _with_newline(plan) + f"{tags.PLAN_END}\n" + context + f"{tags.CODE}\n{tags.AFTER}\n"
    # The loop's feedback follows `</CODE>`, which _after_attempt writes; attempt_feedback is the same text.
    code, ok, n, stopped = yield from _refinement_loop(
        transcript,
        _after_attempt(source, max_code_tokens),
        lambda ok: section_feedback(ok) + f"\n{tags.AFTER}\n",
        max_iterations=max_iterations,
        validate=validate,
    )
    yield {"type": "done", "plan": plan, "code": code, "syntax_ok": ok, "iterations": n, "stopped": stopped}


def generate_from_prompt(
    source: TokenSource,
    prompt: str,
    *,
    max_iterations: int,
    max_code_tokens: int,
    validate: Callable[[str], list[str]] = golang.attempt_errors,
) -> Iterator[Event]:
    """The refinement loop from an evaluation prompt: a serialized record up to and including `<CODE>`
    (plan and context written by the record, not by the model). Each attempt is a whole CODE section
    (`_section_attempt`), a rejected one followed by `section_feedback`, exactly as augment's refinement
    records continue. Same events as `generate_with_refinement`, without a plan."""
    if not prompt.rstrip("\n").endswith(tags.CODE):
        raise ValueError("an evaluation prompt ends with <CODE>")
    code, ok, n, stopped = yield from _refinement_loop(
        prompt,
        _section_attempt(source, max_code_tokens),
        section_feedback,
        max_iterations=max_iterations,
        validate=validate,
    )
    yield {"type": "done", "code": code, "syntax_ok": ok, "iterations": n, "stopped": stopped}
