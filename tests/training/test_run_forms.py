"""The new-run form and its preview endpoint: preset defaults, overrides, validation through RunConfig."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from hrgc_site.errors import ActionRefused
from tests.training.support import make_dataset, tiny_run
from training.data import read_meta
from training.forms.datasets import DatasetForm
from training.forms.runs import SETTING_HELP, RunForm
from training.forms.tokenizers import TokenizerForm
from training.hrm.config import RunConfig, preset
from training.models import TrainingRun
from training.services.runs import MAX_PARAMETERS, parameter_count

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path


def form_data(dataset, **changes) -> dict:
    """What the browser posts: every setting at the preset's value, then `changes`."""
    config = preset(changes.pop("family", "hrm"), changes.pop("preset", "tiny"))
    data = {"dataset": dataset.pk, "family": config.model.family, "preset": "tiny", "name": "form-run"}
    for section in ("model", "train"):
        for key, value in config.to_dict()[section].items():
            if key in ("family", "vocab_size"):
                continue
            if isinstance(value, bool):
                if value:
                    data[f"{section}__{key}"] = "on"
            else:
                data[f"{section}__{key}"] = str(value)
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_unchanged_settings_make_no_overrides_and_changed_ones_do(dataset_files):
    dataset = make_dataset(dataset_files)
    form = RunForm(form_data(dataset))
    assert form.is_valid(), form.errors
    assert form.overrides == {} and form.config.model.vocab_size == 700

    form = RunForm(form_data(dataset, train__max_steps="60", model__n_embd="128", train__compile="on"))
    assert form.is_valid(), form.errors
    assert form.overrides == {"train.max_steps": 60, "model.n_embd": 128, "train.compile": "on"}
    assert form.config.train.max_steps == 60 and form.config.model.n_embd == 128


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"model__n_head": "3"}, "model__n_head", "divisible by n_head"),
        ({"train__learning_rate": "0"}, "train__learning_rate", "must be positive"),
        ({"train__batch_size": "0"}, "train__batch_size", "at least 1"),
        ({"train__max_steps": "lots"}, "train__max_steps", "whole number"),
        ({"name": "bad name!"}, "name", "Letters, digits"),
    ],
)
def test_bad_settings_are_reported_beside_their_field(dataset_files, changes, field, text):
    dataset = make_dataset(dataset_files)
    form = RunForm(form_data(dataset, **changes))
    assert not form.is_valid()
    assert text in " ".join(form.errors[field])


def test_every_bad_setting_shows_at_once_beside_its_own_field(dataset_files):
    # The five mistakes entered together: five errors, each on its field, none on the form as a whole.
    dataset = make_dataset(dataset_files)
    form = RunForm(
        form_data(
            dataset,
            train__learning_rate="-0.001",
            model__dropout="1.5",
            train__batch_size="-3",
            train__max_steps="0",
            model__n_head="5",
        )
    )
    assert not form.is_valid()
    assert set(form.errors) == {
        "train__learning_rate",
        "model__dropout",
        "train__batch_size",
        "train__max_steps",
        "model__n_head",
    }
    assert "positive" in form.errors["train__learning_rate"][0]
    assert "below 1" in form.errors["model__dropout"][0]
    assert "at least 1" in form.errors["train__batch_size"][0] and "at least 1" in form.errors["train__max_steps"][0]
    assert "divisible by n_head" in form.errors["model__n_head"][0]
    assert not form.non_field_errors()


def test_the_run_config_lists_every_problem():
    config = preset("hrm", "tiny").with_overrides(
        {"learning_rate": "-1", "dropout": "1.5", "batch_size": "-3", "max_steps": "0", "n_head": "5"}, validate=False
    )
    assert [name for name, _ in config.problems()] == ["n_head", "dropout", "batch_size", "max_steps", "learning_rate"]
    with pytest.raises(ValueError, match="divisible by n_head"):
        config.validate()
    assert preset("gpt", "tiny").problems() == []


def test_a_gpt_form_hides_the_hrm_only_settings(operator_client, dataset_files):
    make_dataset(dataset_files)
    page = operator_client.get(reverse("training:run_new") + "?family=gpt").content.decode()
    assert 'data-setting="model__h_cycles" data-only-family="hrm" hidden' in page
    assert 'data-setting="train__planner_lr_multiplier" data-only-family="hrm" hidden' in page
    assert 'data-setting="model__n_layer">' in page  # both families read it
    page = operator_client.get(reverse("training:run_new") + "?family=hrm").content.decode()
    assert 'data-setting="model__h_cycles" data-only-family="hrm">' in page


def test_the_browser_gets_the_bounds_the_server_checks(operator_client, dataset_files):
    make_dataset(dataset_files)
    page = operator_client.get(reverse("training:run_new")).content.decode()
    assert 'name="model__dropout"' in page and 'data-below="1"' in page and 'max="1"' in page
    assert 'data-above="0"' in page and 'data-divides="model__n_embd"' in page


def test_unfinished_dataset_and_taken_name_are_refused(dataset_files, operator_user):
    dataset = make_dataset(dataset_files)
    TrainingRun.objects.create(name="form-run", dataset=dataset)
    form = RunForm(form_data(dataset))
    assert not form.is_valid() and "exists already" in str(form.errors["name"])
    dataset.status = "running"
    dataset.save()
    form = RunForm(form_data(dataset, name="other"))
    assert not form.is_valid() and "dataset" in form.errors


def test_preview_gives_defaults_and_the_parameter_count(operator_client, dataset_files):
    dataset = make_dataset(dataset_files)
    url = reverse("training:run_preview")
    data = operator_client.get(url, {"family": "gpt", "preset": "tiny", "dataset": dataset.pk}).json()
    expected = parameter_count(preset("gpt", "tiny", vocab_size=700))
    assert data["parameter_count"] == data["preset_parameter_count"] == expected
    assert data["defaults"]["model__n_layer"] == 2 and data["defaults"]["train__max_steps"] == 300

    wider = operator_client.get(
        url, {"family": "gpt", "preset": "tiny", "dataset": dataset.pk, "model__n_embd": "128"}
    ).json()
    assert wider["parameter_count"] > expected and wider["preset_parameter_count"] == expected

    # Each process trains on its own batch: the step's tokens count every rank, as the created run does.
    tiny = preset("gpt", "tiny", vocab_size=700)
    one = tiny.train.batch_size * tiny.model.block_size
    settings = {"family": "gpt", "preset": "tiny", "dataset": dataset.pk}
    assert operator_client.get(url, settings).json()["tokens_per_step"] == one
    two = operator_client.get(url, {**settings, "train__nproc_per_node": "2"}).json()
    assert two["tokens_per_step"] == 2 * one

    seed = operator_client.get(url, {"family": "hrm", "preset": "seed"}).json()
    assert 20_000_000 <= seed["parameter_count"] <= 30_000_000  # the seed's size at a 50K vocabulary

    bad = operator_client.get(url, {"family": "hrm", "preset": "tiny", "model__n_head": "3"}).json()
    assert bad["parameter_count"] is None and "n_head" in bad["error"]


def test_new_run_page_shows_every_setting_with_its_default(operator_client, dataset_files):
    make_dataset(dataset_files)
    page = operator_client.get(reverse("training:run_new") + "?family=gpt").content.decode()
    assert 'name="train__learning_rate"' in page and 'name="model__h_cycles"' in page
    assert "preset: 0.002" in page and 'data-default="2"' in page  # gpt tiny: n_layer 2
    assert 'name="model__vocab_size"' not in page


def test_absurd_model_sizes_are_refused_before_anything_is_built():
    from training.hrm.config import preset

    with pytest.raises(ValueError, match="n_layer must be at most"):
        preset("hrm", "tiny").with_overrides({"n_layer": "1000000"})
    with pytest.raises(ValueError, match="n_embd must be at most"):
        preset("gpt", "tiny").with_overrides({"model.n_embd": "1048576"})


def test_numbers_past_what_a_run_can_hold_are_refused_beside_their_fields(dataset_files):
    # A step count past PostgreSQL's integer failed the page with a 500; a seed past 2**32 - 1 failed the run.
    dataset = make_dataset(dataset_files)
    form = RunForm(form_data(dataset, train__max_steps="99999999999", train__seed="99999999999999"))
    assert not form.is_valid()
    assert "max_steps must be at most 2,147,483,647" in str(form.errors["train__max_steps"])
    assert "seed must be at most 4,294,967,295" in str(form.errors["train__seed"])
    form = RunForm(form_data(dataset, train__seed="-1"))
    assert not form.is_valid() and "seed must be 0 or more" in str(form.errors["train__seed"])
    page = str(RunForm()["train__max_steps"])
    assert 'max="2147483647"' in page


def test_processes_nodes_and_rendezvous_are_run_settings(dataset_files):
    dataset = make_dataset(dataset_files)
    form = RunForm(form_data(dataset, train__nproc_per_node="2"))
    assert form.is_valid(), form.errors
    assert form.overrides == {"train.nproc_per_node": 2} and form.config.train.rdzv_endpoint == ""
    form = RunForm(form_data(dataset, train__nproc_per_node="2", train__nnodes="2"))
    assert not form.is_valid() and "rendezvous" in str(form.errors["train__rdzv_endpoint"])
    form = RunForm(form_data(dataset, train__nnodes="2", train__rdzv_endpoint="10.0.0.5:29500"))
    assert form.is_valid(), form.errors
    assert form.config.train.nnodes == 2 and form.config.train.rdzv_endpoint == "10.0.0.5:29500"


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
        tiny_run(dataset, block_size=str(val_stream))
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
        tiny_run(dataset, n_embd="16384", n_head="4", intermediate_size="65536", n_layer="4")


def test_number_inputs_carry_the_servers_bounds(dataset):
    tokenizer_form = str(TokenizerForm()["vocab_size"])
    assert 'min="300"' in tokenizer_form and 'max="1000000"' in tokenizer_form
    dataset_form = DatasetForm()
    assert 'min="1"' in str(dataset_form["processes"]) and 'max="64"' in str(dataset_form["processes"])
    assert 'min="16"' in str(dataset_form["seq_len"]) and 'max="65536"' in str(dataset_form["seq_len"])
    run_form = RunForm()
    assert 'min="1"' in str(run_form["model__n_embd"]) and 'max="16384"' in str(run_form["model__n_embd"])
    assert 'min="1"' in str(run_form["train__batch_size"]) and 'min="0"' in str(run_form["train__warmup_steps"])


def test_every_training_setting_has_a_one_line_help(operator_client, dataset):
    page = operator_client.get(reverse("training:run_new")).content.decode()
    form = RunForm()
    for key in form.setting_names["train"]:
        about = SETTING_HELP[key.split("__", 1)[1]]
        assert about and "\n" not in about
        assert f'<div class="help about">{escape(about)}</div>' in page
