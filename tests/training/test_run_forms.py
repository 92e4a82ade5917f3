"""The new-run form and its preview endpoint: preset defaults, overrides, validation through RunConfig."""

from __future__ import annotations

import pytest
from django.urls import reverse

from training.forms_runs import RunForm
from training.hrm.config import preset
from training.models import TrainingRun
from training.services_runs import parameter_count

from .test_run_support import dataset_files, make_dataset  # noqa: F401

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


def test_unchanged_settings_make_no_overrides_and_changed_ones_do(dataset_files):  # noqa: F811
    dataset = make_dataset(dataset_files)
    form = RunForm(form_data(dataset))
    assert form.is_valid(), form.errors
    assert form.overrides == {} and form.config.model.vocab_size == 700

    form = RunForm(form_data(dataset, train__max_steps="60", model__n_embd="128", train__compile="on"))
    assert form.is_valid(), form.errors
    assert form.overrides == {"train.max_steps": 60, "model.n_embd": 128, "train.compile": True}
    assert form.config.train.max_steps == 60 and form.config.model.n_embd == 128


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"model__n_head": "3"}, "model__n_embd", "divisible by n_head"),
        ({"train__learning_rate": "0"}, "train__learning_rate", "must be positive"),
        ({"train__batch_size": "0"}, "train__batch_size", "at least 1"),
        ({"train__max_steps": "lots"}, "train__max_steps", "whole number"),
        ({"name": "bad name!"}, "name", "Letters, digits"),
    ],
)
def test_bad_settings_are_reported_beside_their_field(dataset_files, changes, field, text):  # noqa: F811
    dataset = make_dataset(dataset_files)
    form = RunForm(form_data(dataset, **changes))
    assert not form.is_valid()
    assert text in " ".join(form.errors[field])


def test_unfinished_dataset_and_taken_name_are_refused(dataset_files, operator_user):  # noqa: F811
    dataset = make_dataset(dataset_files)
    TrainingRun.objects.create(name="form-run", dataset=dataset)
    form = RunForm(form_data(dataset))
    assert not form.is_valid() and "exists already" in str(form.errors["name"])
    dataset.status = "running"
    dataset.save()
    form = RunForm(form_data(dataset, name="other"))
    assert not form.is_valid() and "dataset" in form.errors


def test_preview_gives_defaults_and_the_parameter_count(operator_client, dataset_files):  # noqa: F811
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

    seed = operator_client.get(url, {"family": "hrm", "preset": "seed"}).json()
    assert 20_000_000 <= seed["parameter_count"] <= 30_000_000  # the seed's size at a 50K vocabulary

    bad = operator_client.get(url, {"family": "hrm", "preset": "tiny", "model__n_head": "3"}).json()
    assert bad["parameter_count"] is None and "n_head" in bad["error"]


def test_new_run_page_shows_every_setting_with_its_default(operator_client, dataset_files):  # noqa: F811
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
