"""The plan → code → validate → refine loop, with a scripted token source and with a real tiny model."""

from dataclasses import replace

import torch

from corpus import tags
from training.augment import FAILED_VALIDATION
from training.hrm.config import preset
from training.hrm.generate import (
    TorchTokenSource,
    attempt_feedback,
    context_window,
    generate_with_refinement,
    task_prompt,
)
from training.hrm.model import build_model

BROKEN = "package main\n\nfunc main( {\n"
VALID = "package main\n\nfunc main() {}\n"
PLAN = f"{tags.STEP} {tags.intent_tag('ADD')} Add a main function\n{tags.PLAN_END}"


class CharTokenizer:
    """Test double for the SentencePiece wrapper: one id per tag, one per character."""

    def __init__(self):
        pieces = list(tags.BASE_TOKENS) + list(tags.FORMAT_TAGS) + [chr(c) for c in range(32, 127)] + ["\n", "\t"]
        self.id_of = {piece: i for i, piece in enumerate(pieces)}
        self.pieces = pieces
        self.special_ids = {piece: self.id_of[piece] for piece in (*tags.BASE_TOKENS, *tags.FORMAT_TAGS)}
        self.tags_longest_first = sorted(self.special_ids, key=len, reverse=True)

    def encode(self, text: str) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            tag = next((t for t in self.tags_longest_first if text.startswith(t, i)), None)
            piece = tag or text[i]
            ids.append(self.id_of.get(piece, self.id_of["<unk>"]))
            i += len(piece)
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self.pieces[i] for i in ids)


class ScriptedSource:
    """A token source that replays a fixed output and records the context it was shown each time."""

    def __init__(self, script: str):
        self.tokenizer = CharTokenizer()
        self.special_ids = self.tokenizer.special_ids
        self.remaining = self.tokenizer.encode(script)
        self.contexts: list[str] = []

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def next_token(self, ids: list[int]) -> int:
        self.contexts.append(self.tokenizer.decode(ids))
        return self.remaining.pop(0)


def attempt(code: str, decision: str) -> str:
    return f"{code}{tags.AFTER_END}{decision}"


def run(source, **kwargs) -> list[dict]:
    return list(generate_with_refinement(source, title="Add main", body="An entry point", repo="o/p", **kwargs))


def test_stops_at_the_first_attempt_that_parses_and_is_declared_done():
    source = ScriptedSource(
        PLAN + attempt(BROKEN, tags.CODE_END) + attempt(VALID, tags.CODE_END) + attempt(VALID, tags.CODE_END)
    )
    events = run(source, code_before="package main\n")

    plan_text = "".join(e["text"] for e in events if e["type"] == "token" and e["stage"] == "plan")
    assert plan_text == PLAN.removesuffix(tags.PLAN_END)
    iterations = [e for e in events if e["type"] == "iteration"]
    assert [(e["n"], e["syntax_ok"], e["decision"]) for e in iterations] == [
        (1, False, "</CODE>"),
        (2, True, "</CODE>"),
    ]
    assert iterations[0]["errors"] and iterations[1]["errors"] == []
    code_tokens = "".join(e["text"] for e in events if e["type"] == "token" and e["stage"] == "code")
    assert code_tokens == BROKEN + VALID
    done = events[-1]
    assert done == {
        "type": "done",
        "plan": PLAN.removesuffix(tags.PLAN_END),
        "code": VALID,
        "syntax_ok": True,
        "iterations": 2,
        "stopped": "done",
    }
    assert len(source.remaining) == len(source.tokenizer.encode(attempt(VALID, tags.CODE_END)))  # third unused

    # The second attempt was written after `<s>` (every training record starts with it), the serialized
    # prompt, the plan, the context, the broken attempt and the parser's verdict.
    header, context = task_prompt(
        repo="o/p", title="Add main", body="An entry point", path="main.go", code_before="package main\n"
    )
    second_attempt_context = source.contexts[-len(source.tokenizer.encode(VALID)) - 2]
    assert second_attempt_context == (
        "<s>"
        + header
        + PLAN
        + "\n"
        + context
        + f"{tags.CODE}\n{tags.AFTER}\n"
        + BROKEN
        + f"{tags.AFTER_END}\n"
        + attempt_feedback(False)
    )
    assert header.startswith("<REPO> o/p\n<PR_TITLE> Add main\n<PR_BODY> An entry point\n\n<PLAN>\n")
    assert "<BEFORE>\npackage main\n</BEFORE>" in context


def test_stops_after_max_iterations_when_the_code_never_parses():
    source = ScriptedSource(PLAN + attempt(BROKEN, tags.CODE_END) * 3 + attempt(VALID, tags.CODE_END))
    events = run(source, max_iterations=3)
    assert [e["syntax_ok"] for e in events if e["type"] == "iteration"] == [False, False, False]
    assert events[-1]["stopped"] == "max_iterations" and events[-1]["iterations"] == 3
    assert events[-1]["code"] == BROKEN and events[-1]["syntax_ok"] is False


def test_parsing_code_without_done_is_refined_and_kept():
    # The model asks to refine code that parses, then writes broken code (with a <CONTINUE> mark
    # inside, which stays out of the code) and ends it with </CODE>: the parsing attempt is kept.
    continued = BROKEN.replace("func", f"{tags.CONTINUE}func")
    source = ScriptedSource(PLAN + attempt(VALID, tags.REFINE) + continued + tags.CODE_END)
    events = run(source, max_iterations=2)
    iterations = [e for e in events if e["type"] == "iteration"]
    assert [(e["code"], e["syntax_ok"], e["decision"]) for e in iterations] == [
        (VALID, True, "<REFINE>"),
        (BROKEN, False, "</CODE>"),
    ]
    assert events[-1]["code"] == VALID and events[-1]["stopped"] == "max_iterations"
    assert source.contexts[-1].endswith(f"{tags.AFTER_END}\n{attempt_feedback(True)}{continued}")


def test_refinement_feedback_is_what_refinement_records_are_trained_on():
    assert attempt_feedback(False) == f"{tags.CODE_END}{FAILED_VALIDATION}\n{tags.CODE}\n{tags.AFTER}\n"


def test_torch_token_source_runs_the_loop_with_a_real_model():
    tokenizer = CharTokenizer()
    config = replace(preset("hrm", "tiny", vocab_size=len(tokenizer.pieces)).model, block_size=64)
    torch.manual_seed(0)
    model = build_model(config)
    greedy = TorchTokenSource(model, tokenizer, temperature=0)
    ids = tokenizer.encode("<REPO> o/p\n")
    with torch.no_grad():
        expected = int(model(torch.tensor([ids]))[0][0, -1].argmax())
    assert greedy.next_token(ids) == expected
    long_context = ids * 20  # beyond block_size: cropped, not an error
    assert 0 <= greedy.next_token(long_context) < len(tokenizer.pieces)

    def sample(seed):
        source = TorchTokenSource(model, tokenizer, temperature=1.0, top_k=5, seed=seed)
        return run(source, max_iterations=2, max_plan_tokens=6, max_code_tokens=8)

    events = sample(7)
    assert events == sample(7)  # seeded sampling is reproducible
    assert events[-1]["type"] == "done" and 1 <= events[-1]["iterations"] <= 2
    assert all(e["stage"] in ("plan", "code") for e in events if e["type"] == "token")


def test_an_overflowing_context_is_cropped_in_quarter_context_steps():
    window = [len(context_window(list(range(n)), 64)) for n in range(1, 200)]
    assert window[:64] == list(range(1, 65))  # what fits is read whole
    assert all(48 < length <= 64 for length in window[64:])
    # The window's start moves once every 16 tokens, so a KV cache keeps its prefix for 16 new tokens.
    starts = [n - length for n, length in zip(range(1, 200), window, strict=True)]
    assert sorted(set(starts)) == list(range(0, starts[-1] + 1, 16))
    assert context_window(list(range(100)), 64)[-1] == 99
