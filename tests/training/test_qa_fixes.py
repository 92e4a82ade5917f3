"""The QA walk's defects in the training app, one test (or a few) each: settings that cannot run, tracebacks in
headers, the 95/5 split on small corpora, per-run memory, tokenizer retry, min/max attributes, run page details."""

from __future__ import annotations

import gc
import re
import resource
import sys

import numpy as np
import pytest
from django.urls import reverse
from django.utils.html import escape

from hrgc_site.errors import ActionRefused
from hrgc_site.models import JobStatus
from tests.static_files import page_script
from training.data import read_meta
from training.dataset import build_dataset, val_score
from training.devices import current_memory_bytes, peak_memory_bytes
from training.engine import train
from training.forms.datasets import DatasetForm
from training.forms.runs import SETTING_HELP, RunForm
from training.forms.tokenizers import TokenizerForm
from training.hrm.config import RunConfig, preset
from training.models import DatasetBuild, MetricPoint, TokenizerVersion, TrainingRun
from training.services import datasets
from training.services.runs import MAX_PARAMETERS, create_run, differing_hyperparameters

from .test_dataset import make_record, model  # noqa: F401
from .test_engine import Recorder, small_config
from .test_engine import dataset as engine_dataset  # noqa: F401
from .test_run_forms import form_data
from .test_run_support import FAST, dataset_files, make_dataset  # noqa: F401

pytestmark = pytest.mark.django_db

TRACEBACK = (
    "ValueError: dropout probability has to be between 0 and 1, but got 1.5\n\n"
    'Traceback (most recent call last):\n  File "/work/main/training/engine.py", line 1, in train\n'
    "ValueError: dropout probability has to be between 0 and 1, but got 1.5"
)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


@pytest.fixture
def dataset(dataset_files):  # noqa: F811
    return make_dataset(dataset_files)


def new_run(dataset, name="qa-run", family="hrm", **overrides):
    return create_run(
        dataset=dataset, family=family, preset_name="tiny", name=name, overrides={**FAST, **overrides}, queue=False
    )


# ---------------------------------------------------------------------------------------------- 1. cannot run


def test_dropout_outside_zero_to_one_is_refused_beside_its_field(dataset):
    with pytest.raises(ValueError, match="dropout"):
        preset("hrm", "tiny").with_overrides({"dropout": "1.5"})
    with pytest.raises(ValueError, match="dropout"):
        RunConfig.from_dict({"model": {"dropout": 1.0}}).validate()
    preset("hrm", "tiny").with_overrides({"dropout": "0.99"})  # below 1 is fine
    form = RunForm(form_data(dataset, model__dropout="1.5"))
    assert not form.is_valid() and "dropout" in " ".join(form.errors["model__dropout"])


def test_block_size_longer_than_a_split_is_refused_naming_the_split(dataset):
    meta = read_meta(dataset.directory)
    splits = meta["splits"]
    # Rows of seq_len + 1 tokens that start at records: a window can read as far as the split's rows go.
    val_stream = splits["val"]["sequences"] * (meta["seq_len"] + 1)
    assert val_stream < splits["train"]["sequences"] * (meta["seq_len"] + 1)
    form = RunForm(form_data(dataset, model__block_size=str(val_stream)))
    assert not form.is_valid()
    error = " ".join(form.errors["model__block_size"])
    assert "split 'val'" in error and f"{splits['val']['tokens']:,} tokens" in error
    assert f"at most {val_stream - 1:,}" in error

    fits = RunForm(form_data(dataset, model__block_size=str(val_stream - 1)))
    assert fits.is_valid(), fits.errors
    with pytest.raises(ActionRefused, match="split 'val'"):
        new_run(dataset, block_size=str(val_stream))
    assert not TrainingRun.objects.exists()


def test_a_model_above_the_parameter_ceiling_is_refused_with_its_count(dataset, operator_client):
    big = {"model__n_embd": "16384", "model__n_head": "4", "model__intermediate_size": "65536", "model__n_layer": "4"}
    form = RunForm(form_data(dataset, **big))
    assert not form.is_valid()
    error = " ".join(form.errors["model__n_embd"])
    count = int(re.search(r"have ([\d,]+) parameters", error).group(1).replace(",", ""))
    assert count > MAX_PARAMETERS and f"ceiling of {MAX_PARAMETERS:,}" in error
    assert form.errors["model__intermediate_size"] and form.errors["model__n_layer"]

    preview = operator_client.get(
        reverse("training:run_preview"),
        {"family": "hrm", "preset": "tiny", "dataset": dataset.pk, **{key: value for key, value in big.items()}},
    ).json()
    assert preview["parameter_count"] == count and "ceiling" in preview["error"]
    with pytest.raises(ActionRefused, match="ceiling"):
        new_run(dataset, n_embd="16384", n_head="4", intermediate_size="65536", n_layer="4")


# ---------------------------------------------------------------------------------------------- 2. tracebacks


def test_failed_run_shows_the_first_line_and_folds_the_traceback(viewer_client, dataset):
    run = new_run(dataset)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED, message=TRACEBACK)
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    header = re.search(r'<p class="muted" id="run-message">(.*?)</p>', page, re.S).group(1)
    assert header == "ValueError: dropout probability has to be between 0 and 1, but got 1.5"
    assert '<details id="run-traceback"' in page and "Traceback (most recent call last)" in page
    summary = viewer_client.get(reverse("training:run_metrics", args=[run.pk])).json()["run"]
    assert summary["message"] == header


def test_failed_tokenizer_and_dataset_cards_fold_the_traceback(viewer_client, dataset):
    tokenizer, snapshot = dataset.tokenizer, dataset.snapshot
    TokenizerVersion.objects.filter(pk=tokenizer.pk).update(status=JobStatus.FAILED, message=TRACEBACK)
    failed = DatasetBuild.objects.create(
        name="ds-failed", snapshot=snapshot, tokenizer=tokenizer, status=JobStatus.FAILED, message=TRACEBACK
    )
    for url in (tokenizer.get_absolute_url(), failed.get_absolute_url()):
        page = viewer_client.get(url).content.decode()
        message = re.search(r'id="job-message"[^>]*>(.*?)</p>', page, re.S).group(1)
        assert message == "ValueError: dropout probability has to be between 0 and 1, but got 1.5"
        assert '<details id="job-traceback"' in page and "Traceback (most recent call last)" in page


# ---------------------------------------------------------------------------------------------- 3. split


def test_forced_validation_repository_is_the_one_closest_to_the_asked_share(model, tmp_path):  # noqa: F811
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


# ---------------------------------------------------------------------------------------------- 4. memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux RSS")
def test_cpu_memory_is_the_current_rss_not_the_processes_lifetime_peak():
    import psutil
    import torch

    cpu = torch.device("cpu")
    block = np.ones(400 * 2**20, dtype=np.uint8)  # 400 MB touched, then given back to the system
    del block
    gc.collect()
    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    now = current_memory_bytes(cpu)
    assert abs(now - psutil.Process().memory_info().rss) < 64 * 2**20
    assert peak_memory_bytes(cpu) < lifetime_peak - 200 * 2**20
    assert peak_memory_bytes(cpu, sampled_peak=lifetime_peak) == lifetime_peak


def test_engine_reports_the_runs_own_peak_as_the_max_of_its_samples(engine_dataset, tmp_path):  # noqa: F811
    recorder = Recorder()
    train(small_config(max_steps=4, eval_steps=4, save_steps=4), engine_dataset, tmp_path, report=recorder)
    metrics = recorder.of("metrics")
    samples = [m["memory_now"] for m in metrics]
    assert all(sample > 0 for sample in samples)
    assert [m["memory"] for m in metrics] == [max(samples[: i + 1]) for i in range(len(samples))]


def test_run_page_labels_memory_now_and_peak(viewer_client, dataset):
    run = new_run(dataset)
    TrainingRun.objects.filter(pk=run.pk).update(device="cpu · test", memory_bytes=300 * 2**20)
    MetricPoint.objects.create(
        run=run,
        kind="train",
        step=2,
        tokens=512,
        elapsed=1.0,
        values={"loss": 5.0, "memory": 300 * 2**20, "memory_now": 200 * 2**20},
    )
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert "Process memory (RSS) now / peak during this run" in page
    assert re.search(r'id="run-memory-now">200\.0\xa0MB</span> now', page)
    assert re.search(r'id="run-memory">300\.0\xa0MB</span> peak', page)
    assert viewer_client.get(reverse("training:run_metrics", args=[run.pk])).json()["run"]["memory_now"] == 200 * 2**20


# ---------------------------------------------------------------------------------------------- 5. retry


def test_retry_with_a_bad_size_shows_the_tokenizer_page_with_the_error(operator_client, dataset):
    tokenizer = dataset.tokenizer
    TokenizerVersion.objects.filter(pk=tokenizer.pk).update(
        status=JobStatus.FAILED, message="too large", suggested_vocab_size=4937
    )
    page = operator_client.get(tokenizer.get_absolute_url()).content.decode()
    assert "Retry with 4,937 pieces" in page
    assert 'input.addEventListener("input", label)' in page_script(page, "js/tokenizer_detail.js")
    response = operator_client.post(reverse("training:tokenizer_retry", args=[tokenizer.pk]), {"vocab_size": "5"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"Tokenizer {tokenizer.name}" in page and 'id="retry-errors"' in page
    assert "greater than or equal to 300" in page and 'id="retry-vocab" value="5"' in page
    tokenizer.refresh_from_db()
    assert tokenizer.status == JobStatus.FAILED


# ---------------------------------------------------------------------------------------------- 6. min/max


def test_number_inputs_carry_the_servers_bounds(dataset):
    tokenizer_form = str(TokenizerForm()["vocab_size"])
    assert 'min="300"' in tokenizer_form and 'max="1000000"' in tokenizer_form
    dataset_form = DatasetForm()
    assert 'min="1"' in str(dataset_form["processes"]) and 'max="64"' in str(dataset_form["processes"])
    assert 'min="16"' in str(dataset_form["seq_len"]) and 'max="65536"' in str(dataset_form["seq_len"])
    run_form = RunForm()
    assert 'min="1"' in str(run_form["model__n_embd"]) and 'max="16384"' in str(run_form["model__n_embd"])
    assert 'min="1"' in str(run_form["train__batch_size"]) and 'min="0"' in str(run_form["train__warmup_steps"])


# ---------------------------------------------------------------------------------------------- 7. run pages


def test_parse_chart_says_when_samples_come_instead_of_an_empty_axis(viewer_client, dataset):
    run = new_run(dataset)
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert "samples every 1,000 steps; none yet" in page and 'data-chart="chart-parse" data-empty="1"' in page
    MetricPoint.objects.create(run=run, kind="samples", step=2, tokens=512, elapsed=1.0, values={"parse_share": 0.5})
    page = viewer_client.get(run.get_absolute_url()).content.decode()
    assert 'data-chart="chart-parse" data-empty="1"' not in page


@pytest.mark.parametrize("sort", ["loss", "-loss"])
def test_runs_without_a_loss_sort_last_both_ways(viewer_client, dataset, sort):
    runs = {name: new_run(dataset, name=name) for name in ("none-a", "low", "high", "none-b")}
    TrainingRun.objects.filter(pk=runs["low"].pk).update(last_loss=1.0)
    TrainingRun.objects.filter(pk=runs["high"].pk).update(last_loss=3.0)
    names = [run.name for run in viewer_client.get(reverse("training:runs"), {"sort": sort}).context["object_list"]]
    assert names[:2] == (["low", "high"] if sort == "loss" else ["high", "low"])
    assert set(names[2:]) == {"none-a", "none-b"}


def test_compare_groups_tokens_per_second_and_lists_family_once(viewer_client, dataset):
    a, b = new_run(dataset, name="cmp-a"), new_run(dataset, name="cmp-b", family="gpt")
    TrainingRun.objects.filter(pk=a.pk).update(tokens_per_sec=12345.6)
    keys = [key for key, _ in differing_hyperparameters([a, b])]
    assert "family" in keys and "model.family" not in keys
    page = viewer_client.get(reverse("training:run_compare"), {"ids": [a.pk, b.pk]}).content.decode()
    assert '<td class="num">12,346</td>' in page


def test_every_training_setting_has_a_one_line_help(operator_client, dataset):
    page = operator_client.get(reverse("training:run_new")).content.decode()
    form = RunForm()
    for key in form.setting_names["train"]:
        about = SETTING_HELP[key.split("__", 1)[1]]
        assert about and "\n" not in about
        assert f'<div class="help about">{escape(about)}</div>' in page


def test_warmup_not_below_max_steps_warns_on_the_run_page(viewer_client, dataset):
    fine = new_run(dataset, name="warm-ok")
    assert 'id="warmup-warning"' not in viewer_client.get(fine.get_absolute_url()).content.decode()
    long_warmup = new_run(dataset, name="warm-long", warmup_steps="12")
    page = viewer_client.get(long_warmup.get_absolute_url()).content.decode()
    assert 'id="warmup-warning"' in page and "warmup_steps (12) is not below max_steps (12)" in page


@pytest.mark.django_db
def test_train_command_answers_unrunnable_settings_and_bad_names_with_a_clear_error(dataset_files):  # noqa: F811
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from tests.training.test_run_support import make_dataset

    dataset = make_dataset(dataset_files, name="cmd-errors-ds")
    with pytest.raises(CommandError, match="block_size"):
        call_command("train", dataset.name, "--family", "gpt", "--preset", "tiny", "--set", "block_size=100000")
    with pytest.raises(CommandError, match="bad --name"):
        call_command("train", dataset.name, "--name", "no spaces/allowed")
