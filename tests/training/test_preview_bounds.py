"""The run preview (any viewer may call it) counts parameters without building deep models."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from django.urls import reverse

from training.hrm.config import preset
from training.hrm.model import build_model
from training.services import runs


@pytest.mark.parametrize("family", ["hrm", "gpt"])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("n_layer", [1, 3, 5])
def test_the_count_equals_the_built_models(family, tied, n_layer):
    model = replace(preset(family, "tiny", vocab_size=300).model, n_layer=n_layer, tie_embeddings=tied)
    config = replace(preset(family, "tiny", vocab_size=300), model=model)
    with torch.device("meta"):
        expected = build_model(model).num_parameters()
    assert runs.parameter_count(config) == expected


def test_a_256_layer_preview_builds_no_model_deeper_than_two_layers(viewer_client, monkeypatch):
    built = []
    real = runs.build_model

    def recording(config):
        built.append(config.n_layer)
        return real(config)

    monkeypatch.setattr(runs, "build_model", recording)
    runs._parameter_count.cache_clear()
    answer = viewer_client.get(
        reverse("training:run_preview"), {"family": "hrm", "preset": "seed", "model__n_layer": "256"}
    ).json()
    assert answer["parameter_count"] > 256 * 2 * 4 * 256 * 256  # at least the attention weights of 512 blocks
    assert built and max(built) <= 2
    one_block = runs.parameter_count(
        replace(preset("hrm", "seed"), model=replace(preset("hrm", "seed").model, n_layer=1))
    )
    assert answer["parameter_count"] > one_block
