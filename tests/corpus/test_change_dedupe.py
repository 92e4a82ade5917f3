"""A one-repository corpus from a generated git history: 22 small PRs to different functions of one
3,000-line Go file, and a backport of one of them. Imported, judged, re-judged, and trained on, with
the README's commands run as a shell runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from corpus.models import PullRequest, Snapshot
from corpus.serialize import FORMAT_VERSION, RecordParts, render
from hrgc_site.models import JobStatus
from tests.commands import command_env, manage
from tests.go_fixtures import ledger_repository
from training.dataset import load_meta
from training.models import DatasetBuild, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def ledger(tmp_path):
    info = ledger_repository(tmp_path / "ledger")
    env = command_env(tmp_path / "data")
    out = manage("import_git", str(tmp_path / "ledger"), "--repo", "acme/ledger", env=env).stdout
    assert "finished" in out
    return info, env


def test_prs_to_different_functions_are_not_duplicates_and_a_backport_is(ledger):
    info, _ = ledger
    prs = {pr.number: pr for pr in PullRequest.objects.all()}
    assert set(prs) == {*range(1, 23), 40}
    for number in range(1, 23):
        assert prs[number].duplicate_of_id is None and prs[number].included, prs[number].duplicate_reason
    assert prs[40].duplicate_of_id == prs[5].pk and not prs[40].included
    assert prs[40].excluded_reason.endswith("duplicate of acme/ledger#5")


def test_each_stored_record_holds_its_function_and_not_the_rest_of_the_file(ledger):
    info, _ = ledger
    names = info["names"]
    for pr in PullRequest.objects.filter(number__lte=22):
        # Stored at ingest, in the current format.
        assert pr.record_format == FORMAT_VERSION and pr.plan["steps"]
        text = render(RecordParts.from_json(pr.record_parts)).text
        name = names[pr.number]
        assert f"<TARGET:func> {name}() in ledger.go" in text
        assert text.count(f"func {name}(") == 2  # before in CONTEXT, after in CODE
        assert not [other for other in names.values() if other != name and f"// {other} folds" in text]
        assert len(text) < 4000 and pr.serialized_chars == len(text)


def test_rejudging_brings_back_prs_the_whole_file_rule_excluded_unless_a_person_did(ledger):
    _, env = ledger
    prs = {pr.number: pr for pr in PullRequest.objects.all()}
    # What the old rule left behind: whole-file signatures, PRs 7 and 8 excluded as near duplicates of 3;
    # a person then excluded PR 8 themselves.
    PullRequest.objects.filter(number__in=[7, 8]).update(
        duplicate_of=prs[3],
        duplicate_reason="near duplicate of acme/ledger#3",
        included=False,
        excluded_reason="near duplicate of acme/ledger#3",
        minhash_text_hash="whole-file text",
        record_format=0,
        record_parts=None,
    )
    PullRequest.objects.filter(number=8).update(excluded_reason="a person: flaky", curated_at=timezone.now())
    out = manage("rejudge_duplicates", env=env).stdout
    assert "came back" in out
    seven, eight = PullRequest.objects.get(number=7), PullRequest.objects.get(number=8)
    assert seven.included and seven.duplicate_of_id is None and seven.excluded_reason == ""
    assert seven.record_format == FORMAT_VERSION and seven.record_parts
    assert not eight.included and eight.excluded_reason == "a person: flaky" and eight.duplicate_of_id is None
    assert PullRequest.objects.get(number=40).duplicate_of_id == prs[5].pk


def test_one_repository_builds_a_validation_split_and_a_tiny_run_trains_on_it(ledger):
    _, env = ledger
    manage("snapshot", "create", "ledger", env=env)
    snapshot = Snapshot.objects.get(name="ledger")
    assert snapshot.record_format == FORMAT_VERSION and snapshot.pr_count == 22
    lines = [json.loads(line) for line in Path(snapshot.file_path).read_text().splitlines()]
    assert {line["format_version"] for line in lines} == {FORMAT_VERSION} and all(line["parts"] for line in lines)
    manage("train_tokenizer", "ledger", "--vocab-size", "600", env=env)
    out = manage("build_dataset", "ledger", "latest", env=env).stdout
    assert "validation split by merge time" in out
    dataset = DatasetBuild.objects.get()
    meta = load_meta(Path(dataset.path))
    assert meta["split_method"] == "merge time" and meta["splits"]["val"]["prs"] == 1
    assert meta["splits"]["val"]["tokens"] > 0 and "longer than the window" not in meta["record_reasons"]
    settings = {"max_steps": "4", "eval_steps": "2", "save_steps": "4", "logging_steps": "1", "eval_iters": "1"}
    settings.update(validation_frequency="1000", warmup_steps="1", batch_size="2", num_threads="1", device="cpu")
    args = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    manage("train", dataset.name, "--family", "hrm", "--preset", "tiny", *args, env=env)
    run = TrainingRun.objects.get()
    assert run.status == JobStatus.FINISHED and run.step == 4 and run.last_val_loss is not None
