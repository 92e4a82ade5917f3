"""Dataset pages: build from the form, live status, statistics, repository split, coloured sample, roles."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from hrgc_site.models import JobStatus
from tests.training.data_fixtures import make_snapshot
from training.data import read_meta
from training.dataset import load_meta
from training.models import DatasetBuild, TrainingRun
from training.services import datasets, tokenizers
from training.tasks.datasets import build_dataset_task
from training.tasks.tokenizers import train_tokenizer_task

# Tasks run the way the worker runs them (run_job), which manages its own connections: no wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tokenizer(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    snapshot = make_snapshot(tmp_path)
    tokenizer = tokenizers.create_tokenizer(snapshot=snapshot, name="tok-400", vocab_size=400, enqueue_task=False)
    assert train_tokenizer_task(tokenizer.pk) == JobStatus.FINISHED
    tokenizer.refresh_from_db()
    return tokenizer


@pytest.fixture
def built(tokenizer):
    dataset = datasets.create_dataset(
        snapshot=tokenizer.snapshot, tokenizer=tokenizer, name="ds-a", processes=1, seq_len=256, enqueue_task=False
    )
    assert build_dataset_task(dataset.pk) == JobStatus.FINISHED
    dataset.refresh_from_db()
    return dataset


def test_operator_builds_a_dataset_from_the_form(operator_client, tokenizer):
    page = operator_client.get(reverse("training:datasets")).content.decode()
    assert 'id="dataset-form"' in page and f'<option value="{tokenizer.pk}" selected>' in page
    response = operator_client.post(
        reverse("training:datasets"),
        {
            "snapshot": tokenizer.snapshot_id,
            "tokenizer": tokenizer.pk,
            "name": "ds-form",
            "processes": 1,
            "seq_len": 128,
        },
    )
    dataset = DatasetBuild.objects.get(name="ds-form")
    assert response.status_code == 302 and response["Location"] == dataset.get_absolute_url()
    assert (dataset.status, dataset.processes, dataset.seq_len) == ("queued", 1, 128)
    queued = [task for task in OrmQ.objects.all() if task.task_id() == dataset.task_id]
    assert queued and queued[0].func() == "training.tasks.datasets.build_dataset_task"
    assert 'data-active="1"' in operator_client.get(dataset.get_absolute_url()).content.decode()

    assert build_dataset_task(dataset.pk) == JobStatus.FINISHED
    dataset.refresh_from_db()
    meta = load_meta(Path(dataset.path))
    assert Path(dataset.path) == dataset.directory and meta["seq_len"] == 128
    assert dataset.train_tokens == meta["splits"]["train"]["tokens"] > 0
    assert dataset.val_tokens == meta["splits"]["val"]["tokens"] > 0
    assert dataset.records == meta["splits"]["train"]["records"] + meta["splits"]["val"]["records"]
    assert dataset.stats == meta
    tokens = np.memmap(Path(dataset.path) / "train.bin", dtype=meta["dtype"], mode="r")
    split = meta["splits"]["train"]
    assert len(tokens) == dataset.train_tokens + split["padding"] == split["sequences"] * 129
    assert meta["dtype"] == "uint16"
    card = operator_client.get(reverse("training:dataset_status", args=[dataset.pk])).content.decode()
    assert 'id="job-status">finished<' in card and 'data-active="0"' in card


def test_form_refuses_an_unfinished_tokenizer_and_bad_numbers(operator_client, tokenizer):
    tokenizer.status = JobStatus.RUNNING
    tokenizer.save()
    response = operator_client.post(
        reverse("training:datasets"),
        {"snapshot": tokenizer.snapshot_id, "tokenizer": tokenizer.pk, "name": "ds", "processes": 0, "seq_len": 4},
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"tokenizer", "processes", "seq_len"}
    assert not DatasetBuild.objects.exists()


def test_dataset_page_shows_stats_split_lineage_and_a_coloured_sample(viewer_client, built):
    page = viewer_client.get(built.get_absolute_url()).content.decode()
    meta = built.stats
    train, val = meta["splits"]["train"], meta["splits"]["val"]
    assert f'<dd id="stat-tokens">{train["tokens"]:,} train · {val["tokens"]:,} val</dd>' in page
    assert f'<dd id="stat-records">{train["records"]:,} train · {val["records"]:,} val</dd>' in page
    assert meta["layout"] == "rows" and meta["split_method"] in ("repository", "merge time")
    assert f'<dd id="stat-prs">{meta["prs"]:,} (' in page and 'id="stat-fit-whole"' in page
    assert f"Validation split by {meta['split_method']}" in page
    assert f'<dd id="stat-augmented">{meta["augmented_records"]:,}</dd>' in page
    # Sequences of 256 tokens of a 400-piece vocabulary: the fixture's PRs are split, and the page says why.
    assert 0 <= meta["fit_whole_share"] < 1 and meta["record_reasons"]
    for reason, count in meta["record_reasons"].items():
        assert f'data-reason="{reason}">{count:,}</dd>' in page
    assert built.snapshot.get_absolute_url() in page and built.tokenizer.get_absolute_url() in page
    # The split: every repository on exactly one side, both sides shown.
    shown = {}
    for split in ("train", "val"):
        block = re.search(rf'<div id="split-{split}">(.*?)</div>', page, re.DOTALL).group(1)
        shown[split] = set(re.findall(r"<li>(.*?)</li>", block))
    assert shown["train"] == set(train["repos"]) and shown["val"] == set(val["repos"])
    assert shown["train"] and shown["val"] and not shown["train"] & shown["val"]
    # The sample: coloured runs whose text is the record's first seq_len tokens decoded.
    match = re.search(r'<pre class="sample" id="sample">(.*?)</pre>', page, re.DOTALL)
    assert match, re.search(r'<p class="bad">(.*?)</p>', page, re.DOTALL)
    sample = match.group(1)
    found = re.findall(r'<span class="sec-(\w+)( beyond)?" title="\w+ · (\d+) tokens?">(.*?)</span>', sample, re.DOTALL)
    runs = [(section, count, chunk) for section, _, count, chunk in found]
    assert {section for section, _, _ in runs} >= {"other", "plan", "code", "validate"}
    assert sum(int(count) for section, beyond, count, _ in found if not beyond) == built.seq_len
    # Decoded, the runs are a whole record as the dataset cut it from a snapshot PR, each run in its section.
    text = "".join(html.unescape(chunk) for _, _, chunk in runs)
    assert text.startswith("<s><REPO> ") and text.endswith("</COMMENTS>\n</s>")
    titles = {item.parts.title for item in datasets.snapshot_items(built.snapshot)}
    assert text.split("<PR_TITLE> ", 1)[1].split("\n", 1)[0] in titles
    for section, _, chunk in runs:
        opening = {"plan": "<PLAN>", "code": "<CODE>", "validate": "<VALIDATE>"}.get(section)
        assert opening is None or html.unescape(chunk).startswith(opening)
    code = "".join(html.unescape(chunk) for section, _, chunk in runs if section == "code")
    assert code.startswith("<CODE>\n<AFTER>\n") and "\t" in code  # Go indentation survives

    val_page = viewer_client.get(built.get_absolute_url(), {"split": "val", "sample": 0}).content.decode()
    assert "in <strong>val</strong>" in val_page and 'id="sample"' in val_page
    past_end = viewer_client.get(built.get_absolute_url(), {"split": "val", "sample": 999}).content.decode()
    assert "This split has no record 1000." in past_end


def test_stop_a_queued_build_and_delete_rules(operator_client, built):
    queued = datasets.create_dataset(
        snapshot=built.snapshot, tokenizer=built.tokenizer, name="ds-q", processes=1, enqueue_task=False
    )
    assert operator_client.post(reverse("training:dataset_stop", args=[queued.pk])).status_code == 302
    queued.refresh_from_db()
    assert queued.status == JobStatus.STOPPED and queued.cancel_requested
    assert build_dataset_task(queued.pk) == "skipped"  # a stopped row is never picked up again

    orphan = datasets.create_dataset(
        snapshot=built.snapshot, tokenizer=built.tokenizer, name="ds-orphan", processes=1, enqueue_task=False
    )
    long_ago = timezone.now() - timedelta(minutes=10)
    DatasetBuild.objects.filter(pk=orphan.pk).update(
        status=JobStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )
    operator_client.post(reverse("training:dataset_stop", args=[orphan.pk]))
    orphan.refresh_from_db()
    assert orphan.status == JobStatus.DEAD and "worker stopped answering" in orphan.message
    assert operator_client.post(reverse("training:dataset_delete", args=[orphan.pk])).status_code == 302
    assert not DatasetBuild.objects.filter(pk=orphan.pk).exists()

    run = TrainingRun.objects.create(name="run-a", dataset=built)
    page = operator_client.post(reverse("training:dataset_delete", args=[built.pk]), follow=True).content.decode()
    assert "is used by run(s) run-a" in page and Path(built.path).exists()
    run.delete()
    response = operator_client.post(reverse("training:dataset_delete", args=[built.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("training:datasets")
    assert not DatasetBuild.objects.filter(pk=built.pk).exists() and not Path(built.path).exists()


def test_viewers_are_refused_every_change(viewer_client, built):
    listing = viewer_client.get(reverse("training:datasets"))
    assert listing.status_code == 200 and b"dataset-form" not in listing.content and b"ds-a" in listing.content
    assert b"delete-button" not in viewer_client.get(built.get_absolute_url()).content
    assert (
        viewer_client.post(
            reverse("training:datasets"),
            {
                "snapshot": built.snapshot_id,
                "tokenizer": built.tokenizer_id,
                "name": "v",
                "processes": 1,
                "seq_len": 128,
            },
        ).status_code
        == 403
    )
    assert viewer_client.post(reverse("training:dataset_stop", args=[built.pk])).status_code == 403
    assert viewer_client.post(reverse("training:dataset_delete", args=[built.pk])).status_code == 403
    assert DatasetBuild.objects.count() == 1


def test_stop_reaches_a_build_a_worker_claimed_after_the_page_was_read():
    from tests.factories import make_lineage

    dataset = make_lineage("race").dataset
    DatasetBuild.objects.filter(pk=dataset.pk).update(status=JobStatus.QUEUED)
    stale = DatasetBuild.objects.get(pk=dataset.pk)
    DatasetBuild.objects.filter(pk=dataset.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    datasets.stop_dataset(stale)
    dataset.refresh_from_db()
    assert dataset.cancel_requested and dataset.status == JobStatus.RUNNING


def test_dataset_page_shows_the_actual_split_share_and_warns_when_far_off(viewer_client, dataset):
    DatasetBuild.objects.filter(pk=dataset.pk).update(path=str(dataset.directory))
    splits = read_meta(dataset.directory)["splits"]
    share = splits["val"]["tokens"] / (splits["val"]["tokens"] + splits["train"]["tokens"])
    page = viewer_client.get(dataset.get_absolute_url()).content.decode()
    assert f"{share * 100:.1f}%" in page and 'id="split-warning"' in page
    assert "only 6 repositories: a split by repository cannot be closer to 95/5" in page
    assert (
        datasets.split_share({"train": {"tokens": 950, "repos": ["a"] * 30}, "val": {"tokens": 50, "repos": ["b"]}})[
            "warning"
        ]
        == ""
    )
