"""Dataset builds: the validation split, per-token section labels, rows that start at records, atomic output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from corpus.records import SECTION_LABELS, SerializedRecord, Span
from corpus.tags import CODE_END, CONTINUE, REFINE
from training.dataset import (
    PAD_LABEL,
    BuildStopped,
    build_dataset,
    decode_sample,
    encode_record,
    load_meta,
    token_dtype,
    val_score,
)
from training.tokenizer import Tokenizer, train_tokenizer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
SECTION_NAMES = {value: name for name, value in SECTION_LABELS.items()}


def go_sources() -> list[str]:
    return [path.read_bytes().decode("utf-8") for path in sorted(FIXTURES.glob("*.go"))]


def make_record(repo: str, index: int) -> SerializedRecord:
    """Serializer-like layout whose span boundaries all touch a tag (so tokens never straddle them)."""
    sources = go_sources()
    before, after = sources[index % len(sources)], sources[(index + 3) % len(sources)]
    steps = "".join(f"<STEP> <INTENT:FIX> Guard case {i} in {repo}\n" for i in range(1 + index % 4))
    pieces = [
        ("other", f"<REPO> {repo}\n<PR_TITLE> Change number {index}\n<PR_BODY> Fixes a crash — ünïcode 修复.\n\n"),
        ("plan", f"<PLAN>\n{steps}</PLAN>"),
        ("other", f'\n\n<CONTEXT>\n<FILE path="a.go">\n<BEFORE>\n{before}</BEFORE>\n</FILE>\n</CONTEXT>\n\n'),
        ("code", f"<CODE>\n<AFTER>\n{after}</AFTER>\n</CODE>"),
        ("other", "\n\n"),
        ("validate", "<VALIDATE>\n<SYNTAX_OK> true\n<TEST_PASS> unknown\n</VALIDATE>"),
        ("other", "\n"),
    ]
    spans, start = [], 0
    for section, text in pieces:
        spans.append(Span(section, start, start + len(text)))
        start += len(text)
    return SerializedRecord("".join(text for _, text in pieces), spans)


REPOS = [f"owner{i}/project{i}" for i in range(8)]


def make_records(repos=REPOS, per_repo: int = 3) -> list[tuple[str, SerializedRecord]]:
    return [(repo, make_record(repo, i * len(repos) + r)) for i in range(per_repo) for r, repo in enumerate(repos)]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    texts = [record.text for _, record in make_records(per_repo=4)]
    return train_tokenizer(texts, tmp_path_factory.mktemp("tok") / "go", vocab_size=700).model_path


def read_split(out_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray, dict]:
    meta = load_meta(out_dir)
    ids = np.fromfile(out_dir / f"{split}.bin", dtype=meta["dtype"]).astype(np.int64)
    labels = np.fromfile(out_dir / f"{split}.labels.bin", dtype=np.uint8)
    return ids, labels, meta


def split_records(ids: np.ndarray, labels: np.ndarray, bos: int, eos: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The records of a split in file order; only padding lies between one record's end and the next start."""
    starts = np.flatnonzero(ids == bos)
    ends = np.flatnonzero(ids == eos) + 1
    assert len(starts) == len(ends) and (starts[1:] >= ends[:-1]).all()
    for end, start in zip(ends[:-1], starts[1:], strict=True):
        assert (labels[end:start] == PAD_LABEL).all()
    return [(ids[s:e], labels[s:e]) for s, e in zip(starts, ends, strict=True)]


def by_text(tokenizer: Tokenizer, written):
    return sorted(written, key=lambda pair: tokenizer.decode(pair[0]))


def runs(ids, labels) -> list[tuple[int, list[int]]]:
    grouped: list[tuple[int, list[int]]] = []
    for token_id, label in zip(ids.tolist(), labels.tolist(), strict=True):
        if grouped and grouped[-1][0] == label:
            grouped[-1][1].append(token_id)
        else:
            grouped.append((label, [token_id]))
    return grouped


def file_bytes(out_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out_dir.iterdir())}


def test_repositories_never_straddle_the_split_and_the_split_is_stable(model, tmp_path):
    records = make_records()
    stats = build_dataset(records, model, tmp_path / "a", processes=1, val_fraction=0.3, augment=False)
    again = build_dataset(records, model, tmp_path / "b", processes=1, val_fraction=0.3, augment=False)
    train, val = set(stats.splits["train"].repos), set(stats.splits["val"].repos)
    assert train and val and not train & val and train | val == set(REPOS)
    assert val == {repo for repo in REPOS if val_score(repo) < 0.3}
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")
    assert again == stats
    meta = load_meta(tmp_path / "a")
    assert meta["splits"]["val"]["repos"] == sorted(val)
    assert meta["splits"]["train"]["records"] + meta["splits"]["val"]["records"] == len(records)


def test_each_side_gets_a_repository_when_there_are_two(model, tmp_path):
    pair = ["solo/one", "solo/two"]
    stats = build_dataset(make_records(pair, 2), model, tmp_path / "pair", processes=1, val_fraction=0.0, augment=False)
    # Forced into validation: the repository whose token share is closest to val_fraction (0: the smaller one).
    assert len(stats.splits["val"].repos) == len(stats.splits["train"].repos) == 1
    assert set(stats.splits["val"].repos + stats.splits["train"].repos) == set(pair)
    assert stats.splits["val"].tokens < stats.splits["train"].tokens
    assert stats.splits["train"].records == stats.splits["val"].records == 2
    ids, labels, meta = read_split(tmp_path / "pair", "val")
    assert len(split_records(ids, labels, meta["bos_id"], meta["eos_id"])) == 2
    single = build_dataset(
        make_records(["solo/one"], 2), model, tmp_path / "one", processes=1, val_fraction=0.99, augment=False
    )
    # One repository: the latest pull requests by merge time go to validation.
    assert single.splits["train"].repos == single.splits["val"].repos == ["solo/one"]
    assert single.split_method == "merge time" and single.splits["val"].prs == 1 == single.splits["train"].prs


def test_files_follow_the_contract(model, tmp_path):
    records = make_records()
    stats = build_dataset(records, model, tmp_path / "ds", processes=1, seq_len=2047, val_fraction=0.3, augment=False)
    out = tmp_path / "ds"
    meta = json.loads((out / "meta.json").read_text())
    assert meta == stats.to_meta()
    assert {"layout", "dataset_format", "split_method", "record_reasons", "fit_whole_share", "budget"} <= set(meta)
    assert meta["layout"] == "rows" and meta["budget"] == 2048
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 700
    assert (meta["pad_id"], meta["bos_id"], meta["eos_id"]) == (0, 2, 3)
    assert meta["section_labels"] == SECTION_LABELS
    assert sorted(path.name for path in out.iterdir()) == [
        "meta.json",
        "tokenizer.model",
        "train.bin",
        "train.labels.bin",
        "val.bin",
        "val.labels.bin",
    ]  # no planner/generator arrays: nothing reads them
    for split in ("train", "val"):
        counts = meta["splits"][split]
        rows = counts["sequences"]
        assert (out / f"{split}.bin").stat().st_size == 2 * rows * 2048
        assert (out / f"{split}.labels.bin").stat().st_size == rows * 2048
        assert counts["padding"] == rows * 2048 - counts["tokens"]
        ids = np.fromfile(out / f"{split}.bin", dtype=meta["dtype"]).astype(np.int64)
        labels = np.fromfile(out / f"{split}.labels.bin", dtype=np.uint8)
        assert len(split_records(ids, labels, 2, 3)) == counts["records"]
        # Every row starts at a record (none of these is longer than a row).
        assert (ids.reshape(rows, 2048)[:, 0] == 2).all()
    assert sum(meta["section_share"].values()) == pytest.approx(1.0)
    assert meta["section_share"]["code"] > meta["section_share"]["plan"] > 0
    assert meta["section_share"]["refine"] == 0
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_short_records_are_packed_whole_and_long_ones_run_on(model, tmp_path):
    records = make_records(REPOS[:2], 3)
    tokenizer = Tokenizer(model)
    lengths = sorted(len(encode_record(tokenizer, record).ids) for _, record in records)
    seq_len = lengths[len(lengths) // 2]  # half the records are longer than a row
    stats = build_dataset(records, model, tmp_path / "ds", processes=1, seq_len=seq_len, augment=False)
    row = seq_len + 1
    longer = sum(length > row for length in lengths)
    assert stats.record_reasons.get("longer than the window", 0) == longer > 0
    for split in ("train", "val"):
        ids, labels, meta = read_split(tmp_path / "ds", split)
        for start, end in ((s, e) for s, e in zip(np.flatnonzero(ids == 2), np.flatnonzero(ids == 3) + 1, strict=True)):
            if end - start <= row:
                assert start // row == (end - 1) // row  # a short record never straddles two rows
            else:
                assert start % row == 0  # a long one starts a row


def test_token_dtype_widens_past_sixteen_bits():
    assert token_dtype(50_000) == "uint16"
    assert token_dtype(65_536) == "uint16"
    assert token_dtype(65_537) == "uint32"


def test_label_runs_decode_to_the_span_texts(model, tmp_path):
    records = make_records()
    stats = build_dataset(records, model, tmp_path / "ds", processes=1, val_fraction=0.3, augment=False)
    tokenizer = Tokenizer(model)
    for split in ("train", "val"):
        ids, labels, meta = read_split(tmp_path / "ds", split)
        written = by_text(tokenizer, split_records(ids, labels, meta["bos_id"], meta["eos_id"]))
        originals = sorted(
            (record for repo, record in records if repo in stats.splits[split].repos), key=lambda r: r.text
        )
        assert len(written) == len(originals)
        for (record_ids, record_labels), record in zip(written, originals, strict=True):
            assert tokenizer.decode(record_ids) == record.text
            body = runs(record_ids[1:-1], record_labels[1:-1])
            expected = [(SECTION_LABELS[span.section], record.text[span.start : span.end]) for span in record.spans]
            assert [(label, tokenizer.decode(run)) for label, run in body] == expected
            assert record_labels[0] == record_labels[-1] == SECTION_LABELS["other"]


def test_a_token_across_a_boundary_takes_the_section_of_its_first_character(model):
    tokenizer = Tokenizer(model)
    text = go_sources()[0] + "tail 修复 ℵ"
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(1, len(text)), 40))
    sections = list(SECTION_LABELS)
    spans = [Span(rng.choice(sections), start, end) for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    char_sections = [next(span.section for span in spans if span.start <= i < span.end) for i in range(len(text))]
    encoded = encode_record(tokenizer, SerializedRecord(text, spans))
    _, offsets = tokenizer.encode_with_offsets(text)
    assert len(encoded.labels) == len(offsets) + 2
    straddling = 0
    for label, (start, end) in zip(encoded.labels[1:-1].tolist(), offsets, strict=True):
        assert label == SECTION_LABELS[char_sections[start]]
        straddling += len(set(char_sections[start:end])) > 1
    assert straddling > 0  # the random cuts really did split tokens


def test_unknown_sections_are_refused(model):
    with pytest.raises(ValueError, match="unknown section"):
        encode_record(Tokenizer(model), SerializedRecord("abc", [Span("prose", 0, 3)]))


def test_augmented_records_carry_one_controller_decision_each(model, tmp_path):
    records = make_records(REPOS[:4], 2)
    stats = build_dataset(records, model, tmp_path / "ds", processes=1, val_fraction=0.3, augment=True)
    tokenizer = Tokenizer(model)
    decisions = {tokenizer.special_ids[tag] for tag in (CONTINUE, REFINE, CODE_END)}
    refine = SECTION_LABELS["refine"]
    augmented = 0
    for split in ("train", "val"):
        ids, labels, meta = read_split(tmp_path / "ds", split)
        for record_ids, record_labels in split_records(ids, labels, meta["bos_id"], meta["eos_id"]):
            decision = record_ids[record_labels == refine]
            if len(decision):
                augmented += 1
                assert len(decision) == 1 and int(decision[0]) in decisions
    # Every fixture-based record parses, so each brings continue, refine and done examples.
    dropped = stats.record_reasons.get("controller example over budget", 0)
    assert stats.augmented_records == augmented == 3 * len(records) - dropped
    assert stats.splits["train"].records + stats.splits["val"].records == 4 * len(records) - dropped
    assert stats.section_share["refine"] > 0


def test_worker_processes_write_the_same_bytes(model, tmp_path):
    records = make_records()
    build_dataset(records, model, tmp_path / "one", processes=1, val_fraction=0.3, augment=True)
    build_dataset(records, model, tmp_path / "two", processes=2, val_fraction=0.3, augment=True)
    assert file_bytes(tmp_path / "one") == file_bytes(tmp_path / "two")


def test_a_stopped_build_leaves_nothing(model, tmp_path):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(BuildStopped):
        build_dataset(
            make_records(per_repo=12), model, tmp_path / "ds", processes=1, augment=False, should_stop=should_stop
        )
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_rebuild_replaces_the_old_dataset_whole(model, tmp_path):
    out = tmp_path / "ds"
    build_dataset(make_records(), model, out, processes=1, val_fraction=0.3, augment=False)
    (out / "stale.bin").write_bytes(b"old")
    stats = build_dataset(make_records(REPOS[:2], 1), model, out, processes=1, augment=False)
    assert not (out / "stale.bin").exists()
    assert load_meta(out)["splits"]["train"]["records"] + load_meta(out)["splits"]["val"]["records"] == 2
    assert stats.splits["train"].repos and stats.splits["val"].repos
    assert [path.name for path in tmp_path.iterdir()] == ["ds"]


def test_empty_input_and_bad_settings_are_refused(model, tmp_path):
    with pytest.raises(ValueError, match="no records"):
        build_dataset([], model, tmp_path / "ds", processes=1)
    with pytest.raises(ValueError):
        build_dataset(make_records(), model, tmp_path / "ds", val_fraction=1.0)
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported(model, tmp_path):
    heard = []
    records = make_records(per_repo=10)
    build_dataset(
        records,
        model,
        tmp_path / "ds",
        processes=1,
        augment=False,
        total_records=len(records),
        report=lambda message, fraction: heard.append((message, fraction)),
    )
    assert heard and heard[-1][1] == 1.0
    assert f"{len(records)} pull requests" in heard[-1][0]


def test_decode_sample_shows_a_record_token_by_token(model, tmp_path):
    records = make_records()
    stats = build_dataset(records, model, tmp_path / "ds", processes=1, val_fraction=0.3, augment=False)
    originals = {record.text: record for repo, record in records if repo in stats.splits["train"].repos}
    for index in (0, 2):
        sample = decode_sample(tmp_path / "ds", "train", index)
        record = originals["".join(text for text, _ in sample[1:-1])]
        assert sample[0] == ("<s>", "other") and sample[-1] == ("</s>", "other")
        assert "".join(text for text, _ in sample[1:-1]) == record.text
        by_section: dict[str, str] = {}
        for text, section in sample[1:-1]:
            by_section[section] = by_section.get(section, "") + text
        for section in ("plan", "code", "validate"):
            assert by_section[section] == "".join(
                record.text[span.start : span.end] for span in record.spans if span.section == section
            )
    assert len(decode_sample(tmp_path / "ds", "train", 1, length=10)) <= 10
    with pytest.raises(IndexError):
        decode_sample(tmp_path / "ds", "train", stats.splits["train"].records)


def test_decode_sample_joins_the_byte_pieces_of_a_character(model, tmp_path):
    repo, record = make_records(REPOS[:1], 1)[0]
    tail = "// 𝔘ℵ ꙮ\n"  # characters the tokenizer never saw: byte pieces
    last = record.spans[-1]
    rare = SerializedRecord(
        record.text + tail, [*record.spans[:-1], Span(last.section, last.start, last.end + len(tail))]
    )
    build_dataset([(repo, rare)], model, tmp_path / "ds", processes=1, augment=False)
    sample = decode_sample(tmp_path / "ds", "train", 0)
    texts = [text for text, _ in sample]
    assert "".join(texts[1:-1]) == rare.text
    assert "𝔘" in texts and "ℵ" in texts and "ꙮ" in texts


def test_serializer_records_build_with_labels_from_their_spans(model, tmp_path):
    from corpus.records import FileRecord, PRRecord
    from corpus.serialize import serialize

    sources = {path.name: path.read_bytes().decode("utf-8") for path in FIXTURES.glob("*.go")}
    pairs = [("fix_server", "acme/server"), ("add_cache", "acme/cache"), ("refactor_store", "acme/store")]
    records = [
        (
            repo,
            serialize(
                PRRecord(
                    repo=repo,
                    number=n,
                    title=f"Change {name}",
                    body="Why: it crashed.",
                    files=[
                        FileRecord(
                            path=f"{name}.go", before=sources[f"{name}_before.go"], after=sources[f"{name}_after.go"]
                        ),
                    ],
                )
            ),
        )
        for n, (name, repo) in enumerate(pairs)
    ]
    stats = build_dataset(records, model, tmp_path / "ds", processes=1, val_fraction=0.3, augment=True)
    dropped = stats.record_reasons.get("controller example over budget", 0)
    assert stats.augmented_records + dropped == 3 * len(records)
    tokenizer = Tokenizer(model)
    for _, record in records:
        encoded = encode_record(tokenizer, record)
        starts, _ = tokenizer.token_offsets(encoded.ids[1:-1])
        section_at = np.zeros(len(record.text), dtype=np.uint8)
        for span in record.spans:
            section_at[span.start : span.end] = SECTION_LABELS[span.section]
        assert (encoded.labels[1:-1] == section_at[starts]).all()
        assert {SECTION_NAMES[label] for label in encoded.labels.tolist()} == {"other", "plan", "code", "validate"}
        assert tokenizer.decode(encoded.ids) == record.text


def test_training_windows_start_at_records_and_never_train_on_padding(model, tmp_path):
    import torch

    from training.data import TokenBatches

    records = make_records(REPOS[:3], 2)
    build_dataset(records, model, tmp_path / "ds", processes=1, seq_len=2047, augment=False)
    batches = TokenBatches(tmp_path / "ds", "train", 2047, batch_size=8, device=torch.device("cpu"), seed=1)
    x, y, sections = batches.next_batch()
    assert (x[:, 0] == 2).all()  # <s>: every sequence starts at a record
    padded = x == 0
    assert padded.any()  # the fixture's rows hold padding after their records
    shifted = torch.cat([padded[:, 1:], padded[:, -1:]], dim=1)
    assert (y[shifted] == -1).all() and (sections[shifted] == 0).all()
    assert (y[~shifted] >= 0).all()


def test_windows_shorter_than_the_rows_start_at_every_record(model, tmp_path):
    import torch

    from training.data import TokenBatches

    records = make_records(REPOS[:3], 2)
    build_dataset(records, model, tmp_path / "ds", processes=1, seq_len=2047, augment=False)
    batches = TokenBatches(tmp_path / "ds", "train", 256, batch_size=64, device=torch.device("cpu"), seed=1)
    ids = np.fromfile(tmp_path / "ds" / "train.bin", dtype=np.uint16)
    records_in_rows = np.flatnonzero(ids == 2)
    assert set(records_in_rows.tolist()) <= set(batches.starts.tolist())
    assert len(batches.starts) > len(records_in_rows)  # the rest of each record longer than 256 tokens too
    assert any(start % 2048 for start in records_in_rows.tolist())  # records packed inside rows are reachable
    x, _, _ = batches.next_batch()
    assert x.shape == (64, 256)


def test_a_run_config_saved_with_planner_positions_still_loads():
    from training.hrm.config import RunConfig, preset

    saved = preset("hrm", "tiny").to_dict()
    assert "planner_positions" not in saved["model"]  # read by nothing: it went with the planner arrays
    saved["model"]["planner_positions"] = 128
    assert RunConfig.from_dict(saved) == preset("hrm", "tiny")


def test_forced_validation_repository_is_the_one_closest_to_the_asked_share(model, tmp_path):
    # Three repositories the hash leaves all in train, the largest being the one with the lowest hash.
    names = [name for name in (f"qa{i}/repo" for i in range(100)) if val_score(name) >= 0.05][:3]
    names.sort(key=val_score)
    sizes = dict(zip(names, (6, 3, 1), strict=True))
    records = [(repo, make_record(repo, index)) for repo, count in sizes.items() for index in range(count)]
    stats = build_dataset(records, model, tmp_path / "a", processes=1, val_fraction=0.05, augment=False)
    # The one-record repository is nearest 5 % but holds less than a window (1,025 tokens, estimated from
    # characters): validation gets the nearest of those that hold one.
    assert stats.split_method == "repository"
    assert stats.splits["val"].repos == [names[1]]
    assert set(stats.splits["train"].repos) == {names[0], names[2]}
    again = build_dataset(list(reversed(records)), model, tmp_path / "b", processes=1, val_fraction=0.05, augment=False)
    assert again.splits["val"].repos == [names[1]]
