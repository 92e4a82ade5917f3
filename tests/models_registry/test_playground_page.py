"""The playground warns about a barely trained model and offers a Stop button."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from models_registry.services import barely_trained_hint
from tests.factories import make_export_with_file, make_lineage

pytestmark = pytest.mark.django_db


def test_few_steps_or_a_high_validation_loss_earn_a_hint():
    export = make_export_with_file(make_lineage("young"), b"gguf")  # step 10
    assert "Barely trained" in barely_trained_hint(export) and "10 training steps" in barely_trained_hint(export)
    export.step = 5_000
    export.run.best_val_loss = 6.92
    assert "validation loss 6.92" in barely_trained_hint(export)
    export.run.best_val_loss = 1.2
    assert barely_trained_hint(export) == ""


def test_the_page_carries_the_hints_and_a_stop_button(viewer_client):
    export = make_export_with_file(make_lineage("young"), b"gguf")
    page = viewer_client.get(reverse("models_registry:playground")).content.decode()
    assert 'id="stop-generation"' in page and 'id="training-hint"' in page
    hints = json.loads(page.split('id="training-hints" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert "Barely trained" in hints[str(export.pk)]
