"""The SentencePiece tokenizer: tags are single pieces, Go code round-trips exactly, sizes are checked."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest

from corpus.tags import BASE_TOKENS, FORMAT_TAGS
from training.tokenizer import (
    Tokenizer,
    VocabularyTooLarge,
    VocabularyTooSmall,
    sample_sentences,
    split_long,
    train_tokenizer,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
WORDS = ["handle", "request", "server", "reader", "cache", "config", "buffer", "client", "value", "store"]


def go_source(rng: random.Random, index: int) -> str:
    name, kind = rng.choice(WORDS), rng.choice(WORDS).title()
    return (
        f'package {rng.choice(WORDS)}\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\n'
        f"// {name.title()}{index} checks the {kind}.\n"
        f'func {name}{index}(r *{kind}) error {{\n\tif r == nil {{\n\t\treturn fmt.Errorf("nil {kind}")\n\t}}\n'
        f'\tfor i := 0; i < {index}; i++ {{\n\t\tr.{name}(strings.TrimSpace("  x  "))\n\t}}\n\treturn nil\n}}\n'
    )


def serialized_text(rng: random.Random, index: int) -> str:
    code = go_source(rng, index)
    return (
        f"<REPO> owner/repo{index % 7}\n<PR_TITLE> Fix nil {rng.choice(WORDS)} in handler\n"
        f"<PR_BODY> This fixes a panic when the {rng.choice(WORDS)} is nil.\n\n"
        f"<PLAN>\n<STEP> <INTENT:FIX> Check the {rng.choice(WORDS)}\n<STEP> <TARGET:func> handle()\n</PLAN>\n\n"
        f'<CONTEXT>\n<FILE path="x.go">\n<BEFORE>\n{code}</BEFORE>\n</FILE>\n\n'
        f"<CODE>\n<AFTER>\n{code}</AFTER>\n</CODE>\n\n<VALIDATE>\n<SYNTAX_OK> true\n<TEST_PASS> unknown\n</VALIDATE>\n"
    )


def corpus(count: int = 300) -> list[str]:
    rng = random.Random(7)
    return [serialized_text(rng, index) for index in range(count)]


def tricky_texts() -> list[str]:
    return [
        'func main() {\n\tfmt.Println("tab\\t")\t\t// trailing tabs\t\n}\n',
        "package crlf\r\n\r\nfunc f() {\r\n\treturn\r\n}\r\n",
        "x := 1   \n\n\n    y := 2      \n",  # trailing spaces, blank lines, space indentation
        's := "😀 emoji, 中文字符, Ελληνικά, עברית"\n',
        "  leading spaces and a lone \r carriage return",
        'bars := "▁▂▃▄▅▆▇█" // U+2581 is SentencePiece\'s own space mark\n',
        "\x00\x07\x1b[31m control bytes \ufeff BOM \U0010ffff",
        " ",
        "\n",
        "",
    ]


def fixture_sources() -> list[str]:
    # Bytes, not read_text(): universal newlines would turn the CRLF fixture into LF.
    return [path.read_bytes().decode("utf-8") for path in sorted(FIXTURES.glob("*.go"))]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Tokenizer, object]:
    info = train_tokenizer(corpus(), tmp_path_factory.mktemp("tok") / "go", vocab_size=800)
    return Tokenizer(info.model_path), info


def test_base_tokens_take_the_first_ids(trained):
    tokenizer, _ = trained
    assert [tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id] == [0, 1, 2, 3]
    assert [tokenizer.special_ids[token] for token in BASE_TOKENS] == [0, 1, 2, 3]


def test_every_format_tag_is_one_piece_that_round_trips(trained):
    tokenizer, _ = trained
    for tag in FORMAT_TAGS:
        ids = tokenizer.encode(tag)
        assert ids == [tokenizer.special_ids[tag]], tag
        assert tokenizer.decode(ids) == tag
    # Inside text too, glued to neighbours.
    text = '<FILE path="a.go">\n<AFTER>\nx</AFTER><CONTINUE><REFINE></CODE>'
    pieces = tokenizer.pieces(text)
    for tag in ("<FILE", "<AFTER>", "</AFTER>", "<CONTINUE>", "<REFINE>", "</CODE>"):
        assert tag in pieces
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_go_fixture_files_round_trip_exactly(trained):
    tokenizer, _ = trained
    sources = fixture_sources()
    assert sources, "tests/fixtures/go has no .go files"
    assert any("\r\n" in source for source in sources)
    for source in sources:
        assert tokenizer.decode(tokenizer.encode(source)) == source


def test_tabs_crlf_spaces_and_unicode_round_trip_exactly(trained):
    tokenizer, _ = trained
    for text in tricky_texts():
        assert tokenizer.decode(tokenizer.encode(text)) == text, repr(text)
    whole = "".join(tricky_texts())
    assert tokenizer.decode(tokenizer.encode(whole)) == whole


def test_unseen_characters_fall_back_to_bytes_never_unk(trained):
    tokenizer, _ = trained
    text = "ℵ∮𝔘 ꙮ \x01 ᚠᛇᚻ"
    ids = tokenizer.encode(text)
    assert tokenizer.unk_id not in ids
    assert any(tokenizer.is_byte(token_id) for token_id in ids)
    assert tokenizer.decode(ids) == text


def test_lone_surrogates_become_replacement_characters_in_place(trained):
    tokenizer, _ = trained
    text = 's := "a\udc80b"\n'  # an undecodable byte kept by surrogateescape
    ids, offsets = tokenizer.encode_with_offsets(text)
    assert tokenizer.decode(ids) == text.replace("\udc80", "\ufffd")
    assert offsets[-1][1] == len(text)


def test_training_is_deterministic(tmp_path):
    first = train_tokenizer(corpus(60), tmp_path / "one", vocab_size=500)
    second = train_tokenizer(corpus(60), tmp_path / "two", vocab_size=500)
    one, two = Tokenizer(first.model_path), Tokenizer(second.model_path)
    assert [(one.piece(i), one.sp.get_score(i)) for i in range(500)] == [
        (two.piece(i), two.sp.get_score(i)) for i in range(500)
    ]


def test_indentation_runs_become_whitespace_pieces(trained):
    tokenizer, _ = trained
    pieces = tokenizer.pieces("\t\tr.x()\n    return nil\n")
    assert any(piece.strip("\t\n▁") == "" and len(piece) > 1 for piece in pieces)


def test_offsets_slice_the_text_piece_by_piece(trained):
    tokenizer, _ = trained
    for text in [*tricky_texts(), *fixture_sources()]:
        ids, offsets = tokenizer.encode_with_offsets(text)
        assert ids == tokenizer.encode(text)
        assert len(offsets) == len(ids)
        assert "".join(text[start:end] for start, end in offsets) == text
        previous_end = 0
        for token_id, (start, end) in zip(ids, offsets, strict=True):
            assert start == previous_end
            previous_end = end
            if not tokenizer.is_byte(token_id):
                assert tokenizer.decode([token_id]) == text[start:end]
        if "\u2581" not in text:
            # SentencePiece's own character offsets agree (the wrapper computes them from the pieces).
            assert offsets == tokenizer.sp.encode(text, return_type="offset_mapping")["offsets"]


def test_info_reports_sizes_speed_and_files(trained):
    tokenizer, info = trained
    assert info.vocab_size == tokenizer.vocab_size == 800
    assert info.model_path.exists() and info.vocab_path.exists()
    lines = info.vocab_path.read_text(encoding="utf-8").split("\n")
    assert lines.pop() == "" and len(lines) == 800
    pieces = [line.rsplit("\t", 1)[0] for line in lines]
    assert pieces[:4] == list(BASE_TOKENS)
    assert any(piece.startswith("\\n") for piece in pieces)  # newline pieces are escaped
    assert info.train_seconds > 0
    # Repetitive synthetic Go compresses well; prose measured separately.
    assert info.chars_per_token_code > 2
    assert info.chars_per_token_prose > 1
    assert info.input_chars == info.trained_chars == sum(map(len, corpus()))
    assert not list(info.model_path.parent.glob(".*partial*"))


def test_chars_per_token_counts_characters_over_tokens(trained):
    tokenizer, _ = trained
    texts = ["func main() {}\n", "return nil\n"]
    tokens = sum(len(tokenizer.encode(text)) for text in texts)
    assert tokenizer.chars_per_token(texts) == pytest.approx(sum(map(len, texts)) / tokens)
    assert tokenizer.chars_per_token([]) == 0.0


def test_tokenizer_survives_pickling_for_worker_processes(trained):
    tokenizer, _ = trained
    copy = pickle.loads(pickle.dumps(tokenizer))
    text = fixture_sources()[0]
    assert copy.encode(text) == tokenizer.encode(text)
    assert copy.special_ids == tokenizer.special_ids


def test_too_large_vocabulary_names_the_largest_that_works(tmp_path):
    texts = corpus(40)
    with pytest.raises(VocabularyTooLarge) as raised:
        train_tokenizer(texts, tmp_path / "big", vocab_size=100_000)
    assert raised.value.requested == 100_000
    assert str(raised.value.max_size) in str(raised.value)
    assert not list(tmp_path.iterdir())  # nothing half-written
    info = train_tokenizer(texts, tmp_path / "max", vocab_size=raised.value.max_size)
    assert info.vocab_size == raised.value.max_size


def test_too_small_vocabulary_names_the_smallest_that_works(tmp_path):
    with pytest.raises(VocabularyTooSmall) as raised:
        train_tokenizer(corpus(20), tmp_path / "small", vocab_size=100)
    # 256 byte pieces, the base tokens and the format tags at least.
    assert raised.value.min_size > 256 + len(BASE_TOKENS) + len(FORMAT_TAGS)
    assert str(raised.value.min_size) in str(raised.value)


def test_large_corpora_are_sampled_deterministically_within_budget():
    texts = corpus(200)
    first, total = sample_sentences(texts, max_sentence_chars=10_000, sample_chars=20_000, seed=1)
    again, _ = sample_sentences(texts, max_sentence_chars=10_000, sample_chars=20_000, seed=1)
    other, _ = sample_sentences(texts, max_sentence_chars=10_000, sample_chars=20_000, seed=2)
    assert total == sum(map(len, texts))
    assert first == again != other
    assert 15_000 < sum(map(len, first)) <= 20_000
    assert set(first) <= set(texts)
    # Not just the head of the corpus.
    assert max(texts.index(sentence) for sentence in first) > 100


def test_training_uses_the_sample_only(tmp_path):
    info = train_tokenizer(corpus(200), tmp_path / "sampled", vocab_size=600, sample_chars=30_000)
    assert info.trained_chars <= 30_000 < info.input_chars


def test_long_records_are_cut_at_line_ends():
    text = "".join(f"line {i}\n" for i in range(1000))
    pieces = list(split_long(text, 100))
    assert "".join(pieces) == text
    assert all(len(piece) <= 100 for piece in pieces)
    assert all(piece.endswith("\n") for piece in pieces)
    no_newlines = "x" * 250
    assert [len(piece) for piece in split_long(no_newlines, 100)] == [100, 100, 50]
